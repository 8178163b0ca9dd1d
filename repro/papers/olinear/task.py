"""OLinear experiment: OLinear vs its basis / mixer ablations and RLinear, test MSE / MAE and FLOPs.

Grid: ``<dataset>/<variant>/horizon=<h>``, one model trained per replicate. Every variant of a replicate
sees the same series (the synthetic generator is seeded by ``ctx.data_seed``), so the comparisons are paired.
``flops`` (deterministic, run once) counts every variant's forward FLOPs at every data set and horizon: the
count depends on the shapes only, not on training.
"""

import numpy as np
import torch
from omegaconf import DictConfig
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from repro.core import forecasting
from repro.core.context import RunContext
from repro.core.errors import ConfigError
from repro.core.train import fit
from repro.core.units import Unit, grid, unit
from repro.papers.olinear import data, models

VARIANTS = {  # name -> (transform, mixer); rlinear is the channel-independent linear baseline
    "olinear": ("ortho", "normlin"),
    "q_identity": ("identity", "normlin"),
    "q_dct": ("dct", "normlin"),
    "attention": ("ortho", "attention"),
    "rlinear": (None, None),
}
METHODS = tuple(VARIANTS)


def units(cfg: DictConfig) -> list[Unit]:
    names = [d.name for d in cfg.datasets]
    if len(set(names)) != len(names):
        raise ConfigError(f"paper.datasets names must be unique; got {names}")
    if "flops" in names:
        raise ConfigError("paper.datasets: 'flops' names the FLOP-count unit; rename the data set")
    return [unit("flops", stochastic=False),
            *(u for d in cfg.datasets for u in grid(d.name, cfg.methods, horizon=d.horizons))]


def run_unit(cfg: DictConfig, ctx: RunContext, u: Unit) -> list[dict]:
    if u.experiment == "flops":
        return flops_rows(cfg, ctx)
    dataset = next(d for d in cfg.datasets if d.name == u.experiment)
    horizon = int(u.settings["horizon"])
    return train_one(cfg, dataset, splits_of(dataset, horizon, ctx), horizon, u.method, ctx)


def splits_of(dataset: DictConfig, horizon: int, ctx: RunContext) -> dict:
    series = ctx.shared(f"series-{dataset.name}", lambda: load_series(dataset, ctx))
    return ctx.shared(f"splits-{dataset.name}-{horizon}", lambda: prepare(series, dataset, horizon))


def flops_rows(cfg: DictConfig, ctx: RunContext) -> list[dict]:
    """Forward FLOPs per sample and parameter count of each variant, per data set and horizon."""
    rows = []
    for dataset in cfg.datasets:
        for horizon in dataset.horizons:
            splits = splits_of(dataset, horizon, ctx)
            channels = splits["train"][0].shape[2]
            for variant in cfg.methods:
                model = build(variant, splits, dataset.lookback, horizon, channels, cfg.model).to(ctx.device)
                rows.append({"method": variant, "dataset": dataset.name, "horizon": horizon,
                             "flops": flops(model, dataset.lookback, channels),
                             "params": sum(p.numel() for p in model.parameters())})
    return rows


def load_series(dataset: DictConfig, ctx: RunContext) -> np.ndarray:
    if dataset.name == "synthetic":
        return data.latent_factor_series(dataset.length, dataset.channels, ctx.data_seed("synthetic"))
    if dataset.name == "macrodata":
        return data.macrodata()
    return data.load_benchmark(dataset.name, ctx.data_dir, dataset.get("sha256"))


def split_parts(series: np.ndarray, dataset: DictConfig) -> dict[str, np.ndarray]:
    """Train / val / test by time: fixed ``borders`` (lengths, the ETT convention: 12/4/4 months) when
    given, else the ``split`` fractions; val and test start ``lookback`` steps early."""
    borders = dataset.get("borders")
    if borders is None:
        return forecasting.chronological_splits(series, tuple(dataset.split), dataset.lookback)
    n_train, n_val, n_test = (int(b) for b in borders)
    if n_train + n_val + n_test > len(series):
        raise ConfigError(f"{dataset.name}: borders {list(borders)} exceed the series length {len(series)}")
    lookback = dataset.lookback
    return {"train": series[:n_train], "val": series[n_train - lookback: n_train + n_val],
            "test": series[n_train + n_val - lookback: n_train + n_val + n_test]}


