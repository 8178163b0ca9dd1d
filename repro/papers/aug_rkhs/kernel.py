"""The masked-token toy solved exactly.

Inputs x in {0..V-1}^L, uniform. Augmentation A(a|x): each position is replaced by the mask symbol V
independently with probability alpha. The marginal of a view is p(a) = prod_l (alpha if a_l = V else (1-alpha)/V),
so the augmentation kernel k(x, x') = sum_a A(a|x) A(a|x') / p(a) factorises over positions:

    k_alpha(x, x') = prod_l (alpha + (1 - alpha) V 1[x_l = x'_l]) = alpha^(L - m) (alpha + (1 - alpha) V)^m,

with m the number of matching positions. Augmentation complexity kappa^2 = k(x, x) = (1 + (V-1)(1-alpha))^L.
Spectrum of T f(x) = E_x' k(x, x') f(x'): a product of mean-zero functions on a set S of s positions is an
eigenfunction with eigenvalue (1 - alpha)^s, multiplicity C(L, s)(V - 1)^s.
"""

from itertools import combinations

import numpy as np
import scipy.linalg
from scipy.special import comb


def matches(xa: np.ndarray, xb: np.ndarray) -> np.ndarray:
    """m[i, j] = number of positions where xa[i] and xb[j] agree; (na, L), (nb, L) -> (na, nb) int."""
    return (xa[:, None, :] == xb[None, :, :]).sum(-1)


def kernel_from_matches(m: np.ndarray, alpha: float, vocab: int, length: int) -> np.ndarray:
    """k_alpha from match counts (float64); no underflow/overflow for V, L of the toy."""
    return alpha ** (length - m) * (alpha + (1 - alpha) * vocab) ** m.astype(float)


def kappa_squared(alpha: float, vocab: int, length: int) -> float:
    """sup_x k(x, x) = (1 + (V - 1)(1 - alpha))^L (every x attains it under uniform P_X)."""
    return (1 + (vocab - 1) * (1 - alpha)) ** length


def kappa_squared_monte_carlo(alpha: float, vocab: int, length: int, samples: int, rng: np.random.Generator) -> float:
    """k(x, x) = E_{a ~ A(.|x)}[A(a|x) / p(a)] estimated by sampling masks; A(a|x)/p(a) = V^(#unmasked)."""
    unmasked = (rng.random((samples, length)) > alpha).sum(1)
    return float(np.mean(float(vocab) ** unmasked))


def eigenvalue(alpha: float, order: int) -> float:
    return (1 - alpha) ** order


def multiplicity(order: int, vocab: int, length: int) -> int:
    return int(comb(length, order, exact=True)) * (vocab - 1) ** order


def all_inputs(vocab: int, length: int) -> np.ndarray:
    """Every x in {0..V-1}^L, shape (V^L, L)."""
    grids = np.meshgrid(*[np.arange(vocab)] * length, indexing="ij")
    return np.stack([g.ravel() for g in grids], axis=1)


def operator_spectrum(alpha: float, vocab: int, length: int) -> np.ndarray:
    """Brute force: eigenvalues of the integral operator (K / V^L) on all V^L inputs, descending."""
    x = all_inputs(vocab, length)
    k = kernel_from_matches(matches(x, x), alpha, vocab, length)
    return np.linalg.eigvalsh(k / len(x))[::-1]


class AnovaTarget:
    """f*(x) = sum_S w_S prod_{l in S} u_{S,l}(x_l), each u mean 0 and variance 1 under uniform tokens.

    Distinct sets are orthogonal, so Var f* = sum_S w_S^2; sets of order s share energy E_s equally.
    """

    def __init__(self, counts: dict[int, int], energy: dict[int, float], vocab: int, length: int,
                 rng: np.random.Generator) -> None:
        self.terms = []
        for order, count in counts.items():
            pool = list(combinations(range(length), order))
            chosen = rng.choice(len(pool), size=count, replace=False)
            weight = np.sqrt(energy[order] / count)
            for index in chosen:
                u = rng.standard_normal((order, vocab))
                u -= u.mean(1, keepdims=True)
                u /= u.std(1, keepdims=True)
                self.terms.append((np.array(pool[index]), weight * rng.choice([-1.0, 1.0]), u))
        self.variance = float(sum(w**2 for _, w, _ in self.terms))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        out = np.zeros(len(x))
        for positions, weight, u in self.terms:
            out += weight * np.prod(u[np.arange(len(positions)), x[:, positions]], axis=1)
        return out


def kernel_ridge_fit(k_train: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    """Dual coefficients c = (K + lam I)^-1 y (sklearn KernelRidge(alpha=lam, kernel='precomputed'))."""
    return np.linalg.solve(k_train + lam * np.eye(len(y)), y)


def ridge_path(k_train: np.ndarray, y: np.ndarray, k_val: np.ndarray, lams: np.ndarray) -> np.ndarray:
    """Validation predictions for every ridge lam from one eigendecomposition; (len(lams), n_val)."""
    evals, evecs = np.linalg.eigh(k_train)
    proj = evecs.T @ y
    coefs = evecs @ (proj[:, None] / (evals[:, None] + lams[None, :]))
    return (k_val @ coefs).T


def nystrom_features(k_unlabeled: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-d eigenpairs of the m x m kernel matrix -> map k(x, X_m) to phi(x) = k(x, X_m) U_d diag(1/sigma_d).

    phi(X_m) = U_d exactly (an encoder spanning the estimated top-d eigenspace); returns (U_d / sigma_d, sigma_d).
    """
    m = len(k_unlabeled)
    evals, evecs = scipy.linalg.eigh(k_unlabeled, subset_by_index=[m - d, m - 1])
    evals, evecs = evals[::-1], evecs[:, ::-1]
    return evecs / evals, evals
