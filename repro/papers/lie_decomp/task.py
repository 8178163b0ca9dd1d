"""Affine-equivariant networks on R^2 x| SL(2) and R^2 x| GL+(2) against CNNs, trained on centred digits only.

Grid: ``<dataset>/<method>`` (one network trained per replicate; every method of a replicate sees the same
split and the same warped test sets). Each unit reports accuracy on the clean, affine and homography test sets;
the SL(2) unit also reads its trained network with 1, 2, 4, 8 Monte Carlo group samples on the affine test set.
"""

import math

import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf

from repro.core.context import RunContext
from repro.core.errors import ConfigError
from repro.core.train import fit
from repro.core.units import Unit, grid
from repro.papers.lie_decomp.data import affnist_splits, digits_splits, random_warps, warp
from repro.papers.lie_decomp.models import METHODS, build_model  # noqa: F401  (METHODS: the framework checks the grid)

DATASETS = ("digits", "affnist")
TEST_SETS = ("clean", "affine", "homography")


def units(cfg: DictConfig) -> list[Unit]:
    if cfg.data.dataset not in DATASETS:
        raise ConfigError(f"paper.data.dataset={cfg.data.dataset!r} is unknown; choose one of {DATASETS}")
    return grid(cfg.data.dataset, cfg.methods)


def load_splits(cfg: DictConfig, ctx: RunContext) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    data = cfg.data
    if data.dataset == "affnist":
        return affnist_splits(ctx.data_dir, data.validation, data.max_images, ctx.data_seed("split"))
    splits = digits_splits(OmegaConf.to_container(data.sizes), data.canvas, data.warps_per_digit,
                           OmegaConf.to_container(data.warp), data.projective, ctx.data_seed("split"))
    ctx.log.info("digits: %s", {name: len(y) for name, (_, y) in splits.items()})
    return splits


def model_input(images: torch.Tensor, device: str) -> torch.Tensor:
    """Pixels in [0, 1] (uint8 files are divided by 255) normalised with mean 0.5 and std 0.5."""
    images = images.to(device)
    images = images.float() / 255.0 if images.dtype == torch.uint8 else images
    return (images - 0.5) / 0.5


def accuracy_and_loss(model: torch.nn.Module, split: tuple[torch.Tensor, torch.Tensor], batch_size: int,
                      device: str) -> tuple[float, float]:
    images, labels = split
    correct, loss = 0.0, 0.0
    for start in range(0, len(labels), batch_size):
        target = labels[start:start + batch_size].to(device)
        logits = model(model_input(images[start:start + batch_size], device))
        correct += float((logits.argmax(1) == target).sum())
        loss += float(F.cross_entropy(logits, target, reduction="sum"))
    return correct / len(labels), loss / len(labels)


def run_unit(cfg: DictConfig, ctx: RunContext, u: Unit) -> list[dict]:
    splits = ctx.shared("splits", lambda: load_splits(cfg, ctx))
    t, method = cfg.train, u.method
    model = build_model(method, OmegaConf.to_container(cfg.model)).to(ctx.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=t.lr, betas=(0.9, 0.999), weight_decay=t.weight_decay)
    train_images, train_labels = splits["train"]
    steps_per_epoch = math.ceil(len(train_labels) / t.batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=t.epochs * steps_per_epoch,
                                                          eta_min=t.min_lr)
    warp_ranges = OmegaConf.to_container(cfg.data.warp)

    def batches(epoch: int):
        shuffle = torch.Generator().manual_seed(ctx.child_seed("batches", epoch))
        order = torch.randperm(len(train_labels), generator=shuffle)
        augment = torch.Generator().manual_seed(ctx.child_seed("augment", epoch))
        for start in range(0, len(order), t.batch_size):
            index = order[start:start + t.batch_size]
            images = train_images[index]
            if method == "cnn_aug":  # the reference CNN sees random affine warps of the training digits
                images = images.float() / 255.0 if images.dtype == torch.uint8 else images
                images = warp(images, random_warps(images, warp_ranges, 0.0, augment))
            yield images, train_labels[index]

    def loss_fn(model: torch.nn.Module, batch) -> torch.Tensor:
        images, labels = batch
        return F.cross_entropy(model(model_input(images, ctx.device)), labels.to(ctx.device))

    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        acc, loss = accuracy_and_loss(model, splits["val"], t.eval_batch, ctx.device)
        return {"val/loss": loss, "val/acc": acc}

    result = fit(ctx, "", model, optimizer, batches, loss_fn, t.epochs, evaluate, select="val/loss",
                 scheduler=schedule)
    model.eval()
    row = {"eval": "main", "best_epoch": result.best_epoch, "val/acc": result.best_metrics["val/acc"],
           "params": sum(p.numel() for p in model.parameters()),
           "group_samples": cfg.model.samples if method in ("so2", "sl2", "gl2") else 0}
    rows = [row]
    with torch.no_grad():
        for name in TEST_SETS:
            row[f"{name}/acc"] = accuracy_and_loss(model, splits[name], t.eval_batch, ctx.device)[0]
        row["robustness_gap"] = row["clean/acc"] - row["affine/acc"]  # accuracy lost to the affine warps
        if method == "sl2":
            images, labels = splits["affine"]
            subset = (images[:cfg.samples_sweep.images], labels[:cfg.samples_sweep.images])
            for count in cfg.samples_sweep.counts:
                model.samples = count
                rows.append({"eval": "samples", "test_samples": count,
                             "affine_subset/acc": accuracy_and_loss(model, subset, t.eval_batch, ctx.device)[0]})
    ctx.log.info("%s: %s", method, {k: round(v, 4) for k, v in row.items() if "acc" in k})
    return rows
