"""EBV: fixed equiangular basis vectors as the classification head against the trainable FC softmax head
(and a cosine head with learned prototypes), on our many-class synthetic set and digits (cpu scale) or
ImageNet with ResNet-50 (scale=paper).

Grid: ``<dataset>/<method>`` per replicate; every head of a replicate trains on the same data split. An EBV
unit generates its own basis (as the official Generate_EBV.py, target tau = Welch bound + margin), keeps it
fixed for training and testing, and also returns the histogram of its pairwise cosines next to random unit
vectors of the same shape (rows with ``row_type: cos_hist``).
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig

from repro.core.context import RunContext
from repro.core.errors import ConfigError
from repro.core.train import fit
from repro.core.units import Unit, grid
from repro.papers.ebv.data import digits_splits, imagenet_splits, synthetic_splits
from repro.papers.ebv.ebv import generate_ebv, max_abs_cos, pairwise_cos, welch_bound
from repro.papers.ebv.models import (
    METHODS,  # noqa: F401  (the framework checks the grid against it)
    Classifier,
    ResNet50,
    build_head,
    ebv_dim,
    mlp,
    trainable_head_parameters,
)

DATASETS = {"tabular": ("synthetic", "digits"), "imagenet": ("imagenet",)}


def units(cfg: DictConfig) -> list[Unit]:
    if cfg.data.dataset not in DATASETS:
        raise ConfigError(f"paper.data.dataset={cfg.data.dataset!r} is unknown; choose one of {tuple(DATASETS)}")
    return [u for name in DATASETS[cfg.data.dataset] for u in grid(name, cfg.methods)]


def run_unit(cfg: DictConfig, ctx: RunContext, u: Unit) -> list[dict]:
    if u.experiment == "imagenet":
        splits = ctx.shared("imagenet", lambda: imagenet_splits(
            ctx.data_dir / "imagenet", cfg.data.crop, cfg.data.resize, cfg.data.eval_crop, cfg.data.erase))
        classes = splits["classes"]
    else:
        build = synthetic_splits if u.experiment == "synthetic" else digits_splits
        splits = ctx.shared(u.experiment, lambda: build(cfg.data[u.experiment], ctx.data_seed(u.experiment)))
        classes = int(splits["train"][1].max()) + 1
    d = ebv_dim(u.method, classes)
    rows, basis, row = [], None, {"row_type": "head", "classes": classes, "dim": d or classes}
    if d is not None:
        basis, stats, hist = make_basis(cfg.ebv, ctx, classes, d)
        row.update(stats)
        rows += hist
    if u.experiment == "imagenet":
        backbone = ResNet50(tuple(cfg.model.blocks))
    else:
        backbone = mlp(splits["train"][0].shape[1], cfg.model.hidden, cfg.model.layers)
    head = build_head(u.method, backbone_features(backbone, cfg), classes, cfg.model.temperature, basis)
    model = Classifier(backbone, head).to(ctx.device)
    row["head_params"] = trainable_head_parameters(head)
    train = train_imagenet if u.experiment == "imagenet" else train_tabular
    row.update(train(cfg.train, ctx, model, splits))
    if d is None:   # the learned class vectors' largest |cos| (FC weights, cosine prototypes)
        vectors = head.fc.weight if u.method == "fc" else head.prototypes
        row["max_abs_cos"] = max_abs_cos(vectors.detach())
    ctx.log.info("%s/%s: %s", u.experiment, u.method, {k: v for k, v in row.items() if isinstance(v, float)})
    return [row, *rows]


def backbone_features(backbone: torch.nn.Module, cfg: DictConfig) -> int:
    return backbone.features if isinstance(backbone, ResNet50) else cfg.model.hidden


def make_basis(e: DictConfig, ctx: RunContext, n: int, d: int) -> tuple[torch.Tensor, dict, list[dict]]:
    """Generate the unit's EBVs (target tau = Welch bound + margin) and summarise them against random unit
    vectors of the same shape."""
    welch = welch_bound(n, d)
    tau = welch + e.tau_margin
    gen = generate_ebv(n, d, tau, e.steps, e.lr, e.slice_size, torch.Generator().manual_seed(ctx.child_seed("ebv")),
                       ctx.device, e.tol)
    random = F.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(ctx.child_seed("random")))
                         .to(ctx.device), dim=1)
    torch.save(gen.basis.cpu(), ctx.run_dir / f"{ctx.unit.file_stem}__ebv.pt")   # the matrix trained and tested with
    cos_ebv, cos_random = pairwise_cos(gen.basis), pairwise_cos(random)
    stats = {"welch_bound": welch, "tau": tau, "gen_steps": gen.steps, "gen_reached": float(gen.reached),
             "max_abs_cos": float(np.abs(cos_ebv).max()), "mean_abs_cos": float(np.abs(cos_ebv).mean()),
             "random_max_abs_cos": float(np.abs(cos_random).max()),
             "random_mean_abs_cos": float(np.abs(cos_random).mean())}
    edges = np.linspace(-1.0, 1.0, e.bins + 1)
    hist = []
    for name, cos in (("ebv", cos_ebv), ("random", cos_random)):
        density, _ = np.histogram(cos, bins=edges, density=True)
        hist += [{"row_type": "cos_hist", "classes": n, "dim": d, "vectors": name, "bin_center": float(c),
                  "density": float(p)} for c, p in zip((edges[:-1] + edges[1:]) / 2, density)]
    return gen.basis, stats, hist


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 4096) -> tuple[float, float]:
    """Top-1 accuracy and mean (unsmoothed) cross-entropy over a split held on the device."""
    correct, loss = 0, 0.0
    for start in range(0, len(y), batch):
        logits = model(x[start:start + batch])
        correct += int((logits.argmax(1) == y[start:start + batch]).sum())
        loss += float(F.cross_entropy(logits, y[start:start + batch], reduction="sum"))
    return correct / len(y), loss / len(y)


def train_tabular(t: DictConfig, ctx: RunContext, model: torch.nn.Module, splits: dict) -> dict:
    data = {k: (x.to(ctx.device), y.to(ctx.device)) for k, (x, y) in splits.items()}
    x_train, y_train = data["train"]
    optimizer = torch.optim.Adam(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    total = t.epochs * math.ceil(len(y_train) / t.batch_size)
    # cosine decay to 0 over the run (the official recipe's schedule, without its warm-up)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total) / total)))

    def batches(epoch: int):
        order = torch.randperm(len(y_train), generator=torch.Generator().manual_seed(ctx.child_seed("batches", epoch)))
        order = order.to(ctx.device)
        for start in range(0, len(order), t.batch_size):
            index = order[start:start + t.batch_size]
            if len(index) > 1:   # BatchNorm needs two samples
                yield x_train[index], y_train[index]

    def loss_fn(model: torch.nn.Module, batch) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(model(x), y, label_smoothing=t.label_smoothing)

    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        acc, loss = accuracy(model, *data["val"])
        return {"val/error": 1.0 - acc, "val/loss": loss}

    result = fit(ctx, "", model, optimizer, batches, loss_fn, t.epochs, evaluate, select="val/error",
                 scheduler=scheduler)
    model.eval()
    with torch.no_grad():
        test_acc, test_loss = accuracy(model, *data["test"])
    return {"best_epoch": result.best_epoch, "val/acc": 1.0 - result.best_metrics["val/error"],
            "test/acc": test_acc, "test/loss": test_loss, "train/loss": result.history[-1]["train/loss"]}


def mix_batch(x: torch.Tensor, y: torch.Tensor, classes: int, mixup: float, cutmix: float,
              rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup (alpha ``mixup``) or CutMix (alpha ``cutmix``), one of the two at random per batch, with soft
    targets; the batch is mixed with itself rolled by one, as torchvision's RandomMixup/RandomCutmix do."""
    target = F.one_hot(y, classes).to(x.dtype)
    if rng.random() < 0.5:
        lam = float(rng.beta(mixup, mixup))
        return lam * x + (1 - lam) * x.roll(1, 0), lam * target + (1 - lam) * target.roll(1, 0)
    lam = float(rng.beta(cutmix, cutmix))
    height, width = x.shape[-2:]
    cy, cx = int(rng.integers(height)), int(rng.integers(width))
    ry, rx = int(height * math.sqrt(1 - lam) / 2), int(width * math.sqrt(1 - lam) / 2)
    top, bottom, left, right = max(cy - ry, 0), min(cy + ry, height), max(cx - rx, 0), min(cx + rx, width)
    x = x.clone()
    x[..., top:bottom, left:right] = x.roll(1, 0)[..., top:bottom, left:right]
    lam = 1 - (bottom - top) * (right - left) / (height * width)
    return x, lam * target + (1 - lam) * target.roll(1, 0)


