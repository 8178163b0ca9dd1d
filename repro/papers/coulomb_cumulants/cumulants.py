"""Cumulants of the radial linear statistic L_N = sum_i f(|z_i|) of the complex Ginibre ensemble (beta = 2, d = 2).

Kostlan: {N |z_i|^2} has the law of independent Gamma(k, 1), k = 1..N. With g(u) = f(sqrt(u)),
L_N = sum_k g(Gamma_k / N) exactly, so kappa_p(L_N) = sum_k kappa_p(g(Gamma_k / N)). Polynomial g: raw moments
E[(Gamma_k / N)^m] = k (k+1) ... (k+m-1) / N^m evaluated in mpmath (raw moments cancel catastrophically in float64).

Non-polynomial g: Gauss-Legendre quadrature against each Gamma(k) density (central moments). The leading large-N
limits are in functions.py.
"""

import math
from collections.abc import Callable

import mpmath
import numpy as np
from numpy.polynomial import polynomial as P
from scipy import special

from repro.papers.coulomb_cumulants.functions import g_coefficients, g_function, is_polynomial


def raw_to_cumulants(moments: list) -> list:
    """kappa_1..5 from raw moments m_1..m_5 (mpmath numbers)."""
    m1, m2, m3, m4, m5 = moments
    k2 = m2 - m1**2
    k3 = m3 - 3 * m2 * m1 + 2 * m1**3
    k4 = m4 - 4 * m3 * m1 - 3 * m2**2 + 12 * m2 * m1**2 - 6 * m1**4
    k5 = (m5 - 5 * m4 * m1 - 10 * m3 * m2 + 20 * m3 * m1**2 + 30 * m2**2 * m1 - 60 * m2 * m1**3
          + 24 * m1**5)
    return [m1, k2, k3, k4, k5]


def exact_cumulants(g: np.ndarray, n: int, dps: int = 60) -> list[float]:
    """kappa_1..5 of L_N = sum_(k=1..N) g(Gamma_k / N) for a polynomial g, exactly (to `dps` digits)."""
    powers = [P.polypow(g, j) for j in range(1, 6)]                   # g^j as polynomials in u
    degree = max(len(poly) for poly in powers)
    with mpmath.workdps(dps):
        coefficients = [[mpmath.mpf(float(c)) for c in poly] for poly in powers]
        total = [mpmath.mpf(0)] * 5
        scale = mpmath.mpf(n)
        for k in range(1, n + 1):
            gamma_moments = [mpmath.mpf(1)]                     # E[(Gamma_k/N)^m] = E[(Gamma_k/N)^(m-1)] (k+m-1) / N
            for m in range(1, degree):
                gamma_moments.append(gamma_moments[-1] * (k + m - 1) / scale)
            moments = [mpmath.fsum(c * gamma_moments[m] for m, c in enumerate(poly)) for poly in coefficients]
            total = [t + c for t, c in zip(total, raw_to_cumulants(moments))]
        return [float(t) for t in total]


def gamma_law_cumulants(n: int) -> list[float]:
    """f = r^2: L_N ~ Gamma(N (N+1) / 2, scale 1/N), kappa_p = (p-1)! N (N+1) / (2 N^p)."""
    return [math.factorial(p - 1) * n * (n + 1) / (2 * n**p) for p in range(1, 6)]


def harmonic_gas_cumulants(n: int, beta: float) -> list[float]:
    """f = r^2 at any beta: scaling z -> lambda z shows L_N = sum |z_i|^2 ~ Gamma(a, theta) with
    a = beta N (N-1) / 4 + N, theta = 2 / (beta N); kappa_p = (p-1)! a theta^p (beta = 2: the Ginibre law)."""
    shape, scale = beta * n * (n - 1) / 4 + n, 2 / (beta * n)
    return [math.factorial(p - 1) * shape * scale**p for p in range(1, 6)]


def quadrature_cumulants(g: Callable[[np.ndarray], np.ndarray], n: int, nodes: int = 160) -> list[float]:
    """kappa_1..5 of L_N = sum_k g(Gamma_k / N) for any smooth g: per k, Gauss-Legendre on
    [max(0, k - 14 sqrt(k) - 14), k + 14 sqrt(k) + 40] against the Gamma(k) density (below e^-50 of its peak
    outside), then central moments mu_j (no cancellation of raw moments): kappa_4 = mu_4 - 3 mu_2^2,
    kappa_5 = mu_5 - 10 mu_3 mu_2, summed over k."""
    x, w = special.roots_legendre(nodes)
    k = np.arange(1, n + 1, dtype=float)[:, None]
    low = np.maximum(0.0, k - 14 * np.sqrt(k) - 14)
    high = k + 14 * np.sqrt(k) + 40
    points = low + (high - low) * (x + 1) / 2                                   # (N, nodes)
    log_density = (k - 1) * np.log(points) - points - special.gammaln(k)
    weights = w * (high - low) / 2 * np.exp(log_density)
    weights /= weights.sum(axis=1, keepdims=True)
    values = g(points / n)
    mean = np.sum(weights * values, axis=1)
    centred = values - mean[:, None]
    mu2, mu3, mu4, mu5 = (np.sum(weights * centred**j, axis=1) for j in (2, 3, 4, 5))
    per_k = [mean, mu2, mu3, mu4 - 3 * mu2**2, mu5 - 10 * mu3 * mu2]
    return [float(np.sum(c)) for c in per_k]


def cumulants_of(name: str, n: int, dps: int = 60) -> list[float]:
    """kappa_1..5 of L_N for a named test function: exact mpmath sums for polynomial g, quadrature otherwise."""
    if is_polynomial(name):
        return exact_cumulants(g_coefficients(name), n, dps)
    return quadrature_cumulants(g_function(name), n)


def kstat(data: np.ndarray, order: int) -> float:
    """Unbiased k-statistic k_order (order 2, 3 or 4) of a 1-D sample (Fisher), from central power sums."""
    n = data.size
    centred = data - data.mean()
    s2, s3, s4 = (float(np.sum(centred**j)) for j in (2, 3, 4))
    if order == 2:
        return s2 / (n - 1)
    if order == 3:
        return n * s3 / ((n - 1) * (n - 2))
    if order == 4:
        return n * ((n + 1) * s4 - 3 * (n - 1) * s2**2 / n) / ((n - 1) * (n - 2) * (n - 3))
    raise ValueError(f"kstat order must be 2, 3 or 4, got {order}")


def jackknife_error(data: np.ndarray, order: int, blocks: int = 20) -> float:
    """Standard error of kstat(data, order) by the delete-one-block jackknife over `blocks` contiguous blocks."""
    parts = np.array_split(data, blocks)
    leave_out = np.array([kstat(np.concatenate(parts[:b] + parts[b + 1:]), order) for b in range(blocks)])
    return float(np.sqrt((blocks - 1) / blocks * np.sum((leave_out - leave_out.mean()) ** 2)))