def prepare(series: np.ndarray, dataset: DictConfig, horizon: int) -> dict:
    """z-score with training statistics, window each split, and keep the training split for Q_in, Q_out."""
    parts = split_parts(series, dataset)
    scaler = forecasting.StandardScaler(parts["train"])
    parts = {name: scaler.transform(part) for name, part in parts.items()}
    out = {name: forecasting.sliding_windows(part, dataset.lookback, horizon,
                                             dataset.train_stride if name == "train" else 1)
           for name, part in parts.items()}
    out["train_series"] = parts["train"]
    return out


def build(variant: str, splits: dict, lookback: int, horizon: int, channels: int, m: DictConfig) -> torch.nn.Module:
    transform, mixer = VARIANTS[variant]
    if transform is None:
        return models.RLinear(lookback, horizon, channels)
    train = splits["train_series"]
    return models.OLinear(models.basis(transform, train, lookback), models.basis(transform, train, horizon),
                          channels, m.embed, m.width, m.hidden, m.blocks, mixer, m.dropout)


def flops(model: torch.nn.Module, lookback: int, channels: int) -> int:
    """FLOPs of one forward pass on one sample (torch's FlopCounterMode; matrix products only).

    Counted in training mode and with the math attention backend: eval mode's fused MultiheadAttention
    and the CPU flash kernel hide their matrix products from FlopCounterMode. Dropout is 0 here.
    """
    counter, was_training = FlopCounterMode(display=False), model.training
    device = next(model.parameters()).device
    model.train()
    with counter, torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
        model(torch.zeros(1, lookback, channels, device=device))
    model.train(was_training)
    return int(counter.get_total_flops())


def gather(series: torch.Tensor, starts: torch.Tensor, lookback: int,
           horizon: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The windows starting at ``starts`` of a (T, C) series on the device: x (B, lookback, C), y (B, horizon, C).
    Only the batch is gathered: the split's windows are never materialised (ECL at horizon 720 would be ~70 GB)."""
    window = series[starts[:, None] + torch.arange(lookback + horizon, device=series.device)]
    return window[:, :lookback], window[:, lookback:]


def errors(model: torch.nn.Module, windows: tuple[np.ndarray, np.ndarray], batch: int, device: str) -> dict[str, float]:
    """MSE and MAE of the forecasts over every window of a split (strided views), one batch of windows
    copied at a time; accumulated in float64."""
    x_view, y_view = windows
    squared = absolute = 0.0
    with torch.no_grad():
        for i in range(0, len(x_view), batch):
            x = torch.as_tensor(np.ascontiguousarray(x_view[i:i + batch]), dtype=torch.float32, device=device)
            diff = y_view[i:i + batch] - model(x).cpu().numpy().astype(np.float64)
            squared += float(np.square(diff).sum())
            absolute += float(np.abs(diff).sum())
    count = y_view.shape[0] * y_view.shape[1] * y_view.shape[2]
    return {"mse": squared / count, "mae": absolute / count}


def train_one(cfg: DictConfig, dataset: DictConfig, splits: dict, horizon: int, variant: str,
              ctx: RunContext) -> list[dict]:
    channels = splits["train"][0].shape[2]
    model = build(variant, splits, dataset.lookback, horizon, channels, cfg.model).to(ctx.device)
    t = cfg.train
    optimizer = torch.optim.Adam(model.parameters(), lr=t.lr)
    lookback = dataset.lookback
    series = torch.as_tensor(splits["train_series"], dtype=torch.float32, device=ctx.device)   # (T, C) only
    starts = torch.arange(len(splits["train"][0]), device=ctx.device) * dataset.train_stride

    def batches(epoch: int):
        order = torch.randperm(len(starts), generator=torch.Generator().manual_seed(ctx.child_seed("batches", epoch)))
        return order.to(ctx.device).split(t.batch_size)

    def loss_fn(model: torch.nn.Module, index: torch.Tensor) -> torch.Tensor:
        x, y = gather(series, starts[index], lookback, horizon)
        return (model(x) - y).abs().mean()     # L1 loss, as the paper

    def evaluate(model: torch.nn.Module) -> dict[str, float]:   # model selection on validation MSE
        return {"val/mse": errors(model, splits["val"], 256, ctx.device)["mse"]}

    result = fit(ctx, "", model, optimizer, batches, loss_fn, t.epochs, evaluate, select="val/mse")
    model.eval()
    test = errors(model, splits["test"], 256, ctx.device)
    row = {"dataset": dataset.name, "variant": variant, "best_epoch": result.best_epoch,
           "test/mse": test["mse"], "test/mae": test["mae"], "val/mse": result.best_metrics["val/mse"]}
    ctx.log.info("%s h=%d %s: test MSE %.4f MAE %.4f", dataset.name, horizon, variant, row["test/mse"], row["test/mae"])
    return [row]
