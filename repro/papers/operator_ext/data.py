"""Darcy flow on nested node grids (cpu scale) and the 2D Navier-Stokes files of the paper (scale=paper)."""

from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from repro.core.data import fetch
from repro.core.errors import DataUnavailableError
from repro.papers.transform_once.pde import darcy_pairs

ZENODO = "https://zenodo.org/records/15687518/files"


def darcy(cfg: DictConfig, seed: int, device: str) -> dict:
    """Solve once on the finest node grid, then take every 2^k-th node: the coarser grids hold the same
    functions at coinciding nodes. Coefficients and solutions are standardised with training statistics at
    the training resolution. Returns {"train": {points: (a, u)}, "val": ..., "test": ...}."""
    finest = max(cfg.resolutions)
    a, u = darcy_pairs(cfg.train + cfg.val + cfg.test, finest, np.random.default_rng(seed))
    stride = (finest - 1) // (cfg.train_points - 1)
    train_a, train_u = a[:cfg.train, ::stride, ::stride], u[:cfg.train, ::stride, ::stride]
    a = (a - train_a.mean()) / train_a.std()
    u = u / train_u.std()
    bounds = {"train": (0, cfg.train), "val": (cfg.train, cfg.train + cfg.val),
              "test": (cfg.train + cfg.val, cfg.train + cfg.val + cfg.test)}
    out = {}
    for name, (start, stop) in bounds.items():
        out[name] = {}
        for points in cfg.resolutions:
            step = (finest - 1) // (points - 1)
            out[name][points] = (torch.tensor(a[start:stop, ::step, ::step], device=device),
                                 torch.tensor(u[start:stop, ::step, ::step], device=device))
    return out


def _read_pt(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """A neuralop data file: a dict of tensors 'x' (input vorticity / forcing) and 'y' (target), shapes (N, n, n)
    or (N, 1, n, n). Loaded with weights_only=True: tensors and containers only, never code."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
        x, y = data["x"], data["y"]
    except Exception as error:  # a truncated download, a different format
        raise DataUnavailableError(f"{path} is not a neuralop data file with tensors 'x' and 'y' ({error}); "
                                   f"delete it and download it again from {ZENODO}") from error
    x, y = (t.squeeze(1) if t.dim() == 4 else t for t in (x, y))
    if x.dim() != 3 or x.shape != y.shape or x.shape[-1] != x.shape[-2] or not (torch.isfinite(x).all()
                                                                                   and torch.isfinite(y).all()):
        raise DataUnavailableError(f"{path}: expected finite square fields x, y of equal shape (N, n, n), got "
                                   f"{tuple(x.shape)} and {tuple(y.shape)}; download it again from {ZENODO}")
    return x.float(), y.float()


def navier_stokes(cfg: DictConfig, data_dir: Path, device: str) -> dict:
    """The paper's Navier-Stokes files (Zenodo record 15687518): train at cfg.train_points, test at every
    resolution. The input normaliser uses the training set's statistics."""
    root = data_dir / "operator_ext"

    def read(name: str) -> tuple[torch.Tensor, torch.Tensor]:
        return _read_pt(fetch(f"{ZENODO}/{name}", root / name))  # SHA-256 not published by the record

    n = cfg.train + cfg.val
    training = {}
    for points in sorted({cfg.train_points, *cfg.multires_points}):
        training[points] = read(f"nsforcing_{points}_train.pt")
        if len(training[points][0]) < n:
            raise DataUnavailableError(f"{root}: nsforcing_{points}_train.pt has {len(training[points][0])} "
                                       f"samples, fewer than train + val = {n}")
    train_x, train_y = training[cfg.train_points]
    mean, std = train_x[:cfg.train].mean(), train_x[:cfg.train].std()
    scale = train_y[:cfg.train].std()
    out = {"train": {p: ((x[:cfg.train] - mean) / std, y[:cfg.train] / scale) for p, (x, y) in training.items()},
           "val": {cfg.train_points: ((train_x[cfg.train:n] - mean) / std, train_y[cfg.train:n] / scale)},
           "test": {}}
    for points, name in zip(cfg.resolutions, cfg.test_files):
        x, y = read(name)
        out["test"][points] = ((x[:cfg.test] - mean) / std, y[:cfg.test] / scale)
    return {split: {p: (x.to(device), y.to(device)) for p, (x, y) in fields.items()} for split, fields in out.items()}
