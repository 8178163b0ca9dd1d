"""Large deviations of L_N / N for the Ginibre ensemble, speed N^2 (the paper's large-deviation result).

Scaled cumulant generating function chi_N(s) = (1/N^2) ln E[exp(N s L_N)] = (1/N^2) sum_k ln E[exp(N s g(Gamma_k/N))]
(Kostlan). With k = N x and Gamma_k = N u, a saddle point per k gives, as N -> infinity,

    chi(s) = int_0^1 [s g(u) + x ln(u / x) - u + x] dx,   u = u(x, s) solving u (1 - s g'(u)) = x,

so P(L_N / N ~ m) ~ exp(-N^2 Phi(m)) with Phi the Legendre transform of chi, in parametric form
m(s) = chi'(s) = int_0^1 g(u(x, s)) dx and Phi(m(s)) = s m(s) - chi(s). chi''(s) = H(X(s)) with X(s) = u(1, s),
the generating function of the cumulant limits. f = r^2: chi(s) = -(1/2) ln(1 - s) and
Phi(m) = m - 1/2 - (1/2) ln(2m); at finite N, chi_N(s) = -(1/2) (1 + 1/N) ln(1 - s) exactly.
"""

from collections.abc import Callable

import numpy as np
from scipy import special

Function = Callable[[np.ndarray], np.ndarray]


def saddle_point(g1: Function, g2: Function, x: np.ndarray, s: float, iterations: int = 80) -> np.ndarray:
    """u > 0 solving u (1 - s g'(u)) = x, by damped Newton from u = x (x > 0)."""
    u = np.array(x, dtype=float)
    for _ in range(iterations):
        residual = u * (1 - s * g1(u)) - x
        if np.all(np.abs(residual) <= 1e-14 * np.maximum(1.0, x)):
            return u
        slope = 1 - s * g1(u) - s * u * g2(u)
        u = np.clip(u - residual / slope, u / 4, 4 * u)
    residual = u * (1 - s * g1(u)) - x
    if not np.all(np.abs(residual) <= 1e-12 * np.maximum(1.0, x)):
        raise ArithmeticError(f"saddle point did not converge at s = {s} (max residual {np.abs(residual).max():.2e})")
    return u


def scaled_cgf_limit(g: Function, g1: Function, g2: Function, s: float, nodes: int = 400) -> tuple[float, float]:
    """(chi(s), m(s) = chi'(s)) by Gauss-Legendre in x on (0, 1)."""
    x, w = special.roots_legendre(nodes)
    x, w = (x + 1) / 2, w / 2
    u = saddle_point(g1, g2, x, s)
    chi = np.sum(w * (s * g(u) + x * np.log(u / x) - u + x))
    return float(chi), float(np.sum(w * g(u)))


def scaled_cgf_exact(g: Function, g1: Function, g2: Function, n: int, s: float, nodes: int = 200) -> float:
    """chi_N(s) = (1/N^2) sum_k ln E[exp(N s g(Gamma_k / N))]: per k, Gauss-Legendre in log space on an interval of
    +-16 widths around the mode t* = N u((k-1)/N, s) of the tilted density t^(k-1) e^(-t + N s g(t/N))."""
    k = np.arange(1, n + 1, dtype=float)
    mode = np.zeros(n)
    mode[1:] = n * saddle_point(g1, g2, (k[1:] - 1) / n, s)
    curvature = np.ones(n)
    curvature[1:] = (k[1:] - 1) / mode[1:] ** 2 - s * g2(mode[1:] / n) / n
    width = 1 / np.sqrt(np.maximum(curvature, 1e-12))
    low = np.maximum(0.0, mode - 16 * width - 16)[:, None]
    high = (mode + 16 * width + 40)[:, None]
    x, w = special.roots_legendre(nodes)
    points = low + (high - low) * (x + 1) / 2
    log_terms = (np.log(w * (high - low) / 2) + (k[:, None] - 1) * np.log(points) - points
                 - special.gammaln(k)[:, None] + n * s * g(points / n))
    return float(np.sum(special.logsumexp(log_terms, axis=1)) / n**2)


def gamma_rate(m: np.ndarray) -> np.ndarray:
    """Phi(m) = m - 1/2 - (1/2) ln(2m): the rate function of L_N / N for f = r^2 (L_N ~ Gamma(N(N+1)/2, 1/N))."""
    return m - 0.5 - 0.5 * np.log(2 * m)
