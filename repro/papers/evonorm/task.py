"""The EvoNorm experiment: every norm-act layer trained in the same pre-activation ResNet at every batch size.

Grid: ``<dataset>/<layer>/batch=<B>`` (one training per replicate). Every layer and batch size of a replicate
sees the same split of the data (paired comparisons). The learning rate follows the linear scaling rule
lr = base_lr * B / lr_batch, and every run trains the same number of epochs, as in the paper's batch-size study.
Reported: accuracy (%) on the held-out split with the final model (the paper reports the last checkpoint);
the validation split only monitors convergence.
"""

import math

import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf

from repro.core.context import RunContext
from repro.core.errors import ConfigError
from repro.core.train import fit
from repro.core.units import Unit, grid
from repro.papers.evonorm.data import digits_splits, imagenet_splits
from repro.papers.evonorm.layers import LAYERS, is_norm_parameter
from repro.papers.evonorm.models import build_model

METHODS = LAYERS
DATASETS = ("digits", "imagenet")


def units(cfg: DictConfig) -> list[Unit]:
    if cfg.data.dataset not in DATASETS:
        raise ConfigError(f"paper.data.dataset={cfg.data.dataset!r} is unknown; choose one of {DATASETS}")
    workers = int(cfg.model.get("workers", 1))
    bad = [b for b in cfg.train.batch_sizes if int(b) % workers]
    if bad:
        raise ConfigError(f"paper.train.batch_sizes {bad} do not split over paper.model.workers={workers}")
    return grid(cfg.data.dataset, cfg.methods, batch=[int(b) for b in cfg.train.batch_sizes])


def run_unit(cfg: DictConfig, ctx: RunContext, u: Unit) -> list[dict]:
    batch = int(u.settings["batch"])
    if cfg.data.dataset == "digits":
        splits = ctx.shared("digits", lambda: digits_splits(cfg.data.train, cfg.data.val, cfg.data.test,
                                                            cfg.data.size, (ctx.data_seed("split", "test"),
                                                                            ctx.data_seed("split", "val"))))
        return train_digits(cfg, ctx, splits, u.method, batch)
    splits = imagenet_splits(ctx.data_dir / "imagenet", cfg.data.size)
    return train_imagenet(cfg, ctx, splits, u.method, batch)


def optimizer_for(model: torch.nn.Module, t: DictConfig, batch: int) -> torch.optim.Optimizer:
    """Nesterov SGD (the official optimiser); weight decay on convolutions and the classifier only (the official
    code exempts the 'batch_normalization' and 'evonorm' variables; GN's affine parameters likewise here)."""
    norm = {id(p) for m in model.modules() if is_norm_parameter(m) for p in m.parameters(recurse=False)}
    decay = [p for p in model.parameters() if id(p) not in norm]
    exempt = [p for p in model.parameters() if id(p) in norm]
    lr = float(t.lr) * batch / float(t.lr_batch)
    return torch.optim.SGD([{"params": decay, "weight_decay": float(t.weight_decay)},
                            {"params": exempt, "weight_decay": 0.0}], lr=lr, momentum=float(t.momentum),
                           nesterov=bool(t.nesterov))


def schedule_for(optimizer: torch.optim.Optimizer, t: DictConfig, steps_per_epoch: int):
    """Per-step learning-rate factor: ``cosine`` (to zero over the run) or ``step`` (the official ResNet schedule:
    linear warm-up over the first epochs, then x0.1 at each listed epoch)."""
    total = t.epochs * steps_per_epoch

    if t.schedule == "cosine":
        def factor(step: int) -> float:
            return 0.5 * (1 + math.cos(math.pi * min(step, total) / total))
    elif t.schedule == "step":
        def factor(step: int) -> float:
            epoch = step / steps_per_epoch
            if epoch < t.warmup_epochs:
                return epoch / t.warmup_epochs
            return 0.1 ** sum(epoch >= e for e in t.decay_epochs)
    else:
        raise ConfigError(f"paper.train.schedule={t.schedule!r} is unknown; choose cosine or step")
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@torch.no_grad()
def loss_and_accuracy(model: torch.nn.Module, batches) -> tuple[float, float]:
    total, correct, count = 0.0, 0, 0
    for images, labels in batches:
        logits = model(images)
        total += float(F.cross_entropy(logits, labels, reduction="sum"))
        correct += int((logits.argmax(1) == labels).sum())
        count += len(labels)
    return total / count, 100.0 * correct / count


