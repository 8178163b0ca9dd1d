"""Data: the synthetic continuous-indexed tensors (generated, deterministic per seed) and loaders for the
paper's processed arrays (BeijingAir PM2.5 / PM10 / SO2, US-TEMP).

Synthetic (indices t ~ U[0, 1]^K, fresh test indices):
- K = 2, rank 1: y = u1(t1) u2(t2) + e, u1(t) = exp(-2t) sin(1.5 pi t), u2(t) = sin(2 pi t)^2 cos(2 pi t);
- K = 3, Tucker (2, 2, 2) with core entries N(0, 1):
  u^1 = (sin 2 pi t, cos 2 pi t), u^2 = ((1 - sin(pi t / 2)^3) sin 4 pi t, sin 2 pi t),
  u^3 = (-2 cos 3 pi t sin 3 pi t sin 2 pi t, exp(-2t) sin 1.5 pi t).
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from repro.core.data import fetch, require
from repro.papers.funbat.model import batched_kron


@dataclass
class TensorData:
    train_index: np.ndarray   # (N, K) real-valued
    train_y: np.ndarray
    test_index: np.ndarray
    test_y: np.ndarray
    truth: list | None = None  # the true latent functions per mode (synthetic only)


def u1_k2(t: np.ndarray) -> np.ndarray:
    return np.exp(-2 * t) * np.sin(1.5 * np.pi * t)


def u2_k2(t: np.ndarray) -> np.ndarray:
    return np.sin(2 * np.pi * t) ** 2 * np.cos(2 * np.pi * t)


def functions_k3() -> list:
    return [
        lambda t: np.stack([np.sin(2 * np.pi * t), np.cos(2 * np.pi * t)], 1),
        lambda t: np.stack([(1 - np.sin(np.pi * t / 2) ** 3) * np.sin(4 * np.pi * t), np.sin(2 * np.pi * t)], 1),
        lambda t: np.stack([-2 * np.cos(3 * np.pi * t) * np.sin(3 * np.pi * t) * np.sin(2 * np.pi * t),
                            np.exp(-2 * t) * np.sin(1.5 * np.pi * t)], 1),
    ]


def synthetic(modes: int, train: int, test: int, noise: float, seed: int) -> TensorData:
    rng = np.random.default_rng(seed)
    if modes == 2:
        truth = [lambda t: u1_k2(t)[:, None], lambda t: u2_k2(t)[:, None]]
        core = np.ones(1)
    elif modes == 3:
        truth, core = functions_k3(), rng.normal(size=8)
    else:
        raise ValueError(f"synthetic tensors have K = 2 or 3 modes, not {modes}")

    def entries(count: int) -> tuple[np.ndarray, np.ndarray]:
        index = rng.uniform(0, 1, size=(count, modes))
        clean = batched_kron([f(index[:, k]) for k, f in enumerate(truth)]) @ core
        return index, clean + noise * rng.normal(size=count)

    train_index, train_y = entries(train)
    test_index, test_y = entries(test)
    return TensorData(train_index, train_y, test_index, test_y, truth)


# The authors' processed arrays: a pickled dict {"ndims", "data": [fold dicts]} saved with np.save.
# Discrete versions ship in their repository (stable URLs at a fixed commit); the continuous-index versions
# (CONTI_*.npy) come from their shared folder only.
REPOSITORY = ("https://github.com/xuangu-fang/Functional-Bayesian-Tucker-Decomposition/raw/"
              "100d74363e8cf403d5d643e65f59622dbf8f15e2/")
PAPER_FILES = {
    "beijing_pm25": "data/beijing/beijing_PM2.5/CONTI_428x501x1461.npy",
    "beijing_pm10": "data/beijing/beijing_PM10/CONTI_428x501x1461.npy",
    "beijing_so2": "data/beijing/beijing_SO2/CONTI_428x501x1461.npy",
    "us_temp": "data/US_temp/DISCT_15x95x267.npy",
}


def paper_file(name: str, data_dir: Path) -> Path:
    if name not in PAPER_FILES:
        raise ValueError(f"unknown FunBaT data set {name!r}; choose from {sorted(PAPER_FILES)} or synthetic_k2/k3")
    relative = PAPER_FILES[name]
    dest = Path(data_dir) / "funbat" / Path(relative).name.replace(".npy", f"_{name}.npy")
    if "CONTI" in relative:
        return require(dest, f"FunBaT's continuous-index {name} array",
                       f"get {Path(relative).name} from the authors' shared data folder (linked from "
                       f"{REPOSITORY.split('/raw/')[0]}) and save it at this path")
    return fetch(REPOSITORY + relative, dest)


def parse_fold(path: Path, fold: int) -> TensorData:
    """One train/test split of an authors' array; continuous keys (tr_ind_CONTI) are preferred, integer keys
    (tr_ind) otherwise. Every mode's indices are scaled to [0, 1] with the training range."""
    content = np.load(path, allow_pickle=True).item()
    split = content["data"][fold]
    suffix = "_CONTI" if "tr_ind_CONTI" in split else ""
    train_index = np.asarray(split["tr_ind" + suffix], dtype=float)
    test_index = np.asarray(split["te_ind" + suffix], dtype=float)
    low, high = train_index.min(0), train_index.max(0)
    scale = np.where(high > low, high - low, 1.0)
    return TensorData((train_index - low) / scale, np.asarray(split["tr_y"], dtype=float).ravel(),
                      (test_index - low) / scale, np.asarray(split["te_y"], dtype=float).ravel())
