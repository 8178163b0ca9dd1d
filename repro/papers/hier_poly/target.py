"""The hierarchical target h(x) = g(p(x)) with x ~ N(0, I_d) and its degree-2 Hermite feature map.

p(x) = x^T A x - tr(A), A = U diag(lambda) U^T with U Haar-orthogonal and lambda_j = +-1/sqrt(2d), so E p = 0,
Var p = 2 ||A||_F^2 = 1 and ||A||_op = 1/sqrt(2d) (high rank: p is nearly Gaussian). g(z) = He_1(z) + He_3(z)/sqrt(6)
(probabilists' Hermite; its linear coefficient E[g(Z) Z] = 1 carries the stage-1 signal).

Orthonormal degree-2 Hermite features (D = d(d+1)/2):  (x_i^2 - 1)/sqrt(2) for every i, x_i x_j for i < j.
In these coordinates p = phi(x) . c with c = (sqrt(2) A_ii ; 2 A_ij for i < j).
"""

import numpy as np
from scipy.stats import ortho_group


def random_quadratic(d: int, rng: np.random.Generator) -> np.ndarray:
    """A = U diag(+-1/sqrt(2d)) U^T, (d, d)."""
    u = ortho_group.rvs(d, random_state=rng)
    signs = rng.choice([-1.0, 1.0], d)
    return (u * (signs / np.sqrt(2 * d))) @ u.T


def quadratic(x: np.ndarray, a: np.ndarray) -> np.ndarray:
    """(n,) p(x) = x^T A x - tr A."""
    return np.einsum("ni,ij,nj->n", x, a, x) - np.trace(a)


def link(z: np.ndarray) -> np.ndarray:
    """g(z) = He_1(z) + He_3(z)/sqrt(6) = z + (z^3 - 3 z)/sqrt(6)."""
    return z + (z**3 - 3 * z) / np.sqrt(6)


def hermite_features(x: np.ndarray) -> np.ndarray:
    """(n, d(d+1)/2) orthonormal degree-2 Hermite features of (n, d) standard Gaussian inputs."""
    i, j = np.triu_indices(x.shape[1], k=1)
    return np.concatenate([(x**2 - 1) / np.sqrt(2), x[:, i] * x[:, j]], axis=1)


def feature_coefficients(a: np.ndarray) -> np.ndarray:
    """c with p(x) = hermite_features(x) @ c."""
    i, j = np.triu_indices(len(a), k=1)
    return np.concatenate([np.sqrt(2) * np.diag(a), 2 * a[i, j]])
