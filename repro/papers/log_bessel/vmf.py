"""von Mises-Fisher maximum likelihood in p dimensions with three Bessel back ends and Banerjee's estimate.

Density on the sphere S^(p-1): f(y) = C_p(kappa) exp(kappa mu^T y),
log C_p(kappa) = (p/2 - 1) log kappa - (p/2) log(2 pi) - log I_(p/2-1)(kappa).
With R_bar = |mean of the unit vectors|, the MLE solves A_p(kappa) = I_(p/2)(kappa) / I_(p/2-1)(kappa) = R_bar
(A_p increases from 0 to 1); we bisect in log kappa.
Banerjee et al. (2005): kappa ~ R_bar (p - R_bar^2) / (1 - R_bar^2).

The mpmath back end fails where mpmath itself gives up: besseli at `dps` digits with mpmath's default work
bounds (series cut at 100 terms per bit of working precision, raising NoConvergence; working precision capped
at 1000 prec^(1/4) + 4 prec bits, raising ValueError). There is no wall-clock limit, so whether a fit fails
depends on (p, kappa, the samples) only, never on how busy the machine is; its time is reported apart.
"""

import math
from collections.abc import Callable

import mpmath
import numpy as np
import torch

from repro.papers.log_bessel.bessel import log_bessel_i
from repro.papers.log_bessel.reference import MPMATH_FAILURES, scipy_log_bessel

BACKENDS = ("ours", "scipy", "mpmath")


class FitFailed(Exception):
    pass


def sample_vmf(p: int, kappa: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """n draws from vMF(mu = e_1, kappa) on S^(p-1), shape (n, p), by Wood's (1994) rejection sampler for
    w = mu^T y and a uniform direction on the orthogonal complement (scipy.stats.vonmises_fisher builds p x p
    rotations: minutes at p = 8192)."""
    b = (p - 1) / (2 * kappa + math.sqrt(4 * kappa**2 + (p - 1) ** 2))
    x0 = (1 - b) / (1 + b)
    c = kappa * x0 + (p - 1) * math.log(1 - x0**2)
    w = np.empty(0)
    while w.size < n:
        z = rng.beta((p - 1) / 2, (p - 1) / 2, size=2 * n)
        candidate = (1 - (1 + b) * z) / (1 - (1 - b) * z)
        accept = kappa * candidate + (p - 1) * np.log(1 - x0 * candidate) - c >= np.log(rng.uniform(size=2 * n))
        w = np.concatenate([w, candidate[accept]])
    w = w[:n]
    direction = rng.standard_normal((n, p - 1))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    return np.concatenate([w[:, None], np.sqrt(1 - w**2)[:, None] * direction], axis=1)


def banerjee_kappa(r_bar: float, p: int) -> float:
    return r_bar * (p - r_bar**2) / (1 - r_bar**2)


def log_i_pair(backend: str, p: int, kappa: float, dps: int) -> tuple[float, float]:
    """(log I_(p/2-1)(kappa), log I_(p/2)(kappa)) from one back end; mpmath at `dps` digits within its own
    default work bounds (see the module docstring), FitFailed where it gives up."""
    orders = np.array([p / 2 - 1, p / 2])
    if backend == "ours":
        values = log_bessel_i(torch.tensor(orders), torch.tensor([kappa, kappa], dtype=torch.float64))
        return float(values[0]), float(values[1])
    if backend == "scipy":
        values = scipy_log_bessel("log_i", orders, np.array([kappa, kappa]))
        return float(values[0]), float(values[1])
    try:
        with mpmath.workdps(dps):
            return tuple(float(mpmath.log(mpmath.besseli(o, kappa))) for o in orders)
    except MPMATH_FAILURES as error:
        raise FitFailed(f"mpmath besseli: {type(error).__name__}") from error


def mean_resultant(log_i: Callable[[float], tuple[float, float]], kappa: float) -> float:
    """A_p(kappa) = exp(log I_(p/2) - log I_(p/2-1)); non-finite values mean the back end under/overflowed."""
    low, high = log_i(kappa)
    ratio = math.exp(high - low) if math.isfinite(low) and math.isfinite(high) else math.nan
    if not math.isfinite(ratio):
        raise FitFailed(f"non-finite Bessel ratio at kappa = {kappa:.4g}")
    return ratio


def fit_kappa(backend: str, r_bar: float, p: int, iterations: int, dps: int) -> float:
    """Bisection in log kappa on A_p(kappa) = R_bar, bracket [kappa_B / 2, 2 kappa_B] around Banerjee's estimate."""
    def log_i(kappa: float) -> tuple[float, float]:
        return log_i_pair(backend, p, kappa, dps)

    start = banerjee_kappa(r_bar, p)
    low, high = math.log(start / 2), math.log(start * 2)
    if not mean_resultant(log_i, math.exp(low)) < r_bar < mean_resultant(log_i, math.exp(high)):
        raise FitFailed("A_p(kappa) - R_bar does not change sign on the bracket")
    for _ in range(iterations):
        middle = (low + high) / 2
        if mean_resultant(log_i, math.exp(middle)) < r_bar:
            low = middle
        else:
            high = middle
    return math.exp((low + high) / 2)


def log_likelihood(backend: str, samples_mean_dot: float, n: int, p: int, kappa: float, dps: int) -> float:
    """n [log C_p(kappa) + kappa R_bar] at the MLE direction (mu = mean direction); NaN where not finite."""
    try:
        log_i_low, _ = log_i_pair(backend, p, kappa, dps)
    except FitFailed:
        return math.nan
    value = n * ((p / 2 - 1) * math.log(kappa) - (p / 2) * math.log(2 * math.pi) - log_i_low
                 + kappa * samples_mean_dot)
    return value if math.isfinite(value) else math.nan
