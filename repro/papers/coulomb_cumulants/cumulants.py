"""Cumulants of the radial linear statistic L_N = sum_i f(|z_i|) of the complex Ginibre ensemble (beta = 2, d = 2).

Kostlan: {N |z_i|^2} has the law of independent Gamma(k, 1), k = 1..N. With g(u) = f(sqrt(u)) (a polynomial in
u here), L_N = sum_k g(Gamma_k / N) exactly, so kappa_p(L_N) = sum_k kappa_p(g(Gamma_k / N)), with raw moments
E[(Gamma_k / N)^m] = k (k+1) ... (k+m-1) / N^m evaluated in mpmath (raw moments cancel catastrophically in float64).

Leading large-N predictions (edge R = 1):
  kappa_2 -> int_0^1 u g'(u)^2 du,    N kappa_3 -> g'(1)^3,    N^2 kappa_4 -> 3 g'(1)^4 + 4 g'(1)^3 g''(1);
for p >= 3 only boundary data of g enter.
"""

import math

import mpmath
import numpy as np
from numpy.polynomial import polynomial as P

# g(u) = f(sqrt(u)) as ascending coefficients in u.
TEST_FUNCTIONS = {
    "r2": [0.0, 1.0],                                   # f = r^2
    "r4": [0.0, 0.0, 1.0],                              # f = r^4
    "r2_bump": [0.5, 1.0 - 1.5, 1.5, -0.5],             # f = r^2 + 0.5 (1 - r^2)^3 (same edge data as r^2)
}


def g_coefficients(name: str) -> np.ndarray:
    if name not in TEST_FUNCTIONS:
        raise ValueError(f"unknown test function {name!r}; choose from {sorted(TEST_FUNCTIONS)}")
    return np.array(TEST_FUNCTIONS[name], dtype=float)


def raw_to_cumulants(moments: list) -> list:
    """kappa_1..4 from raw moments m_1..m_4 (mpmath numbers)."""
    m1, m2, m3, m4 = moments
    k2 = m2 - m1**2
    k3 = m3 - 3 * m2 * m1 + 2 * m1**3
    k4 = m4 - 4 * m3 * m1 - 3 * m2**2 + 12 * m2 * m1**2 - 6 * m1**4
    return [m1, k2, k3, k4]


def exact_cumulants(g: np.ndarray, n: int, dps: int = 60) -> list[float]:
    """kappa_1..4 of L_N = sum_(k=1..N) g(Gamma_k / N), exactly (to `dps` digits)."""
    powers = [P.polypow(g, j) for j in range(1, 5)]                   # g^j as polynomials in u
    degree = max(len(poly) for poly in powers)
    with mpmath.workdps(dps):
        coefficients = [[mpmath.mpf(float(c)) for c in poly] for poly in powers]
        total = [mpmath.mpf(0)] * 4
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
    return [math.factorial(p - 1) * n * (n + 1) / (2 * n**p) for p in range(1, 5)]


def harmonic_gas_cumulants(n: int, beta: float) -> list[float]:
    """f = r^2 at any beta: scaling z -> lambda z shows L_N = sum |z_i|^2 ~ Gamma(a, theta) with
    a = beta N (N-1) / 4 + N, theta = 2 / (beta N); kappa_p = (p-1)! a theta^p (beta = 2: the Ginibre law)."""
    shape, scale = beta * n * (n - 1) / 4 + n, 2 / (beta * n)
    return [math.factorial(p - 1) * shape * scale**p for p in range(1, 5)]


def predictions(g: np.ndarray) -> dict[int, float]:
    """Leading-order limits of N^(p-2) kappa_p for p = 2, 3, 4."""
    dg = P.polyder(g)
    d2g = P.polyder(g, 2)
    integrand = P.polymul([0.0, 1.0], P.polypow(dg, 2))
    k2 = float(P.polyval(1.0, P.polyint(integrand)))
    slope, curvature = float(P.polyval(1.0, dg)), float(P.polyval(1.0, d2g))
    return {2: k2, 3: slope**3, 4: 3 * slope**4 + 4 * slope**3 * curvature}


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
