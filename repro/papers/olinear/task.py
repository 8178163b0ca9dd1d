"""OLinear experiment: OLinear vs its basis / mixer ablations and RLinear, test MSE / MAE and FLOPs.

Grid: ``<dataset>/<variant>/horizon=<h>``, one model trained per replicate. Every variant of a replicate
sees the same series (the synthetic generator is seeded by ``ctx.data_seed``), so the comparisons are paired.
``flops`` (deterministic, run once) counts every variant's forward FLOPs at every data set and horizon: the
count depends on the shapes only, not on training.
"""

import math

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
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
    train, model = recipe(cfg, dataset.name, horizon)
    return train_one(train, model, dataset, splits_of(dataset, horizon, ctx), horizon, u.method, ctx)


def recipe(cfg: DictConfig, name: str, horizon: int) -> tuple[DictConfig, DictConfig]:
    """The training and model settings of one data set and horizon: the paper's defaults (``train``,
    ``model``) overridden by the data set's entry in ``recipes`` (the repository's per-data-set scripts),
    where a mapping gives one value per horizon."""
    own = cfg.get("recipes", {}).get(name, {})

    def resolve(defaults: DictConfig, override: DictConfig) -> DictConfig:
        merged = OmegaConf.to_container(OmegaConf.merge(defaults, override))
        for key, value in merged.items():
            if isinstance(value, dict):
                if horizon not in value:
                    raise ConfigError(f"paper.recipes.{name}.{key} has no value for horizon {horizon} "
                                      f"(it has {sorted(value)}); add one")
                merged[key] = value[horizon]
        return OmegaConf.create(merged)

    return resolve(cfg.train, own.get("train", {})), resolve(cfg.model, own.get("model", {}))


def lr_factor(schedule: str, epoch: int, epochs: int) -> float:
    """The learning-rate multiplier during (0-based) ``epoch``, as the repository's adjust_learning_rate
    sets it after each epoch: type1 halves it every epoch from the third on, type3 keeps it for three epochs
    and then multiplies by 0.9 per epoch, cosine anneals to 0 over ``epochs``."""
    if schedule == "type1":
        return 0.5 ** max(epoch - 1, 0)
    if schedule == "type3":
        return 1.0 if epoch < 3 else 0.9 ** (epoch - 3)
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * epoch / epochs))
    if schedule == "constant":
        return 1.0
    raise ConfigError(f"train.lr_schedule = {schedule!r}; use type1, type3, cosine or constant")


def horizon_weighted_l1(forecast: torch.Tensor, target: torch.Tensor, alpha: float) -> torch.Tensor:
    """The repository's training loss: mean over (batch, step i, channel) of |error| (i + 1)^-alpha, so the
    near steps weigh more (alpha = 0 is the plain L1 loss)."""
    steps = torch.arange(1, forecast.shape[1] + 1, device=forecast.device, dtype=forecast.dtype)
    return ((forecast - target).abs() * steps.pow(-alpha)[:, None]).mean()


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
            settings = recipe(cfg, dataset.name, horizon)[1]
            for variant in cfg.methods:
                model = build(variant, splits, dataset.lookback, horizon, channels, settings).to(ctx.device)
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


def errors(model: torch.nn.Module, windows: tuple[np.ndarray, np.ndarray], batch: int, device: str,
           alpha: float = 0.0) -> dict[str, float]:
    """MSE, MAE and the horizon-weighted L1 loss of the forecasts over every window of a split (strided
    views), one batch of windows copied at a time; accumulated in float64."""
    x_view, y_view = windows
    squared = absolute = weighted = 0.0
    weights = np.arange(1, y_view.shape[1] + 1, dtype=np.float64) ** -alpha
    with torch.no_grad():
        for i in range(0, len(x_view), batch):
            x = torch.as_tensor(np.ascontiguousarray(x_view[i:i + batch]), dtype=torch.float32, device=device)
            diff = y_view[i:i + batch] - model(x).cpu().numpy().astype(np.float64)
            squared += float(np.square(diff).sum())
            absolute += float(np.abs(diff).sum())
            weighted += float((np.abs(diff) * weights[:, None]).sum())
    count = y_view.shape[0] * y_view.shape[1] * y_view.shape[2]
    return {"mse": squared / count, "mae": absolute / count, "loss": weighted / count}


def train_one(t: DictConfig, settings: DictConfig, dataset: DictConfig, splits: dict, horizon: int, variant: str,
              ctx: RunContext) -> list[dict]:
    """One model trained as the repository does: Adam, the horizon-weighted L1 loss, the per-epoch
    learning-rate schedule, early stopping with ``patience`` on the validation loss, whose best epoch is
    the model tested."""
    channels = splits["train"][0].shape[2]
    model = build(variant, splits, dataset.lookback, horizon, channels, settings).to(ctx.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=t.lr)
    lookback = dataset.lookback
    series = torch.as_tensor(splits["train_series"], dtype=torch.float32, device=ctx.device)   # (T, C) only
    starts = torch.arange(len(splits["train"][0]), device=ctx.device) * dataset.train_stride
    steps_per_epoch = math.ceil(len(starts) / t.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(   # stepped per batch by fit: the epoch is step // steps
        optimizer, lambda step: lr_factor(t.lr_schedule, step // steps_per_epoch, t.epochs))

    def batches(epoch: int):
        order = torch.randperm(len(starts), generator=torch.Generator().manual_seed(ctx.child_seed("batches", epoch)))
        return order.to(ctx.device).split(t.batch_size)

    def loss_fn(model: torch.nn.Module, index: torch.Tensor) -> torch.Tensor:
        x, y = gather(series, starts[index], lookback, horizon)
        return horizon_weighted_l1(model(x), y, t.horizon_weight)

    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        val = errors(model, splits["val"], 256, ctx.device, t.horizon_weight)
        return {"val/loss": val["loss"], "val/mse": val["mse"]}

    result = fit(ctx, "", model, optimizer, batches, loss_fn, t.epochs, evaluate, select="val/loss",
                 scheduler=scheduler, patience=t.patience)
    model.eval()
    test = errors(model, splits["test"], 256, ctx.device)
    row = {"dataset": dataset.name, "variant": variant, "best_epoch": result.best_epoch,
           "epochs_run": len(result.history), "test/mse": test["mse"], "test/mae": test["mae"],
           "val/mse": result.best_metrics["val/mse"]}
    ctx.log.info("%s h=%d %s: test MSE %.4f MAE %.4f (%d epochs)", dataset.name, horizon, variant,
                 row["test/mse"], row["test/mae"], row["epochs_run"])
    return [row]
