"""Extending CNN, U-Net and ViT layers to function spaces, against FNO, across resolutions.

Grid: ``<task>/<method>`` trains one model per replicate at the training resolution (or, for
``unet_multires``, at several) and reports the test relative L2 at every test resolution; every method of a
replicate sees the same functions. The ``unet`` unit also reports the same trained U-Net run through
input-output interpolation (method ``unet_io``).
"""

import torch
from omegaconf import DictConfig

from repro.core.context import RunContext
from repro.core.train import fit
from repro.core.units import Unit, grid
from repro.papers.operator_ext import data
from repro.papers.operator_ext.layers import FNO2d, InputOutputInterpolation, UNet, ViT

METHODS = {"fno": "FNO (spectral convolutions)", "unet": "U-Net with pixel kernels",
           "unet_interp": "U-Net with kernels resampled to the grid (the paper's recipe)",
           "unet_multires": "U-Net with pixel kernels trained on several resolutions",
           "vit": "ViT with pixel patches"}


def units(cfg: DictConfig) -> list[Unit]:
    return grid(cfg.data.task, cfg.methods)


def run_unit(cfg: DictConfig, ctx: RunContext, u: Unit) -> list[dict]:
    splits = ctx.shared("data", lambda: load(cfg, ctx))
    return train_one(cfg, ctx, u.method, splits)


def load(cfg: DictConfig, ctx: RunContext) -> dict:
    if cfg.data.task == "darcy":
        return data.darcy(cfg.data, ctx.data_seed("darcy"), ctx.device)
    return data.navier_stokes(cfg.data, ctx.data_dir, ctx.device)


def build(cfg: DictConfig, method: str) -> torch.nn.Module:
    m, kind, base = cfg.model, cfg.data.grid, cfg.data.train_points
    if method == "fno":
        return FNO2d(m.fno.width, m.fno.modes, m.fno.layers, kind)
    if method == "vit":
        return ViT(m.vit.patch, m.vit.dim, m.vit.depth, m.vit.heads, m.vit.mlp, kind)
    return UNet(list(m.unet.channels), m.unet.kernel, m.unet.blocks, base, kind,
                interpolate=method == "unet_interp")


def relative_l2(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """||prediction - target|| / ||target|| per sample (the grid's quadrature weights cancel)."""
    return (prediction - target).flatten(1).norm(dim=1) / target.flatten(1).norm(dim=1)


def absolute_l2(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The L2 norm of the error as a function: sqrt(h^2 sum |e|^2) with h = 1 / n per axis, per sample."""
    return (prediction - target).flatten(1).norm(dim=1) / prediction.shape[-1]


def mean_relative_l2(model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor, batch: int) -> float:
    errors = [relative_l2(model(inputs[i:i + batch]), targets[i:i + batch]) for i in range(0, len(inputs), batch)]
    return float(torch.cat(errors).mean())


def train_one(cfg: DictConfig, ctx: RunContext, method: str, splits: dict) -> list[dict]:
    t, base = cfg.train, cfg.data.train_points
    model = build(cfg, method).to(ctx.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    # Multi-resolution training cycles through the training resolutions batch by batch; the others train at
    # the base resolution only. Every batch holds different samples, so each resolution sees every sample
    # over len(resolutions) epochs.
    train_resolutions = list(cfg.data.multires_points) if method == "unet_multires" else [base]
    count = len(splits["train"][base][0])
    steps_per_epoch = -(-count // t.batch_size)
    # StepLR: the learning rate times gamma after every `step_fraction` of the training (an official config's
    # step_size / n_epochs, per model), counted in optimiser steps.
    fraction = t.step_fraction.get(method, t.step_fraction.default)
    step_size = max(1, round(fraction * t.epochs * steps_per_epoch))
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=t.gamma)

    def batches(epoch: int):
        order = torch.randperm(count, generator=torch.Generator().manual_seed(ctx.child_seed("batches", epoch)))
        order = order.to(ctx.device)
        chunks = [order[i:i + t.batch_size] for i in range(0, count, t.batch_size)]
        return [(train_resolutions[(epoch + k) % len(train_resolutions)], index) for k, index in enumerate(chunks)]

    def loss_fn(model: torch.nn.Module, batch: tuple[int, torch.Tensor]) -> torch.Tensor:
        points, index = batch
        a, u = splits["train"][points]
        return absolute_l2(model(a[index]), u[index]).mean()  # the official training loss: absolute L2

    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        return {"val/rel_l2": mean_relative_l2(model, *splits["val"][base], t.eval_batch)}

    fit(ctx, "", model, optimizer, batches, loss_fn, t.epochs, evaluate, select="val/rel_l2", scheduler=scheduler)
    model.eval()
    evaluated = {method: model}
    if method == "unet":
        evaluated["unet_io"] = InputOutputInterpolation(model, base, cfg.data.grid)
    params = sum(p.numel() for p in model.parameters())
    rows = []
    with torch.no_grad():
        for name, network in evaluated.items():
            row = {"method": name, "params": params}
            for points, (a, u) in splits["test"].items():
                row[f"test/rel_l2_{points}"] = mean_relative_l2(network, a, u, t.eval_batch)
            for points in splits["test"]:
                row[f"ratio_{points}"] = row[f"test/rel_l2_{points}"] / row[f"test/rel_l2_{base}"]
            rows.append(row)
    return rows
