"""The CRReLU experiment: the exact entropy of bounded activations against the WAFBC, then one ViT per
activation (only the MLP-block activation differs; every activation of a replicate sees the same split, the
same initialisation of the shared weights and the same batch order).

Grid: ``entropy/<activation>`` at several input scales (exact, run once), ``vit/<activation>`` per data set.
"""

import math

import torch
import torch.nn.functional as F
from omegaconf import DictConfig

from repro.core.context import RunContext
from repro.core.errors import ConfigError
from repro.core.train import fit
from repro.core.units import Unit, grid
from repro.papers.crrelu.activations import ACTIVATIONS
from repro.papers.crrelu.data import cifar10_splits, digits_splits
from repro.papers.crrelu.entropy import BOUNDED, activation_pair, output_entropy
from repro.papers.crrelu.models import ViT, parameter_groups

METHODS = (*ACTIVATIONS, "wafbc", *BOUNDED)   # the ViT's activations and the entropy part's bounded ones
DATASETS = ("digits", "cifar10")


def units(cfg: DictConfig) -> list[Unit]:
    if cfg.data.dataset not in DATASETS:
        raise ConfigError(f"paper.data.dataset={cfg.data.dataset!r} is unknown; choose one of {DATASETS}")
    return [*grid("entropy", cfg.entropy.activations, stochastic=False, input_scale=list(cfg.entropy.input_scales)),
            *grid("vit", cfg.methods, dataset=[cfg.data.dataset])]


def run_unit(cfg: DictConfig, ctx: RunContext, u: Unit) -> list[dict]:
    if u.experiment == "entropy":
        return [entropy_row(u.method, float(u.settings["input_scale"]))]
    splits = ctx.shared("splits", lambda: load_splits(cfg, ctx))
    return train_vit(cfg, ctx, splits, u.method)


def entropy_row(activation: str, scale: float) -> dict:
    """H(f(X)), X ~ N(0, scale^2), for f increasing from 0 to 1, and its gap to the WAFBC's (uniform output)."""
    entropy = output_entropy(activation_pair(activation, scale)[1], scale)
    wafbc = output_entropy(activation_pair("wafbc", scale)[1], scale)
    return {"entropy": entropy, "gap_to_wafbc": entropy - wafbc}


def load_splits(cfg: DictConfig, ctx: RunContext) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    d = cfg.data
    if d.dataset == "digits":
        arrays = digits_splits(d.train, d.val, d.test, ctx.data_seed("split"))
    else:
        arrays = cifar10_splits(ctx.data_dir, d.val, ctx.data_seed("split"), ctx.log)
    return {name: (torch.tensor(x, dtype=torch.float32, device=ctx.device),
                   torch.tensor(y, dtype=torch.long, device=ctx.device)) for name, (x, y) in arrays.items()}


def augment(images: torch.Tensor, generator: torch.Generator, pad: int) -> torch.Tensor:
    """Random crop after zero padding by ``pad`` and a random horizontal flip (the usual CIFAR augmentation)."""
    n, _, h, w = images.shape
    padded = F.pad(images, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    rows = (dy[:, None] + torch.arange(h)).to(images.device)
    cols = (dx[:, None] + torch.arange(w)).to(images.device)
    cols = torch.where(flip.to(images.device)[:, None], cols.flip(1), cols)
    index = torch.arange(n, device=images.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[index, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def warmup_cosine(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int
                  ) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over ``warmup_steps``, then cosine decay to 0 at ``total_steps`` (per step)."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return 0.5 * (1 + math.cos(math.pi * (step - warmup_steps) / max(1, total_steps - warmup_steps)))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def accuracy(model: torch.nn.Module, split: tuple[torch.Tensor, torch.Tensor], batch_size: int) -> tuple[float, float]:
    x, y = split
    logits = torch.cat([model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
    return float(F.cross_entropy(logits, y)), float((logits.argmax(1) == y).float().mean())


def train_vit(cfg: DictConfig, ctx: RunContext, splits: dict, activation: str) -> list[dict]:
    m, t = cfg.model, cfg.train
    # The same seed for every activation of a replicate: identical initial weights outside the activation.
    torch.manual_seed(ctx.data_seed("init"))
    model = ViT(m.image_size, m.channels, m.patch, m.width, m.depth, m.heads, m.mlp_hidden, m.classes, activation,
                m.crrelu_eps).to(ctx.device)
    optimizer = torch.optim.AdamW(parameter_groups(model, t.weight_decay), lr=t.lr)
    x_train, y_train = splits["train"]
    steps_per_epoch = -(-len(x_train) // t.batch_size)
    scheduler = warmup_cosine(optimizer, t.warmup_epochs * steps_per_epoch, t.epochs * steps_per_epoch)

    def batches(epoch: int):
        generator = torch.Generator().manual_seed(ctx.data_seed("batches", epoch))
        order = torch.randperm(len(x_train), generator=generator).to(ctx.device)
        for i in range(0, len(order), t.batch_size):
            images, labels = x_train[order[i:i + t.batch_size]], y_train[order[i:i + t.batch_size]]
            yield (augment(images, generator, t.crop_padding) if t.augment else images), labels

    def loss_fn(model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return F.cross_entropy(model(batch[0]), batch[1])

    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        loss, acc = accuracy(model, splits["val"], t.eval_batch_size)
        return {"val/loss": loss, "val/acc": acc, **{f"eps/{i}": e for i, e in enumerate(model.crrelu_eps())}}

    result = fit(ctx, "", model, optimizer, batches, loss_fn, t.epochs, evaluate, select="val/loss",
                 scheduler=scheduler)
    model.eval()
    with torch.no_grad():
        test_loss, test_acc = accuracy(model, splits["test"], t.eval_batch_size)
    row = {"best_epoch": result.best_epoch, "val/acc": result.best_metrics["val/acc"], "test/loss": test_loss,
           "test/acc": test_acc, "params": sum(p.numel() for p in model.parameters())}
    row.update({f"eps_block{i}": e for i, e in enumerate(model.crrelu_eps())})
    ctx.log.info("%s: %s", activation, {k: round(v, 4) for k, v in row.items()})
    # The learned eps per block along training (CRReLU only): rows of their own, without accuracies.
    trajectory = [{"curve": "eps", "epoch": h["epoch"], "block": int(key.split("/")[1]), "eps": h[key]}
                  for h in result.history for key in h if key.startswith("eps/")]
    return [row, *trajectory]
