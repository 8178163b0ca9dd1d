"""The modified-inertia data set of the reference (experiments/datasets.py, ModifiedInertia).

k = 5 bodies; x = (masses pre-activation, positions) ~ N(0, 1)^(4k); masses m = softplus(x[:k]);
I = sum_i m_i (|r_i|^2 I_3 - r_i r_i^T); target Y = I + eps (I e_z) e_z^T, flattened row-major (9 values).
The eps term commutes with every orthogonal map that fixes e_z, so O(2) about z is exact and O(3) approximate.
"""

import numpy as np
import torch

from repro.papers.soft_equiv.reps import TensorRep

BODIES = 5
REP_IN = TensorRep((BODIES, BODIES))  # masses (scalars) then positions (vectors)
REP_OUT = TensorRep((0, 0, 1))          # the 3x3 (modified) inertia tensor


def inertia(x: np.ndarray) -> np.ndarray:
    """The inertia tensors (N, 3, 3) of inputs laid out as [masses (k), positions (3k)]."""
    masses, positions = x[:, :BODIES], x[:, BODIES:].reshape(len(x), BODIES, 3)
    squared = (positions ** 2).sum(-1)[..., None, None]
    outer = positions[..., :, None] * positions[..., None, :]
    return (masses[..., None, None] * (squared * np.eye(3) - outer)).sum(1)


def modified_inertia(x: np.ndarray, eps: float) -> np.ndarray:
    """Y = I + eps (I e_z) e_z^T, flattened to (N, 9)."""
    tensor = inertia(x)
    tensor[:, :, 2] += eps * tensor[:, :, 2]  # (I e_z) e_z^T adds the column I e_z to column z
    return tensor.reshape(len(x), 9)


def draw(count: int, eps: float, shift: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` samples; positions moved by ``shift`` (the reference's out-of-distribution option)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((count, 4 * BODIES))
    x[:, :BODIES] = np.logaddexp(0.0, x[:, :BODIES])  # softplus
    x[:, BODIES:] += shift
    return x, modified_inertia(x, eps)


def splits(sizes: dict[str, int], eps: float, ood_shift: float, seeds: dict[str, int],
           device: str) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """train/val/test from one distribution, ood with shifted positions; each split has its own seed."""
    out = {}
    for name, count in sizes.items():
        x, y = draw(count, eps, ood_shift if name == "ood" else 0.0, seeds[name])
        out[name] = (torch.tensor(x, dtype=torch.float32, device=device),
                     torch.tensor(y, dtype=torch.float32, device=device))
    return out
