"""Radial test functions f(r), their Kostlan form g(u) = f(sqrt(u)), and the leading large-N cumulants.

Ginibre (d = 2, beta = 2, edge R = 1): L_N = sum_i f(|z_i|) = sum_k g(Gamma_k / N) in law (Kostlan). The general
formula (only boundary data of g enter for p >= 3):

    lim N^(p-2) kappa_p = (d/ds)^(p-2) H(X(s)) at s = 0,   H(X) = int_0^X u g'(u)^2 du,   X (1 - s g'(X)) = 1,

which gives kappa_2 -> H(1) = (1/2) int_0^1 r f'(r)^2 dr, N kappa_3 -> g'(1)^3, N^2 kappa_4 -> 3 g'(1)^4 +
4 g'(1)^3 g''(1), and every higher p. Here it is evaluated exactly with sympy (truncated power series in s).
"""

from collections.abc import Callable

import mpmath
import numpy as np
import sympy as sp

r, u, s, t = sp.symbols("r u s t", positive=True)

RADIAL = {
    "r2": r**2,
    "r4": r**4,
    "r2_bump": r**2 + sp.Rational(1, 2) * (1 - r**2) ** 3,     # same f'(1), f''(1) as r^2, different bulk
    "f3": sp.cos(sp.pi * r / 2),                                 # not a polynomial; g''(1) = pi / 8 != 0
}


def g_expr(name: str) -> sp.Expr:
    """g(u) = f(sqrt(u)) as a sympy expression in u."""
    if name not in RADIAL:
        raise ValueError(f"unknown test function {name!r}; choose from {sorted(RADIAL)}")
    return sp.simplify(RADIAL[name].subs(r, sp.sqrt(u)))


def is_polynomial(name: str) -> bool:
    return bool(g_expr(name).is_polynomial(u))


def g_coefficients(name: str) -> np.ndarray:
    """Ascending coefficients of g in u (polynomial test functions only)."""
    if not is_polynomial(name):
        raise ValueError(f"g of {name!r} is not a polynomial; use g_function or the quadrature cumulants")
    return np.array([float(c) for c in reversed(sp.Poly(g_expr(name), u).all_coeffs())])


def g_function(name: str, derivative: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    """The numpy function u -> g^(derivative)(u) for u > 0."""
    function = sp.lambdify(u, sp.diff(g_expr(name), u, derivative), "numpy")
    return lambda values: np.broadcast_to(function(values), np.shape(values)).astype(float)


def boundary_limits(name: str, orders: tuple[int, ...] = (2, 3, 4, 5)) -> dict[int, float]:
    """lim N^(p-2) kappa_p for each p in `orders`, by the general formula above: X(s) = 1 + T(s) as a power series
    (fixed point T = s g'(1 + T) (1 + T)), then H(1 + T(s)) = H(1) + sum_j H^(j)(1) T^j / j!."""
    order = max(orders) - 2
    g1 = sp.diff(g_expr(name), u)
    taylor_g1 = sum(sp.diff(g1, u, j).subs(u, 1) * t**j / sp.factorial(j) for j in range(order + 1))
    series = sp.Integer(0)
    for _ in range(order + 1):                      # each pass fixes one more order of s
        series = sp.expand(s * taylor_g1.subs(t, series) * (1 + series))
        series = sum(series.coeff(s, j) * s**j for j in range(order + 1))
    h1 = u * g1**2                                  # H'(X) = X g'(X)^2
    h_series = sum(sp.diff(h1, u, j - 1).subs(u, 1) * series**j / sp.factorial(j) for j in range(1, order + 1))
    h_series = sp.expand(h_series)
    h_at_1 = mpmath.quad(sp.lambdify(u, h1, "mpmath"), [0, 1])
    limits = {}
    for p in orders:
        if p == 2:
            limits[p] = float(h_at_1)
        else:
            limits[p] = float(sp.N(h_series.coeff(s, p - 2) * sp.factorial(p - 2), 30))
    return limits


def coulomb_limits(name: str, d: int, beta: float, orders: tuple[int, ...] = (2, 3, 4)) -> dict[int, float]:
    """lim N^(p-2) kappa_p of L_N = sum_i f(|x_i|) for the d-dimensional gas at inverse temperature beta (energy
    scale N^2, droplet the unit ball). Our derivation of the main result: tilting the weight by exp(lambda L_N) shifts
    the potential by -t f with t = lambda / (beta N); Gauss's law on the radial equilibrium measure gives the charge
    inside radius r as Q(r) = r^(d-1) (r - t f'(r)), so the edge R(t) solves R^d - t R^(d-1) f'(R) = 1, and the
    envelope theorem gives d/dt int f dmu_t = H(R(t)) with H(R) = int_0^R r^(d-1) f'(r)^2 dr. Hence

        kappa_2 -> H(1) / beta,   N^(p-2) kappa_p -> beta^(1-p) (d/dt)^(p-2) H(R(t)) at t = 0   (p >= 3),

    which for p >= 3 involves only f'(1), f''(1), ... at the edge: N kappa_3 -> f'(1)^3 / (d beta^2),
    N^2 kappa_4 -> (2 (d-1) f'(1)^4 + 4 f'(1)^3 f''(1)) / (d^2 beta^3). At d = 2, beta = 2 it is boundary_limits."""
    order = max(orders) - 2
    f_prime = sp.diff(RADIAL[name], r)
    edge = sp.Integer(1)
    for _ in range(order + 1):                      # each pass fixes one more order of t
        edge = sp.series((1 + t * edge ** (d - 1) * f_prime.subs(r, edge)) ** sp.Rational(1, d), t, 0,
                         order + 1).removeO()
    radius = sp.Symbol("R", positive=True)
    h_prime = r ** (d - 1) * f_prime**2
    h_series = sp.series(sp.integrate(h_prime, (r, 1, radius)).subs(radius, edge), t, 0, order + 1).removeO()
    limits = {}
    for p in orders:
        if p == 2:
            limits[p] = float(mpmath.quad(sp.lambdify(r, h_prime, "mpmath"), [0, 1])) / beta
        else:
            derivative = sp.expand(h_series).coeff(t, p - 2) * sp.factorial(p - 2)
            limits[p] = float(sp.N(derivative, 30)) * beta ** (1 - p)
    return limits
