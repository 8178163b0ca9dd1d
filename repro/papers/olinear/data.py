"""Data: a latent-factor generator, statsmodels macrodata, and the ETT / ECL / Weather CSVs."""

from pathlib import Path

import numpy as np
import pandas as pd

from repro.core.data import fetch, require
from repro.core.errors import ReproError

ETT_URL = "https://raw.githubusercontent.com/zhouhaoyi/ETDataset/main/ETT-small/{name}.csv"
ETT = ("ETTh1", "ETTh2", "ETTm1", "ETTm2")
BUNDLE = {"ECL": "electricity/electricity.csv", "Weather": "weather/weather.csv"}


def ar1(length: int, phi: float, sd: float, rng: np.random.Generator) -> np.ndarray:
    """Stationary AR(1): z_t = phi z_{t-1} + sd e_t, started from its stationary law."""
    z = np.empty(length)
    z[0] = rng.normal(0, sd / np.sqrt(1 - phi**2))
    noise = rng.normal(0, sd, length)
    for t in range(1, length):
        z[t] = phi * z[t - 1] + noise[t]
    return z


def latent_factor_series(length: int, channels: int, seed: int) -> np.ndarray:
    """x_i = sum_k W_ik f_k + eps_i, (length, channels): f1, f2 daily / weekly sines with random phase,
    f3, f4 AR(1) (0.98, sd 0.2) and (0.9, sd 0.5), W ~ N(0, 1), eps_i AR(1) (0.7, sd 0.3)."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    factors = np.stack([np.sin(2 * np.pi * t / 24 + rng.uniform(0, 2 * np.pi)),
                        np.sin(2 * np.pi * t / 168 + rng.uniform(0, 2 * np.pi)),
                        ar1(length, 0.98, 0.2, rng), ar1(length, 0.9, 0.5, rng)], axis=1)
    loadings = rng.standard_normal((channels, 4))
    noise = np.stack([ar1(length, 0.7, 0.3, rng) for _ in range(channels)], axis=1)
    return factors @ loadings.T + noise


LEVELS = ("realgdp", "realcons", "realinv", "realgovt", "realdpi", "cpi", "m1", "pop")
RATES = ("tbilrate", "unemp", "infl", "realint")


def macrodata() -> np.ndarray:
    """statsmodels macrodata (203 quarters): log-differences of the 8 level series, the 4 rates as they
    are (aligned, first quarter dropped); (202, 12)."""
    from statsmodels.datasets import macrodata as md

    frame = md.load_pandas().data
    levels = np.diff(np.log(frame[list(LEVELS)].to_numpy(float)), axis=0)
    return np.concatenate([levels, frame[list(RATES)].to_numpy(float)[1:]], axis=1)


def parse_benchmark_csv(path: Path) -> np.ndarray:
    """The Time-Series-Library CSV layout: a `date` column, then numeric channels (target `OT` last); every
    value finite, at least two rows and one channel (errors name the file and the fix)."""
    fix = "replace it with the data set's original CSV (ETDataset / the Time-Series-Library bundle)"
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ReproError(f"{path} is not a CSV ({error}); {fix}") from error
    if len(frame.columns) == 0 or frame.columns[0] != "date":
        raise ReproError(f"{path}: expected a first column named 'date', got {list(frame.columns)[:1]}; {fix}")
    if frame.shape[1] < 2 or len(frame) < 2:
        raise ReproError(f"{path}: {len(frame)} rows and {frame.shape[1] - 1} channels; a series needs at least two "
                         f"rows and one channel besides 'date'; {fix}")
    values = frame.drop(columns="date").apply(pd.to_numeric, errors="coerce").to_numpy(float)
    bad = ~np.isfinite(values)
    if bad.any():
        row, column = (int(i[0]) for i in np.nonzero(bad))
        raise ReproError(f"{path}: row {row} column {frame.columns[column + 1]!r} is missing, not a number or "
                         f"infinite; {fix}")
    return values


def load_benchmark(name: str, data_dir: Path, checksum: str | None = None) -> np.ndarray:
    """ETT* from the ETDataset repository (downloaded, verified against `checksum` when one is pinned);
    ECL / Weather from the Time-Series-Library bundle."""
    if name in ETT:
        return parse_benchmark_csv(fetch(ETT_URL.format(name=name), data_dir / "olinear" / f"{name}.csv", checksum))
    if name in BUNDLE:
        path = require(data_dir / "olinear" / BUNDLE[name], f"{name} CSV",
                       "download the Time-Series-Library / iTransformer dataset bundle (Google Drive link in "
                       "thuml/Time-Series-Library's README) and unpack it there")
        return parse_benchmark_csv(path)
    raise ValueError(f"unknown data set {name!r}; choose from {[*ETT, *BUNDLE, 'synthetic', 'macrodata']}")
