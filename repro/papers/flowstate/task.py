"""FlowState experiment: train at the hourly rate, forecast zero-shot at other rates and on CO2.

Grid at cpu scale: ``zero_shot/<model>``, per replicate: ``flowstate`` (trained once, evaluated with the
correct s and with s = 1), ``mlp`` (the hourly MLP, evaluated raw and with input/output resampling) and
``seasonal_naive``. The units of one replicate share the training, validation and test series
(``ctx.data_seed``), so the methods are compared on the same forecasts' targets.

scale=paper instead pretrains on GIFT-Eval's non-leaking pretraining corpus and evaluates zero-shot on
GIFT-Eval (repro.papers.flowstate.gift_eval).
"""

from collections.abc import Callable

import numpy as np
import torch
from omegaconf import DictConfig

from repro.core import forecasting
from repro.core.context import RunContext
from repro.core.errors import ConfigError
from repro.core.train import fit
from repro.core.units import Unit, grid
from repro.papers.flowstate import data, gift_eval
from repro.papers.flowstate.models import MLP, patch_steps
from repro.papers.flowstate.training import build_flowstate, fit_flowstate

MLP_HORIZON = 48               # the fixed-horizon baseline's output steps (two days at the training rate)
MODELS = ("flowstate", "mlp", "seasonal_naive")
# Methods each unit reports: one trained model is evaluated in two ways.
REPORTED = {"flowstate": ("flowstate", "flowstate_s1"), "mlp": ("mlp_raw", "mlp_resampled"),
            "seasonal_naive": ("seasonal_naive",)}
METHODS = (*MODELS, *gift_eval.METHODS)


def units(cfg: DictConfig) -> list[Unit]:
    if cfg.get("benchmark") == "gift_eval":
        return gift_eval.units(cfg)
    return grid("zero_shot", MODELS)


def run_unit(cfg: DictConfig, ctx: RunContext, u: Unit) -> list[dict]:
    if u.experiment == "gift_eval":
        return gift_eval.run_unit(cfg, ctx, u)
    train = ctx.shared("train", lambda: data.generate(cfg.data.train_series, cfg.data.train_points, 1.0,
                                                      ctx.data_seed("train")))
    val = ctx.shared("val", lambda: data.generate(cfg.data.val_series, cfg.data.train_points, 1.0,
                                                  ctx.data_seed("val")))
    if u.method == "flowstate":
        model = build_flowstate(cfg, ctx.child_seed("init")).to(ctx.device)
        windows = hourly_windows(val, cfg.data.context, model.patch, cfg.train.val_windows,
                                 np.random.default_rng(ctx.data_seed("val_windows")))
        fit_flowstate(ctx, model, lambda rng, batch: hourly_windows(train, cfg.data.context, model.patch, batch, rng),
                      windows, cfg)
    elif u.method == "mlp":
        torch.manual_seed(ctx.child_seed("init"))
        model = MLP(cfg.data.mlp_context, MLP_HORIZON, cfg.model.mlp_hidden).to(ctx.device)
        fit_mlp(ctx, model, train, val, cfg)
    else:
        model = None
    if model is not None:
        model.eval()
    rows = []
    with torch.no_grad():
        for name, windows, period in test_sets(cfg, ctx):
            rows += evaluate(name, windows, period, cfg, u.method, model, ctx.device)
    return rows


def test_sets(cfg: DictConfig, ctx: RunContext) -> list[tuple[str, np.ndarray, int]]:
    """(name, windows (n, history + 2 period), period) of the replicate's synthetic test series at every
    step and of CO2 (weekly and monthly, rolling origins one period apart)."""
    def build() -> list[tuple[str, np.ndarray, int]]:
        out = []
        for dt in cfg.data.test_steps:
            period = round(24 / dt)
            history = max(cfg.data.mlp_context, int(cfg.data.context / dt))
            out.append((f"synthetic_{dt:g}h", data.generate(cfg.data.test_series, history + 2 * period, dt,
                                                            ctx.data_seed("test", f"{dt:g}")), period))
        for rate, period in (("weekly", 52), ("monthly", 12)):
            series = data.co2(rate)
            history = max(cfg.data.mlp_context, int(cfg.data.context * period / 24))
            ends = [len(series) - i * period for i in range(cfg.co2_origins)]
            out.append((f"co2_{rate}", np.stack([series[end - history - 2 * period: end] for end in ends]), period))
        return out

    return ctx.shared("tests", build)


