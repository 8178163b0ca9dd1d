"""OLinear experiment: OLinear vs its basis / mixer ablations and RLinear, test MSE / MAE and FLOPs."""

import time

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig
from threadpoolctl import threadpool_limits
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from repro.core import forecasting
from repro.core.context import RunContext
from repro.core.errors import ConfigError
from repro.papers.olinear import data, models

VARIANTS = {  # name -> (transform, mixer); rlinear is the channel-independent linear baseline
    "olinear": ("ortho", "normlin"),
    "q_identity": ("identity", "normlin"),
    "q_dct": ("dct", "normlin"),
    "attention": ("ortho", "attention"),
    "rlinear": (None, None),
}


def run(cfg: DictConfig, ctx: RunContext) -> list[dict]:
    unknown = sorted(set(cfg.variants) - set(VARIANTS))
    if unknown:
        raise ConfigError(f"paper.variants has unknown {unknown}; choose from {list(VARIANTS)}")
    rows = []
    for dataset in cfg.datasets:
        series = load_series(dataset, ctx)
        for horizon in dataset.horizons:
            with threadpool_limits(1):    # small eigh / cov: BLAS threads only contend on a shared machine
                splits = prepare(series, dataset, horizon)
            for seed in ctx.replicate_seeds():
                for variant in cfg.variants:
                    rows += ctx.unit(f"{dataset.name}-{horizon}-{variant}-{seed}",
                                     lambda v=variant, s=seed, h=horizon, sp=splits, d=dataset:
                                     train_one(cfg, d, sp, h, v, s, ctx))
    return rows + lowest_mse_rows(rows)


def lowest_mse_rows(rows: list[dict]) -> list[dict]:
    """Per data set: OLinear's test MSE (mean over horizons and seeds) over the best other variant's."""
    frame = pd.DataFrame(rows)
    out = []
    for name, group in frame.groupby("dataset", sort=False):
        means = group.groupby("variant")["test/mse"].mean()
        if "olinear" in means and len(means) > 1:
            others = means.drop("olinear")
            out.append({"dataset": name, "summary": "olinear_vs_best_other", "best_other": others.idxmin(),
                        "mse_ratio": float(means["olinear"] / others.min())})
    return out


def load_series(dataset: DictConfig, ctx: RunContext) -> np.ndarray:
    if dataset.name == "synthetic":
        return data.latent_factor_series(dataset.length, dataset.channels, ctx.child_seed("data"))
    if dataset.name == "macrodata":
        return data.macrodata()
    return data.load_benchmark(dataset.name, ctx.data_dir)


def prepare(series: np.ndarray, dataset: DictConfig, horizon: int) -> dict:
    """z-score with training statistics, window each split, and build Q_in, Q_out from the training split."""
    parts = forecasting.chronological_splits(series, tuple(dataset.split), dataset.lookback)
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
    model.train()
    with counter, torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
        model(torch.zeros(1, lookback, channels))
    model.train(was_training)
    return int(counter.get_total_flops())


def predict(model: torch.nn.Module, x: np.ndarray, batch: int) -> np.ndarray:
    """Forecasts for every window, the last incomplete batch included."""
    with torch.no_grad():
        return np.concatenate([model(torch.as_tensor(x[i:i + batch], dtype=torch.float32)).numpy()
                               for i in range(0, len(x), batch)])


def train_one(cfg: DictConfig, dataset: DictConfig, splits: dict, horizon: int, variant: str, seed: int,
              ctx: RunContext) -> list[dict]:
    torch.manual_seed(seed)
    channels = splits["train"][0].shape[2]
    model = build(variant, splits, dataset.lookback, horizon, channels, cfg.model)
    t = cfg.train
    optimizer = torch.optim.Adam(model.parameters(), lr=t.lr)
    x_train, y_train = (torch.as_tensor(a, dtype=torch.float32) for a in splits["train"])
    generator = torch.Generator().manual_seed(seed)
    best, best_state, start = np.inf, None, time.perf_counter()
    for epoch in range(t.epochs):
        model.train()
        order = torch.randperm(len(x_train), generator=generator)
        for i in range(0, len(order), t.batch_size):
            index = order[i:i + t.batch_size]
            loss = (model(x_train[index]) - y_train[index]).abs().mean()     # L1 loss, as the paper
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{variant} seed {seed}: loss {loss.item()} at epoch {epoch}; lower train.lr")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        val = forecasting.mse(splits["val"][1], predict(model, splits["val"][0], 256))
        if val < best:      # model selection on validation MSE (early stopping's choice)
            best, best_state = val, {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    model.eval()
    y_hat = predict(model, splits["test"][0], 256)
    row = {"dataset": dataset.name, "horizon": horizon, "variant": variant, "seed": seed,
           "test/mse": forecasting.mse(splits["test"][1], y_hat), "test/mae": forecasting.mae(splits["test"][1], y_hat),
           "val/mse": best, "flops": flops(model, dataset.lookback, channels),
           "params": sum(p.numel() for p in model.parameters()), "train_time_s": time.perf_counter() - start}
    ctx.log.info("%s h=%d %s seed %d: test MSE %.4f MAE %.4f", dataset.name, horizon, variant, seed,
                 row["test/mse"], row["test/mae"])
    return [row]
