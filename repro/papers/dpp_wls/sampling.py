"""Sampling on a finite pool that stands for mu (uniform on [-1, 1]^d): the pool's empirical measure is mu, so all
norms and the projection P_m f are exact on the pool.

phi = sqrt(N_c) Q with Q (N_c x m) orthonormal columns spanning the Legendre polynomials, so (1/N_c) phi^T phi = I.
Inverse Christoffel function K_m(x_i, x_i) = |phi(x_i)|^2; optimal density rho_m(x_i) = K_m(x_i, x_i) / m w.r.t. mu,
i.e. pool probabilities |Q_i|^2 / m; WLS weights w(x) = m / K_m(x, x).
"""

import numpy as np
from numpy.polynomial import legendre

STRATEGIES = ("iid", "dpp_rep", "volume")


def orthonormal_basis(points: np.ndarray, degree: int) -> np.ndarray:
    """Q (N_c x m): QR of the Legendre Vandermonde matrix (1-D: m = degree + 1; 2-D: total degree <= degree)."""
    if points.ndim == 1:
        vandermonde = legendre.legvander(points, degree)
    else:
        full = legendre.legvander2d(points[:, 0], points[:, 1], [degree, degree])
        keep = [i * (degree + 1) + j for i in range(degree + 1) for j in range(degree + 1) if i + j <= degree]
        vandermonde = full[:, keep]
    q, _ = np.linalg.qr(vandermonde)
    return q


def sample_iid(q: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n i.i.d. pool indices from rho_m: P(i) = |Q_i|^2 / m."""
    cumulative = np.cumsum(np.sum(q**2, axis=1))
    return np.minimum(np.searchsorted(cumulative, rng.uniform(size=n) * cumulative[-1], side="right"), q.shape[0] - 1)


def sample_projection_dpp(q: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """m pool indices from the projection DPP with kernel K = Q Q^T, by the chain rule: P(next = i) is the squared
    norm of Q_i's component orthogonal to the rows chosen so far, divided by the remaining rank."""
    size, m = q.shape
    residual = np.sum(q**2, axis=1)
    basis = np.zeros((m, m))
    chosen = np.empty(m, dtype=int)
    for step in range(m):
        cumulative = np.cumsum(np.clip(residual, 0, None))
        index = min(int(np.searchsorted(cumulative, rng.uniform() * cumulative[-1], side="right")), size - 1)
        chosen[step] = index
        direction = q[index] - basis[:step].T @ (basis[:step] @ q[index])
        direction -= basis[:step].T @ (basis[:step] @ direction)        # re-orthogonalise (loss of orthogonality)
        basis[step] = direction / np.linalg.norm(direction)
        residual -= (q @ basis[step]) ** 2
        residual[chosen[: step + 1]] = 0.0
    return chosen


def weighted_least_squares(q: np.ndarray, f: np.ndarray, sample: np.ndarray) -> tuple[np.ndarray, float]:
    """Coefficients c_hat (in the phi basis) of the WLS fit on the sample and ||G - I||_2,
    G = (1/n) sum_i w(x_i) phi(x_i) phi(x_i)^T, w = m / K_m."""
    size, m = q.shape
    phi = np.sqrt(size) * q[sample]
    weights = m / np.sum(phi**2, axis=1)
    root = np.sqrt(weights)[:, None]
    coefficients, *_ = np.linalg.lstsq(root * phi, root[:, 0] * f[sample], rcond=None)
    gram = (phi * weights[:, None]).T @ phi / len(sample)
    return coefficients, float(np.linalg.norm(gram - np.eye(m), 2))