def train_imagenet(t: DictConfig, ctx: RunContext, model: torch.nn.Module, splits: dict) -> dict:
    """The official SGD recipe: momentum 0.9, weight decay on every parameter, linear warm-up from 0.01 x lr,
    then cosine to 0, stepped per epoch; label smoothing on Mixup/CutMix soft targets. As the official script,
    the reported top-1 is the best epoch's on the validation split."""
    loader_options = ctx.loader_options()
    train_set, classes = splits["train"], splits["classes"]
    optimizer = torch.optim.SGD(model.parameters(), lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)
    per_epoch = len(train_set) // t.batch_size
    if per_epoch < 1:
        raise ConfigError(f"ImageNet train split has {len(train_set)} images, fewer than one batch of {t.batch_size}")

    def factor(step: int) -> float:
        epoch = step // per_epoch
        if epoch < t.warmup_epochs:
            return t.warmup_start + (1 - t.warmup_start) * epoch / t.warmup_epochs
        return 0.5 * (1 + math.cos(math.pi * (epoch - t.warmup_epochs) / max(t.epochs - t.warmup_epochs, 1)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

    def batches(epoch: int):
        train_set.seed = ctx.child_seed("augment", epoch)
        order = torch.Generator().manual_seed(ctx.child_seed("batches", epoch))
        loader = torch.utils.data.DataLoader(train_set, batch_size=t.batch_size, shuffle=True, drop_last=True,
                                             generator=order, **loader_options)
        rng = np.random.default_rng(ctx.child_seed("mix", epoch))
        for x, y in loader:
            x, y = x.to(ctx.device, non_blocking=True), y.to(ctx.device, non_blocking=True)
            yield mix_batch(x, y, classes, t.mixup_alpha, t.cutmix_alpha, rng)

    def loss_fn(model: torch.nn.Module, batch) -> torch.Tensor:
        x, soft = batch
        return F.cross_entropy(model(x).float(), soft, label_smoothing=t.label_smoothing)

    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        correct, total = 0, 0
        loader = torch.utils.data.DataLoader(splits["test"], batch_size=t.eval_batch_size, **loader_options)
        for x, y in loader:
            with ctx.autocast():
                logits = model(x.to(ctx.device, non_blocking=True))
            correct += int((logits.argmax(1).cpu() == y).sum())
            total += len(y)
        return {"test/error": 1.0 - correct / total}

    result = fit(ctx, "", model, optimizer, batches, loss_fn, t.epochs, evaluate, select="test/error",
                 scheduler=scheduler)
    return {"best_epoch": result.best_epoch, "test/acc": 1.0 - result.best_metrics["test/error"],
            "train/loss": result.history[-1]["train/loss"]}