def train_digits(cfg: DictConfig, ctx: RunContext, splits: dict, layer: str, batch: int) -> list[dict]:
    t = cfg.train
    data = {name: (x.to(ctx.device), y.to(ctx.device)) for name, (x, y) in splits.items()}
    train_x, train_y = data["train"]
    model = build_model(layer, OmegaConf.to_container(cfg.model), 1, 10).to(ctx.device)
    optimizer = optimizer_for(model, t, batch)
    steps = len(train_y) // batch  # the official input pipeline drops the remainder
    scheduler = schedule_for(optimizer, t, steps)

    current = {"epoch": -1}

    def batches(epoch: int):
        current["epoch"] = epoch  # fit evaluates after each epoch's batches (also after a resume)
        order = torch.randperm(len(train_y), generator=torch.Generator().manual_seed(ctx.child_seed("batches", epoch)))
        order = order.to(ctx.device)
        for k in range(steps):
            index = order[k * batch:(k + 1) * batch]
            yield train_x[index], train_y[index]

    def loss_fn(model: torch.nn.Module, pair) -> torch.Tensor:
        return F.cross_entropy(model(pair[0]), pair[1])

    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        val_loss, val_acc = loss_and_accuracy(model, [data["val"]])
        metrics = {"val/loss": val_loss, "val/acc": val_acc}
        if current["epoch"] == t.epochs - 1:  # the test split is read by the final model only
            metrics["test/acc"] = loss_and_accuracy(model, [data["test"]])[1]
        return metrics

    result = fit(ctx, "", model, optimizer, batches, loss_fn, t.epochs, evaluate, select="val/loss",
                 scheduler=scheduler)
    final = result.history[-1]
    model.eval()  # fit leaves the best-validation state loaded: its test accuracy is a secondary column
    row = {"layer": layer, "worker_batch": batch // int(cfg.model.workers),
           "lr": optimizer.param_groups[0]["initial_lr"], "steps": steps * t.epochs,
           "test/acc": final["test/acc"], "val/acc": final["val/acc"], "val/loss": final["val/loss"],
           "train/loss": final["train/loss"], "best_epoch": result.best_epoch,
           "test/acc_at_best_val": loss_and_accuracy(model, [data["test"]])[1],
           "params": sum(p.numel() for p in model.parameters())}
    ctx.log.info("%s batch %d: test acc %.2f%% (val loss %.4f)", layer, batch, row["test/acc"], row["val/loss"])
    return [row]


def train_imagenet(cfg: DictConfig, ctx: RunContext, splits: dict, layer: str, batch: int) -> list[dict]:
    t = cfg.train
    model = build_model(layer, OmegaConf.to_container(cfg.model), 3, splits["classes"]).to(ctx.device)
    optimizer = optimizer_for(model, t, batch)
    train = splits["train"]
    if len(train) < batch:
        raise ConfigError(f"the training split has {len(train)} images, fewer than batch={batch}")
    scheduler = schedule_for(optimizer, t, len(train) // batch)
    options = ctx.loader_options()

    def batches(epoch: int):
        train.seed = ctx.child_seed("augment", epoch)
        order = torch.Generator().manual_seed(ctx.child_seed("batches", epoch))
        loader = torch.utils.data.DataLoader(train, batch_size=batch, shuffle=True, drop_last=True,
                                             generator=order, **options)
        for images, labels in loader:
            yield images.to(ctx.device, non_blocking=True), labels.to(ctx.device, non_blocking=True)

    def loss_fn(model: torch.nn.Module, pair) -> torch.Tensor:
        return F.cross_entropy(model(pair[0]), pair[1], label_smoothing=float(t.label_smoothing))

    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        loader = torch.utils.data.DataLoader(splits["val"], batch_size=int(t.eval_batch_size), **options)
        with ctx.autocast():
            loss, acc = loss_and_accuracy(model, ((x.to(ctx.device), y.to(ctx.device)) for x, y in loader))
        return {"val/loss": loss, "test/acc": acc}  # the paper's top-1 is on the val split

    result = fit(ctx, "", model, optimizer, batches, loss_fn, t.epochs, evaluate, select="val/loss",
                 scheduler=scheduler)
    final = result.history[-1]
    return [{"layer": layer, "worker_batch": batch // int(cfg.model.workers),
             "lr": optimizer.param_groups[0]["initial_lr"], "test/acc": final["test/acc"],
             "val/loss": final["val/loss"], "train/loss": final["train/loss"], "best_epoch": result.best_epoch,
             "params": sum(p.numel() for p in model.parameters())}]
