"""Transform Once: T1 against FNO.

Grid:
- ``burgers/<method>`` (and ``darcy``, ``navier_stokes`` at paper scale): train one model per replicate,
  test relative L2 in physical space; every method of a replicate sees the same data.
- ``timing`` at each resolution (1D and 2D): FNO and T1 training steps timed side by side in one process.
- ``init``: activation std through the layers of an untrained T1 under the naive and the VP initialisation.
"""

import numpy as np
import torch
from omegaconf import DictConfig

from repro.core.context import RunContext
from repro.core.train import fit
from repro.core.units import Unit, grid, unit
from repro.papers.transform_once import data
from repro.papers.transform_once.models import FNO1d, FNO2d, T1_1d, T1_2d, idct

METHODS = {"fno": "FNO (rfft every layer, residual, naive init)", "fno_vp": "FNO with the VP init",
           "t1": "T1 (one DCT, VP init)", "t1_naive": "T1 with the naive FNO init"}
TWO_D = ("darcy", "navier_stokes")


def units(cfg: DictConfig) -> list[Unit]:
    out = []
    for task in cfg.tasks:
        out += grid(task, cfg.methods if task == "burgers" else cfg.methods_2d)
    out += grid("timing", dims=[1], resolution=cfg.timing.resolutions_1d)
    out += grid("timing", dims=[2], resolution=cfg.timing.resolutions_2d)
    out.append(unit("init"))
    return out


def run_unit(cfg: DictConfig, ctx: RunContext, u: Unit) -> list[dict]:
    if u.experiment == "timing":
        return timing_rows(cfg, ctx, u.settings["dims"], u.settings["resolution"])
    if u.experiment == "init":
        return init_rows(cfg, ctx)
    splits = ctx.shared(u.experiment, lambda: load(cfg, ctx, u.experiment))
    return train_one(cfg, ctx, u.experiment, u.method, splits)


def load(cfg: DictConfig, ctx: RunContext, task: str) -> dict[str, tuple]:
    if task == "burgers":
        return data.burgers(cfg.burgers, ctx.data_seed("burgers"), ctx.device)
    if task == "darcy":
        return data.darcy(cfg.darcy, ctx.data_seed("darcy"), ctx.device)
    return data.navier_stokes(cfg.navier_stokes, ctx.data_dir, ctx.device)


def build(cfg: DictConfig, task: str, method: str, points: int) -> torch.nn.Module:
    """The model of ``method`` for a 1D (burgers) or 2D task at ``points`` grid points per axis."""
    if task == "burgers":
        m = cfg.model_1d
        if method.startswith("fno"):
            return FNO1d(m.width, m.modes_fno, m.layers_fno, points, init="vp" if method == "fno_vp" else "naive")
        return T1_1d(m.width, m.modes_t1, m.layers, points, init="naive" if method == "t1_naive" else "vp")
    m = cfg.model_2d
    if method == "fno":
        return FNO2d(m.width, m.modes_fno, m.layers_fno)
    return T1_2d(m.width, m.modes_t1, m.layers, points, init="naive" if method == "t1_naive" else "vp")


