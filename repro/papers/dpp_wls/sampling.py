"""Sampling on a finite pool that stands for mu (uniform on [-1, 1]^d): the pool's empirical measure is mu, so all
norms and the projection P_m f are exact on the pool.

phi = sqrt(N_c) Q with Q (N_c x m) orthonormal columns spanning the Legendre polynomials, so (1/N_c) phi^T phi = I.
Inverse Christoffel function K_m(x_i, x_i) = |phi(x_i)|^2; optimal density rho_m(x_i) = K_m(x_i, x_i) / m w.r.t. mu,
i.e. pool probabilities |Q_i|^2 / m; WLS weights w(x) = m / K_m(x, x).
"""

import numpy as np
from numpy.polynomial import legendre

STRATEGIES = ("iid", "dpp_rep", "volume")


def total_degree_indices(d: int, degree: int) -> list[tuple[int, ...]]:
    """Multi-indices k in N^d with |k|_1 <= degree (the downward-closed total-degree set); m = C(degree + d, d)."""
    if d == 1:
        return [(k,) for k in range(degree + 1)]
    if d == 2:
        return [(i, j) for i in range(degree + 1) for j in range(degree + 1) if i + j <= degree]
    raise ValueError(f"d = {d} is not supported; use d = 1 or d = 2")


def orthonormal_basis(points: np.ndarray, degree: int) -> np.ndarray:
    """Q (N_c x m): QR of the Legendre Vandermonde matrix (1-D: m = degree + 1; 2-D: total degree <= degree)."""
    if points.ndim == 1:
        vandermonde = legendre.legvander(points, degree)
    else:
        full = legendre.legvander2d(points[:, 0], points[:, 1], [degree, degree])
        keep = [i * (degree + 1) + j for i, j in total_degree_indices(2, degree)]
        vandermonde = full[:, keep]
    q, _ = np.linalg.qr(vandermonde)
    return q


def sample_iid(q: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n i.i.d. pool indices from rho_m: P(i) = |Q_i|^2 / m."""
    cumulative = np.cumsum(np.sum(q**2, axis=1))
    return np.minimum(np.searchsorted(cumulative, rng.uniform(size=n) * cumulative[-1], side="right"), q.shape[0] - 1)


def sample_projection_dpp(q: np.ndarray, rng: np.random.Generator, count: int = 1,
                          chunk_mb: float | None = None) -> np.ndarray:
    """`count` independent m-point samples (count x m pool indices) of the projection DPP with kernel K = Q Q^T,
    by the chain rule: P(next = i) is the squared norm of Q_i's component orthogonal to the rows chosen so far,
    divided by the remaining rank. The samples run side by side (one matrix product per step for all of them), in
    chunks of at most `chunk_mb` MB of working arrays (dpp_chunk_samples; one chunk when it is None), drawn one
    after the other from the same `rng`."""
    size = dpp_chunk_samples(*q.shape, chunk_mb) if chunk_mb is not None else count
    return np.concatenate([_projection_dpp_chunk(q, rng, min(size, count - start))
                           for start in range(0, count, size)]) if count else np.empty((0, q.shape[1]), dtype=int)


def dpp_chunk_samples(pool: int, m: int, chunk_mb: float) -> int:
    """Samples per chunk so that the chain rule's working arrays fit in chunk_mb MB: per sample, the float64
    residual, its cumulative sum and the step's projection (3 x pool) and the orthonormal basis (m x m)."""
    return max(1, int(float(chunk_mb) * 2**20) // (8 * (3 * pool + m * m)))


def _projection_dpp_chunk(q: np.ndarray, rng: np.random.Generator, count: int) -> np.ndarray:
    size, m = q.shape
    residual = np.tile(np.sum(q**2, axis=1), (count, 1))                 # (count, N_c)
    basis = np.zeros((count, m, m))                                        # orthonormal rows spanning chosen Q_i
    chosen = np.empty((count, m), dtype=int)
    for step in range(m):
        cumulative = np.cumsum(np.clip(residual, 0, None), axis=1)
        targets = rng.uniform(size=count) * cumulative[:, -1]
        index = np.minimum(np.sum(cumulative <= targets[:, None], axis=1), size - 1)
        chosen[:, step] = index
        direction = q[index]                                               # (count, m)
        previous = basis[:, :step]                                         # (count, step, m)
        for _ in range(2):                                                 # twice: re-orthogonalise (round-off)
            direction = direction - np.einsum("bs,bsm->bm", np.einsum("bsm,bm->bs", previous, direction), previous)
        basis[:, step] = direction / np.linalg.norm(direction, axis=1, keepdims=True)
        residual -= (basis[:, step] @ q.T) ** 2
        np.put_along_axis(residual, chosen[:, : step + 1], 0.0, axis=1)
    return chosen


def weighted_least_squares(q: np.ndarray, f: np.ndarray, sample: np.ndarray) -> tuple[np.ndarray, float]:
    """Coefficients c_hat (in the phi basis; (m,) or (m, T) for T targets f of shape (N_c, T)) of the WLS fit on the
    sample and ||G - I||_2, G = (1/n) sum_i w(x_i) phi(x_i) phi(x_i)^T, w = m / K_m."""
    size, m = q.shape
    phi = np.sqrt(size) * q[sample]
    weights = m / np.sum(phi**2, axis=1)
    root = np.sqrt(weights)
    rhs = f[sample] * (root[:, None] if f.ndim == 2 else root)
    coefficients, *_ = np.linalg.lstsq(root[:, None] * phi, rhs, rcond=None)
    gram = (phi * weights[:, None]).T @ phi / len(sample)
    return coefficients, float(np.linalg.norm(gram - np.eye(m), 2))