def hourly_windows(train: np.ndarray, context: int, patch: float, batch: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """A batch of (context + one patch) windows of the hourly training series, and their scale s = 1."""
    length = context + patch_steps(patch, 1.0)
    rows = rng.integers(0, len(train), batch)
    starts = rng.integers(0, train.shape[1] - length + 1, batch)
    return train[rows[:, None], starts[:, None] + np.arange(length)], 1.0


def mlp_windows(series: np.ndarray, context: int, size: int, rng: np.random.Generator) -> torch.Tensor:
    """Random (context + 48)-step windows of the hourly series, each divided by its context's std so that
    every series weighs the same."""
    rows = rng.integers(0, len(series), size)
    starts = rng.integers(0, series.shape[1] - context - MLP_HORIZON + 1, size)
    window = torch.as_tensor(series[rows[:, None], starts[:, None] + np.arange(context + MLP_HORIZON)],
                             dtype=torch.float32)
    return window / window[:, :context].std(1, keepdim=True).clamp(min=1e-5)


def fit_mlp(ctx: RunContext, model: MLP, train: np.ndarray, val: np.ndarray, cfg: DictConfig) -> None:
    """Adam on the L1 loss of random (256-step context, 48-step target) hourly windows through ``fit``: an
    "epoch" is ``train.mlp_eval_every`` steps, then the L1 loss on fixed validation windows."""
    t, context = cfg.train, cfg.data.mlp_context
    if t.mlp_steps % t.mlp_eval_every:
        raise ConfigError(f"paper.train.mlp_steps={t.mlp_steps} must be a multiple of "
                          f"paper.train.mlp_eval_every={t.mlp_eval_every}")
    optimizer = torch.optim.Adam(model.parameters(), lr=t.lr)
    held_out = mlp_windows(val, context, t.val_windows, np.random.default_rng(ctx.data_seed("mlp_val_windows")))
    held_out = held_out.to(ctx.device)

    def batches(epoch: int):
        rng = np.random.default_rng(ctx.child_seed("batches", epoch))
        for _ in range(t.mlp_eval_every):
            yield mlp_windows(train, context, t.mlp_batch, rng).to(ctx.device)

    def loss_fn(model: MLP, window: torch.Tensor) -> torch.Tensor:
        return (model(window[:, :context]) - window[:, context:]).abs().mean()

    fit(ctx, "", model, optimizer, batches, loss_fn, t.mlp_steps // t.mlp_eval_every,
        lambda m: {"val/l1": loss_fn(m, held_out).item()}, select="val/l1")


def rollout(predict: Callable[[np.ndarray], np.ndarray], context: np.ndarray, horizon: int) -> np.ndarray:
    """A fixed-horizon forecaster run autoregressively (its forecast appended to the context) to `horizon`."""
    out, x = [], context
    while sum(p.shape[1] for p in out) < horizon:
        step = predict(x)
        out.append(step)
        x = np.concatenate([x, step], axis=1)[:, -context.shape[1]:]
    return np.concatenate(out, axis=1)[:, :horizon]


def resampled(predict: Callable[[np.ndarray], np.ndarray], history: np.ndarray, s: float, length: int,
              horizon: int) -> np.ndarray:
    """The last `length` model hours of the history linearly interpolated to the hourly grid, an hourly
    forecast, interpolated back to the series' own steps; one data step lasts s model hours."""
    own = -s * np.arange(history.shape[1])[::-1]                    # model time of each history step
    hourly = np.arange(-(length - 1), 1, dtype=float)
    x = np.stack([np.interp(hourly, own, row) for row in history])
    y = rollout(predict, x, int(np.ceil(s * horizon)))             # model hours 1..
    grid = np.arange(0, y.shape[1] + 1, dtype=float)
    return np.stack([np.interp(s * np.arange(1, horizon + 1), grid, np.r_[row_x[-1], row_y])
                     for row_x, row_y in zip(x, y)])


def evaluate(name: str, windows: np.ndarray, period: int, cfg: DictConfig, unit_method: str,
             model: torch.nn.Module | None, device: str) -> list[dict]:
    """MASE (median / point forecast) and scaled quantile loss per reported method, mean over series;
    s = 24 / period.

    windows (n, history + 2 period). FlowState reads the last floor(context / s) steps (the official
    inference rule: a fixed span of model time), the hourly baselines the last 256 steps, mlp_resampled
    the last 256 model hours; the MASE scale is the seasonal-naive error over the whole history."""
    horizon, s = 2 * period, 24 / period
    x, y = windows[:, :-horizon], windows[:, -horizon:]
    levels = np.array(list(cfg.quantiles))
    median = int(np.argmin(np.abs(levels - 0.5)))
    hourly_context = x[:, -cfg.data.mlp_context:]

    def point_mlp(c: np.ndarray) -> np.ndarray:
        return model(torch.as_tensor(c, dtype=torch.float32, device=device)).cpu().numpy()

    def flow(scale: float, context: np.ndarray) -> np.ndarray:
        return model.forecast(torch.as_tensor(context, dtype=torch.float32, device=device), scale,
                              horizon).cpu().numpy()

    if unit_method == "flowstate":
        forecasts = {"flowstate": flow(s, x[:, -int(cfg.data.context / s):]),
                     "flowstate_s1": flow(1.0, hourly_context)}
    elif unit_method == "mlp":
        forecasts = {"mlp_raw": rollout(point_mlp, hourly_context, horizon),
                     "mlp_resampled": resampled(point_mlp, x, s, cfg.data.mlp_context, horizon)}
    else:
        forecasts = {"seasonal_naive": np.stack([x[:, -period + (j % period)] for j in range(horizon)], axis=1)}
    scales = np.array([forecasting.seasonal_naive_scale(row, period) for row in x])
    params = parameter_count(model) if model is not None else 0
    rows = []
    for method, forecast in forecasts.items():
        quantiles = forecast if forecast.ndim == 3 else np.repeat(forecast[..., None], len(levels), axis=2)
        mase = np.abs(y - quantiles[..., median]).mean(1) / scales
        sql = np.array([forecasting.quantile_loss(a, q, levels) for a, q in zip(y, quantiles)]) / scales
        rows.append({"dataset": name, "period": period, "s": s, "method": method, "params": params,
                     "mase": float(mase.mean()), "sql": float(sql.mean())})
    return rows


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