def relative_l2(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """||prediction - target|| / ||target|| per sample (over the grid)."""
    return (prediction - target).flatten(1).norm(dim=1) / target.flatten(1).norm(dim=1)


def mean_relative_l2(model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor, batch: int) -> float:
    errors = [relative_l2(model(inputs[i:i + batch]), targets[i:i + batch]) for i in range(0, len(inputs), batch)]
    return float(torch.cat(errors).mean())


def train_one(cfg: DictConfig, ctx: RunContext, task: str, method: str, splits: dict) -> list[dict]:
    t = cfg.train
    epochs = t.epochs if task == "burgers" else t.epochs_2d
    train_inputs, train_targets = splits["train"]
    model = build(cfg, task, method, train_inputs.shape[-1]).to(ctx.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    steps_per_epoch = -(-len(train_inputs) // t.batch_size)
    step_every = t.step_every * epochs // t.epochs  # the same schedule shape over the task's epochs
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(step_every, 1) * steps_per_epoch,
                                                gamma=t.gamma)

    def batches(epoch: int):
        order = torch.randperm(len(train_inputs), generator=torch.Generator().manual_seed(ctx.child_seed("batches",
                                                                                                        epoch)))
        order = order.to(ctx.device)
        return [order[i:i + t.batch_size] for i in range(0, len(order), t.batch_size)]

    def loss_fn(model: torch.nn.Module, index: torch.Tensor) -> torch.Tensor:
        # Relative L2, the training loss of both official code bases; for T1 it equals the loss on the DCT
        # coefficients, since the orthonormal DCT preserves norms.
        return relative_l2(model(train_inputs[index]), train_targets[index]).mean()

    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        return {"val/rel_l2": mean_relative_l2(model, *splits["val"], t.eval_batch)}

    with ctx.stopwatch() as clock:
        result = fit(ctx, "", model, optimizer, batches, loss_fn, epochs, evaluate, select="val/rel_l2",
                     scheduler=scheduler)
    model.eval()
    with torch.no_grad():
        test = mean_relative_l2(model, *splits["test"], t.eval_batch)
    steps = epochs * steps_per_epoch
    return [{"task": task, "best_epoch": result.best_epoch, "val/rel_l2": result.best_metrics["val/rel_l2"],
             "test/rel_l2": test, "train_time_s": clock.seconds, "step_time_s": clock.seconds / steps,
             "params": sum(p.numel() for p in model.parameters())}]


def timing_rows(cfg: DictConfig, ctx: RunContext, dims: int, resolution: int) -> list[dict]:
    """Seconds per training step (forward, backward, Adam update) of FNO and T1 on random inputs, measured
    alternately in this process after warm-up steps; the median over the repeats."""
    tm = cfg.timing
    task = "burgers" if dims == 1 else "darcy"
    shape = (tm.batch_1d, resolution) if dims == 1 else (tm.batch_2d, resolution, resolution)
    inputs = torch.randn(shape, device=ctx.device)
    targets = torch.randn(shape, device=ctx.device)
    models = {method: build(cfg, task, method, resolution).to(ctx.device) for method in ("fno", "t1")}
    optimizers = {method: torch.optim.Adam(model.parameters(), lr=1e-3) for method, model in models.items()}

    def step(method: str) -> None:
        optimizers[method].zero_grad()
        relative_l2(models[method](inputs), targets).mean().backward()
        optimizers[method].step()

    for method in models:
        for _ in range(tm.warmup):
            step(method)
    seconds = {method: [] for method in models}
    for _ in range(tm.repeats):
        for method in models:
            with ctx.stopwatch() as clock:
                step(method)
            seconds[method].append(clock.seconds)
    fno, t1 = (float(np.median(seconds[m])) for m in ("fno", "t1"))
    return [{"fno_step_time_s": fno, "t1_step_time_s": t1, "speedup": fno / t1}]


def init_rows(cfg: DictConfig, ctx: RunContext) -> list[dict]:
    """Std of the hidden state in physical space (inverse DCT of the kept spectrum) after each layer of an
    untrained T1, relative to the std of the lifted input, for white-noise inputs."""
    c = cfg.init
    inputs = torch.randn(c.samples, c.points, device=ctx.device)
    rows = []
    for init in ("naive", "vp"):
        model = T1_1d(cfg.model_1d.width, cfg.model_1d.modes_t1, c.layers, c.points, init=init).to(ctx.device)
        with torch.no_grad():
            lifted, *spectra = model.hidden(inputs)
            base = float(lifted.std())
            for layer, spectrum in enumerate(spectra):
                physical = idct(torch.nn.functional.pad(spectrum, (0, c.points - spectrum.shape[-1])))
                rows.append({"method": init, "layer": layer, "std_ratio": float(physical.std()) / base})
    return rows
