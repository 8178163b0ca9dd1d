"""The data sets of each experiment: Burgers and Darcy (generated), 2D Navier-Stokes (paper scale, FNO release)."""

from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from repro.core.data import require
from repro.core.errors import DataUnavailableError
from repro.papers.transform_once.pde import burgers_pairs, darcy_pairs

NS_FILE = "ns_V1e-3_N5000_T50.mat"


def split(inputs: np.ndarray, targets: np.ndarray, sizes: dict[str, int], device: str) -> dict[str, tuple]:
    """Consecutive train/val/test blocks as float tensors on the device."""
    out, start = {}, 0
    for name in ("train", "val", "test"):
        stop = start + sizes[name]
        out[name] = (torch.tensor(inputs[start:stop], device=device), torch.tensor(targets[start:stop], device=device))
        start = stop
    return out


def burgers(cfg: DictConfig, seed: int, device: str) -> dict[str, tuple]:
    """Solve on cfg.solve_points points, keep every (solve_points / points)-th point."""
    count = cfg.train + cfg.val + cfg.test
    u0, u1 = burgers_pairs(count, cfg.solve_points, cfg.nu, cfg.dt, np.random.default_rng(seed))
    stride = cfg.solve_points // cfg.points
    return split(u0[:, ::stride], u1[:, ::stride], cfg, device)


def darcy(cfg: DictConfig, seed: int, device: str) -> dict[str, tuple]:
    """Coefficients standardised with the training split's mean and standard deviation."""
    count = cfg.train + cfg.val + cfg.test
    a, u = darcy_pairs(count, cfg.points, np.random.default_rng(seed))
    a = (a - a[:cfg.train].mean()) / a[:cfg.train].std()
    return split(a, u, cfg, device)


def navier_stokes(cfg: DictConfig, data_dir: Path, device: str) -> dict[str, tuple]:
    """FNO's 2D Navier-Stokes release (viscosity 1e-3, 64 x 64, 50 time units), a MATLAB v7.3 (HDF5) file:
    'a' the initial vorticity, 'u' the vorticity at t = 1..50 (stored transposed, time first). Train and
    validation are the first samples, test the last ones."""
    import h5py

    path = require(data_dir / "navier_stokes" / NS_FILE, "FNO's Navier-Stokes data (viscosity 1e-3)",
                   f"download {NS_FILE} from the FNO data release (github.com/neuraloperator/neuraloperator, "
                   "'Data' links of the FNO paper) and place it there")
    try:
        with h5py.File(path, "r") as f:
            a = np.asarray(f["a"], dtype=np.float32).transpose(2, 1, 0)   # (N, x, y)
            u = np.asarray(f["u"], dtype=np.float32)                      # (T, y, x, N)
    except (OSError, KeyError) as error:
        raise DataUnavailableError(f"{path} is not the FNO Navier-Stokes file with datasets 'a' and 'u' "
                                   f"({error}); download {NS_FILE} again") from error
    target = u[cfg.target_time - 1].transpose(2, 1, 0)
    needed = cfg.train + cfg.val + cfg.test
    if a.shape != target.shape or a.shape[0] < needed or not (np.isfinite(a).all() and np.isfinite(target).all()):
        raise DataUnavailableError(f"{path}: expected finite fields with the same shape and >= {needed} samples, "
                                   f"got a {a.shape}, u {u.shape}; download {NS_FILE} again")
    # Train and validation from the start of the file, test from its end, as the official datamodule does.
    kept = np.r_[0:cfg.train + cfg.val, len(a) - cfg.test:len(a)]
    return split(a[kept], target[kept], cfg, device)
