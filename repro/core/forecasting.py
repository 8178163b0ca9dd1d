"""Forecasting utilities shared by the time-series papers: splits, windows, scalers, metrics.

Shapes: a multivariate series is (T, C) (time first); windows are (n, length, C).
"""

import numpy as np


def chronological_splits(series: np.ndarray, fractions: tuple[float, float, float],
                         lookback: int) -> dict[str, np.ndarray]:
    """Train / val / test by time; val and test start `lookback` steps early so their first window has
    a full context (the Informer / Time-Series-Library convention). fractions sum to 1."""
    if not np.isclose(sum(fractions), 1.0):
        raise ValueError(f"split fractions {fractions} must sum to 1")
    n = len(series)
    n_train, n_val = int(n * fractions[0]), int(n * fractions[1])
    return {"train": series[:n_train],
            "val": series[n_train - lookback: n_train + n_val],
            "test": series[n_train + n_val - lookback:]}


def sliding_windows(series: np.ndarray, lookback: int, horizon: int, stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Every (context, target) pair: X (n, lookback, C) = series[s : s+lookback], Y (n, horizon, C) next.

    Both are read-only strided views of ``series``: no window is copied until a batch is gathered
    (``X[batch_indices]``), so memory stays that of the series (ECL at horizon 720 would need ~70 GB copied).
    """
    length = lookback + horizon
    if len(series) < length:
        raise ValueError(f"series of length {len(series)} is shorter than lookback + horizon = {length}")
    # (n, C, length) view -> (n, length, C), every `stride`-th start
    windows = np.lib.stride_tricks.sliding_window_view(series, length, axis=0).swapaxes(1, 2)[::stride]
    return windows[:, :lookback], windows[:, lookback:]


class StandardScaler:
    """z-scoring per channel with statistics of the training split only (no test leakage)."""

    def __init__(self, train: np.ndarray) -> None:
        self.mean = train.mean(axis=0)
        self.std = np.where(train.std(axis=0) > 1e-8, train.std(axis=0), 1.0)

    def transform(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.std

    def inverse(self, z: np.ndarray) -> np.ndarray:
        return z * self.std + self.mean


def mse(y: np.ndarray, y_hat: np.ndarray) -> float:
    return float(np.mean((np.asarray(y) - np.asarray(y_hat)) ** 2))


def mae(y: np.ndarray, y_hat: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(y) - np.asarray(y_hat))))


def seasonal_naive_scale(history: np.ndarray, period: int) -> float:
    """MASE denominator: mean |y_t - y_{t-m}| over the in-sample history (m = the series' period)."""
    history = np.asarray(history, dtype=float)
    if len(history) <= period:
        raise ValueError(f"history of length {len(history)} too short for seasonal period {period}")
    return float(np.mean(np.abs(history[period:] - history[:-period])))


def mase(y: np.ndarray, y_hat: np.ndarray, history: np.ndarray, period: int) -> float:
    """Mean absolute scaled error: MAE of the forecast / in-sample seasonal-naive MAE."""
    return mae(y, y_hat) / seasonal_naive_scale(history, period)


def quantile_loss(y: np.ndarray, quantiles: np.ndarray, levels: np.ndarray) -> float:
    """Mean pinball loss 2 * max(q (y - y_q), (q - 1)(y - y_q)) over levels and points.

    y (...,), quantiles (..., K) for levels (K,). The factor 2 makes the mean over a dense grid of levels
    approach the CRPS (and the 0.5 level equal the absolute error)."""
    diff = np.asarray(y)[..., None] - np.asarray(quantiles)
    levels = np.asarray(levels, dtype=float)
    return float(np.mean(2 * np.maximum(levels * diff, (levels - 1) * diff)))


def weighted_quantile_loss(y: np.ndarray, quantiles: np.ndarray, levels: np.ndarray) -> float:
    """GIFT-Eval's CRPS proxy: sum of pinball losses / sum |y|, averaged over the levels."""
    return quantile_loss(y, quantiles, levels) * np.asarray(y).size / float(np.abs(y).sum())
