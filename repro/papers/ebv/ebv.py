"""Equiangular basis vectors: the generator of the official Generate_EBV.py (restated), the Welch bound,
and pairwise-cosine summaries."""

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


def welch_bound(n: int, d: int) -> float:
    """Lower bound on max |cos| over n unit vectors in R^d (0 when n <= d: orthonormal rows exist)."""
    if n <= d:
        return 0.0
    return math.sqrt((n - d) / (d * (n - 1)))


def max_abs_cos(w: torch.Tensor) -> float:
    """The largest |cos| between two different rows of w."""
    w = F.normalize(w.double(), dim=1)
    gram = (w @ w.T).abs()
    gram.fill_diagonal_(0.0)
    return float(gram.max())


def pairwise_cos(w: torch.Tensor) -> np.ndarray:
    """The cosines of all pairs i < j of rows of w (float64)."""
    w = F.normalize(w.double(), dim=1)
    i, j = torch.triu_indices(len(w), len(w), offset=1, device=w.device)
    return (w @ w.T)[i, j].cpu().numpy()


@dataclass
class Generated:
    basis: torch.Tensor       # (n, d) unit rows, no gradient
    steps: int                # optimiser steps taken
    reached: bool             # max |cos| <= tau + tol at the stop
    max_abs_cos: float        # the generator's own measure at its last check (float32)


def generate_ebv(n: int, d: int, tau: float, steps: int, lr: float, slice_size: int, generator: torch.Generator,
                 device: str, tol: float = 1.0e-4) -> Generated:
    """Minimise sum_{i != j} relu(|cos(w_i, w_j)| - tau) with plain SGD, re-normalising the rows before every
    step; stop as soon as max |cos| <= tau + tol or after ``steps`` steps. Rows are processed in slices of
    ``slice_size`` whose gradients accumulate into one step (slicing saves memory and changes nothing)."""
    init = torch.randn(n, d, generator=generator, dtype=torch.float32).to(device)
    basis = torch.nn.Parameter(F.normalize(init, dim=1))
    optimizer = torch.optim.SGD([basis], lr=lr)
    rows = torch.arange(n, device=device)
    worst = math.inf
    for step in range(steps + 1):
        with torch.no_grad():
            basis.copy_(F.normalize(basis, dim=1))
        optimizer.zero_grad()
        worst = 0.0
        for start in range(0, n, slice_size):
            block = rows[start:start + slice_size]
            cos = (basis[block] @ basis.T).abs()
            cos = cos - F.one_hot(block, n).to(cos.dtype)   # drop |cos(w_i, w_i)| = 1
            worst = max(worst, float(cos.detach().max()))
            F.relu(cos - tau).sum().backward()
        if worst <= tau + tol or step == steps:
            return Generated(F.normalize(basis.detach(), dim=1), step, worst <= tau + tol, worst)
        optimizer.step()
    raise AssertionError("unreachable")
