"""Tucker format: HOSVD with a tolerance-chosen rank, HOOI (Tucker-ALS) and the contraction.

A Tucker tensor is core (r1, r2, r3) with factors U_a (n_a, r_a): T = core x_1 U_1 x_2 U_2 x_3 U_3.
"""

import numpy as np


def mode_product(tensor: np.ndarray, matrix: np.ndarray, mode: int) -> np.ndarray:
    """tensor x_mode matrix: contracts axis `mode` of the tensor with the columns of `matrix` (J, I_mode)."""
    return np.moveaxis(np.tensordot(matrix, tensor, axes=(1, mode)), 0, mode)


def tucker_to_full(core: np.ndarray, factors: list[np.ndarray]) -> np.ndarray:
    full = core
    for mode, factor in enumerate(factors):
        full = mode_product(full, factor, mode)
    return full


def unfold(tensor: np.ndarray, mode: int) -> np.ndarray:
    return np.moveaxis(tensor, mode, 0).reshape(tensor.shape[mode], -1)


def tolerance_rank(singular_values: np.ndarray, budget: float) -> int:
    """Smallest r whose discarded tail sqrt(sum_{i >= r} s_i^2) is <= budget (at least 1)."""
    tails = np.sqrt(np.cumsum(singular_values[::-1] ** 2))[::-1]      # tails[r] = ||s[r:]||
    return max(1, int(np.sum(tails > budget)))


def hosvd(tensor: np.ndarray, tol: float) -> tuple[np.ndarray, list[np.ndarray]]:
    """Truncated HOSVD: per mode, the leading left singular vectors of the unfolding, with r_a chosen so
    that its discarded tail is <= tol ||T||_F / sqrt(d); then ||T - T_tucker||_F <= tol ||T||_F."""
    budget = tol * np.linalg.norm(tensor) / np.sqrt(tensor.ndim)
    factors = []
    for mode in range(tensor.ndim):
        left, values, _ = np.linalg.svd(unfold(tensor, mode), full_matrices=False)
        factors.append(left[:, :tolerance_rank(values, budget)])
    core = tensor
    for mode, factor in enumerate(factors):
        core = mode_product(core, factor.T, mode)
    return core, factors


def hooi(tensor: np.ndarray, factors: list[np.ndarray], iterations: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Higher-order orthogonal iteration (Tucker-ALS) at fixed ranks, started from `factors` (e.g. HOSVD's):
    each sweep replaces U_a by the leading singular vectors of T x_{b != a} U_b^T unfolded in mode a."""
    factors = [f.copy() for f in factors]
    for _ in range(iterations):
        for mode in range(tensor.ndim):
            projected = tensor
            for other, factor in enumerate(factors):
                if other != mode:
                    projected = mode_product(projected, factor.T, other)
            left, _, _ = np.linalg.svd(unfold(projected, mode), full_matrices=False)
            factors[mode] = left[:, :factors[mode].shape[1]]
    core = tensor
    for mode, factor in enumerate(factors):
        core = mode_product(core, factor.T, mode)
    return core, factors
