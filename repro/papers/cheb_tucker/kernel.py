"""The Newton kernel 1/r as a sum of Gaussians, and particle potentials as canonical (CP) tensors.

Sinc quadrature of 1/r = (2/sqrt(pi)) int_R exp(-r^2 e^{2t} + t) dt with nodes t_k = k h:
    1/r ~= sum_k c_k exp(-p_k r^2),   c_k = (2/sqrt(pi)) h e^{t_k},   p_k = e^{2 t_k}.
The long-range part keeps the terms with p_k <= 1/r_s^2 (select by exponent, not by position).

A potential P(x) = sum_j q_j sum_k c_k exp(-p_k |x - x_j|^2) is separable per (j, k):
    P(x, y, z) = sum_r lam_r U1[x, r] U2[y, r] U3[z, r],   r = (j, k),  lam_r = q_j c_k,
    U_a[x, r] = exp(-p_k (x - x_j^a)^2).
"""

from dataclasses import dataclass

import numpy as np


@dataclass
class GaussianSum:
    weights: np.ndarray     # c_k, (K,)
    exponents: np.ndarray   # p_k, (K,)

    def __call__(self, r: np.ndarray) -> np.ndarray:
        """sum_k c_k exp(-p_k r^2) at distances r (any shape)."""
        r2 = np.asarray(r, dtype=float)[..., None] ** 2
        return (self.weights * np.exp(-self.exponents * r2)).sum(-1)

    def subset(self, keep: np.ndarray) -> "GaussianSum":
        return GaussianSum(self.weights[keep], self.exponents[keep])


def newton_gaussian_sum(step: float, k_min: int, k_max: int) -> GaussianSum:
    """Sinc (trapezoid) rule for 1/r with nodes t_k = k * step, k = k_min..k_max."""
    t = step * np.arange(k_min, k_max + 1)
    return GaussianSum((2 / np.sqrt(np.pi)) * step * np.exp(t), np.exp(2 * t))


def long_range_mask(kernel: GaussianSum, split_radius: float) -> np.ndarray:
    """Terms broad enough to be long range: p_k <= 1 / r_s^2."""
    return kernel.exponents <= 1.0 / split_radius**2


def ball_particles(count: int, radius: float, min_distance: float,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Uniform positions in a ball (rejection keeps pairwise distances >= min_distance), charges +-1."""
    positions: list[np.ndarray] = []
    while len(positions) < count:
        point = rng.uniform(-radius, radius, size=3)
        if np.linalg.norm(point) > radius:
            continue
        if positions and np.min(np.linalg.norm(np.array(positions) - point, axis=1)) < min_distance:
            continue
        positions.append(point)
    return np.array(positions), rng.choice([-1.0, 1.0], size=count)


def lattice_particles(side: int, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """side^3 cubic lattice centred at the origin, alternating charges (-1)^(i + j + l)."""
    index = np.stack(np.meshgrid(*[np.arange(side)] * 3, indexing="ij"), -1).reshape(-1, 3)
    return (index - (side - 1) / 2) * spacing, (-1.0) ** index.sum(1)


@dataclass
class CPTensor:
    """A potential sampled on a tensor grid: factors[a] is (len(points_a), R), lam is (R,)."""
    factors: list[np.ndarray]
    lam: np.ndarray

    @property
    def rank(self) -> int:
        return self.lam.size


def potential_cp(points: np.ndarray, positions: np.ndarray, charges: np.ndarray, kernel: GaussianSum) -> CPTensor:
    """CP factors of P on the grid points^3 (the same 1-D points in every mode)."""
    factors = []
    for axis in range(3):
        offsets = points[:, None, None] - positions[None, :, axis, None]               # (n, N, 1)
        factors.append(np.exp(-kernel.exponents * offsets**2).reshape(points.size, -1))  # (n, N*K)
    lam = (charges[:, None] * kernel.weights[None, :]).reshape(-1)
    return CPTensor(factors, lam)


def cp_to_full(cp: CPTensor, chunk: int = 1024) -> np.ndarray:
    """sum_r lam_r U1[:, r] o U2[:, r] o U3[:, r], in chunks of r (memory n2 n3 x chunk)."""
    u1, u2, u3 = cp.factors
    full = np.zeros((u1.shape[0], u2.shape[0] * u3.shape[0]))
    for start in range(0, cp.rank, chunk):
        part = slice(start, start + chunk)
        khatri_rao = (u2[:, None, part] * u3[None, :, part]).reshape(-1, u2[:, part].shape[1])
        full += (u1[:, part] * cp.lam[part]) @ khatri_rao.T
    return full.reshape(u1.shape[0], u2.shape[0], u3.shape[0])
