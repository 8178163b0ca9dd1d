"""log I_v(x) and log K_v(x) as a compiled CPU kernel (numba): one pass per element with the region logic inside,
the analogue of the paper's C++ routines beside the vectorised torch code of bessel.py.

log I_v uses the regions and expansions of bessel.py (power series, Debye, large argument, downward recurrence
from Debye). log K_v uses Debye for v >= V_DEBYE and the large-argument series for x >= max(30, v^2) as bessel.py
does; in the remaining region (v < V_DEBYE, moderate x) the torch code integrates K_v(x) = int exp(-x cosh t)
cosh(v t) dt with hundreds of exponentials per element, which is what a vectorised GPU code can afford but a
scalar loop cannot. Here that region is computed at the order mu = v - round(v), |mu| <= 1/2, by Temme's series
(x <= 2) or Steed's continued fraction CF2 (x > 2), then raised to v by the forward recurrence
K_(nu+1) = (2 nu / x) K_nu + K_(nu-1), which is stable upwards (N. M. Temme, J. Comput. Phys. 19, 1975; the
combination is the classical one of Numerical Recipes' `bessik`).

Written for speed as well as accuracy (the per-region costs were profiled on the speed test's inputs): the
recurrences (downward for I, upward for K, up to 50 steps) run on unnormalised values, one multiply-add per step
with no division in the chain, rescaled only where they could overflow; the Debye sum is evaluated term by term
by Horner in p^2 with three logarithms per call; the large-argument series and Temme's series multiply by
reciprocals instead of dividing where the divisor does not change with the argument. Series stop once a term no
longer changes the sum in float64 (the torch code sums fixed term counts; the extra terms there are below
rounding). The accuracy of both routes is checked against mpmath in the same units.
"""

import math

import mpmath
import numpy as np
from numba import njit

from repro.papers.log_bessel.bessel import ASYMPTOTIC_TERMS, DEBYE_TERMS, SERIES_TERMS, V_DEBYE, debye_polynomials

EPS = 2.0 ** -53
CF_ITERATIONS = 10000   # Temme and CF2 converge in tens of steps in their regions; a bound, never reached


def _debye_table() -> np.ndarray:
    """U_k(p) = p^k sum_(j<=k) u_(k,j) p^(2j): row k holds u_(k,0..k) (U_k has only the powers p^k .. p^(3k) of
    the parity of k, so Horner runs in p^2 over k + 1 coefficients instead of 3k + 1)."""
    table = np.zeros((DEBYE_TERMS, DEBYE_TERMS))
    for k, poly in enumerate(debye_polynomials(DEBYE_TERMS)):
        for power, c in enumerate(poly):
            if c and (power < k or (power - k) % 2):
                raise AssertionError(f"U_{k} has a term p^{power} outside p^k .. p^3k of its parity")
            if c:
                table[k, (power - k) // 2] = float(c)
    return table


def _reciprocal_gamma_taylor(count: int) -> np.ndarray:
    """Taylor coefficients a_j of 1/Gamma(1+z) = sum_j a_j z^j, from log Gamma(1+z) = -gamma z + sum_(k>=2)
    (-1)^k zeta(k) z^k / k and f = exp(g) => f_m = (1/m) sum_(k<=m) k g_k f_(m-k), in 40-digit arithmetic (the
    coefficients fall to 1e-16, far below the terms of the recurrence, so float64 would lose them)."""
    with mpmath.workdps(40):
        g = [mpmath.mpf(0), +mpmath.euler] + [-((-1) ** k) * mpmath.zeta(k) / k for k in range(2, count)]
        f = [mpmath.mpf(1)]
        for m in range(1, count):
            f.append(mpmath.fsum(k * g[k] * f[m - k] for k in range(1, m + 1)) / m)
    return np.array([float(a) for a in f])


U_TABLE = _debye_table()
RECIPROCALS = np.array([0.0] + [1.0 / k for k in range(1, ASYMPTOTIC_TERMS)])   # 1/k: multiplies, not divides
RECIPROCAL_GAMMA = _reciprocal_gamma_taylor(26)             # |a_25| ~ 1e-16: enough for |z| <= 1/2
RECIPROCAL_GAMMA_EVEN = RECIPROCAL_GAMMA[0::2].copy()       # a_0, a_2, ..., a_24
RECIPROCAL_GAMMA_ODD = RECIPROCAL_GAMMA[1::2].copy()        # a_1, a_3, ..., a_25


@njit(cache=True)
def _debye_log_series(t: float, p2: float) -> float:
    """log sum_k t^k U_k(p) / p^k with t = sign p / v: terms until t^k and the term fall below rounding. Row k of
    U_TABLE is evaluated by Horner in p^2; only the first k + 1 entries of a row are nonzero."""
    series, power = 1.0, 1.0
    for k in range(1, DEBYE_TERMS):
        power *= t
        poly = U_TABLE[k, k]
        for j in range(k - 1, -1, -1):
            poly = poly * p2 + U_TABLE[k, j]
        term = poly * power
        series += term
        if abs(power) < EPS and abs(term) < EPS * abs(series):
            break
    return math.log(series)


@njit(cache=True)
def _log_i_debye(v: float, x: float) -> float:
    """v eta - log (2 pi v)^(1/2) (1+z^2)^(1/4) + log sum_k U_k(p) / v^k, z = x / v, p = 1 / sqrt(1 + z^2)."""
    z = x / v
    root = math.sqrt(1.0 + z * z)
    p = 1.0 / root
    eta = root + math.log(z) - math.log1p(root)
    return v * eta - 0.5 * math.log(2.0 * math.pi * v * root) + _debye_log_series(p / v, p * p)


@njit(cache=True)
def _log_k_debye(v: float, x: float) -> float:
    """-v eta + log (pi / (2 v))^(1/2) / (1+z^2)^(1/4) + log sum_k (-1)^k U_k(p) / v^k."""
    z = x / v
    root = math.sqrt(1.0 + z * z)
    p = 1.0 / root
    eta = root + math.log(z) - math.log1p(root)
    return -v * eta + 0.5 * math.log(math.pi / (2.0 * v * root)) + _debye_log_series(-p / v, p * p)


@njit(cache=True)
def _asymptotic_sum(v: float, x: float, sign: float) -> float:
    """sum_k sign^k a_k(v) / x^k, a_k(v) = prod_(j<=k) (4 v^2 - (2j-1)^2) / (k! 8^k)."""
    mu = 4.0 * v * v
    step = sign / (8.0 * x)
    term, total = 1.0, 1.0
    for k in range(1, ASYMPTOTIC_TERMS):
        term *= (mu - (2 * k - 1) ** 2) * step * RECIPROCALS[k]
        total += term
        if abs(term) < EPS * abs(total):
            break
    return total


@njit(cache=True)
def _log_i_series(v: float, x: float) -> float:
    quarter_x2 = x * x / 4.0
    term, tail = 1.0, 0.0
    for j in range(1, SERIES_TERMS):
        term *= quarter_x2 / (j * (v + j))
        tail += term
        if term < EPS * (1.0 + tail):
            break
    return v * math.log(x / 2.0) - math.lgamma(v + 1.0) + math.log1p(tail)


@njit(cache=True)
def _log_i_recurrence(v: float, x: float) -> float:
    """Downward recurrence y_(mu-1) = y_(mu+1) + (2 mu / x) y_mu from Debye at mu = v + n >= V_DEBYE, with
    y_mu = 1 and y_(mu+1) = I_(mu+1) / I_mu, so that y_v = I_v / I_mu (stable downwards: I grows as the order
    falls). One multiply-add per step and no division; no rescaling is needed, as each step grows y by at most
    2 mu / x + 1 < mu + 1 (x > 2 here, mu < V_DEBYE + 1), so y_v < 52! ~ 1e68."""
    steps = max(0, int(math.ceil(V_DEBYE - v)))
    mu = v + steps
    log_i = _log_i_debye(mu, x)
    upper, y = math.exp(_log_i_debye(mu + 1.0, x) - log_i), 1.0
    two_over_x = 2.0 / x
    for _ in range(steps):
        upper, y = y, upper + mu * two_over_x * y
        mu -= 1.0
    return log_i + math.log(y)


@njit(cache=True)
def log_i_scalar(v: float, x: float) -> float:
    if x * x / 4.0 <= v + 1.0:
        return _log_i_series(v, x)
    if v >= V_DEBYE:
        return _log_i_debye(v, x)
    if x >= max(v * v, 30.0):
        return x - 0.5 * math.log(2.0 * math.pi * x) + math.log(_asymptotic_sum(v, x, -1.0))
    return _log_i_recurrence(v, x)


@njit(cache=True)
def _temme(mu: float, x: float) -> tuple:
    """(K_mu(x), K_(mu+1)(x)) for |mu| <= 1/2, x <= 2 by Temme's series, with
    gamma_1 = (1/Gamma(1-mu) - 1/Gamma(1+mu)) / (2 mu) and gamma_2 = (1/Gamma(1-mu) + 1/Gamma(1+mu)) / 2 from
    the Taylor coefficients of 1/Gamma(1+z) (odd and even parts: no cancellation at small mu)."""
    mu2 = mu * mu
    gamma1, gamma2 = 0.0, 0.0
    for j in range(RECIPROCAL_GAMMA_EVEN.shape[0] - 1, -1, -1):
        gamma2 = gamma2 * mu2 + RECIPROCAL_GAMMA_EVEN[j]
        gamma1 = gamma1 * mu2 - RECIPROCAL_GAMMA_ODD[j]
    reciprocal_plus = gamma2 - mu * gamma1      # 1 / Gamma(1 + mu)
    reciprocal_minus = gamma2 + mu * gamma1     # 1 / Gamma(1 - mu)
    half_x = x / 2.0
    pi_mu = math.pi * mu
    fact = 1.0 if abs(pi_mu) < EPS else pi_mu / math.sin(pi_mu)
    d = -math.log(half_x)
    e = mu * d
    exp_e = math.exp(e)
    # cosh and sinh from the one exponential; sinh(e) / e from math.sinh where e^e - e^-e would cancel (|e| < 1)
    if abs(e) < EPS:
        fact2 = 1.0
    elif abs(e) < 1.0:
        fact2 = math.sinh(e) / e
    else:
        fact2 = (exp_e - 1.0 / exp_e) / (2.0 * e)
    f = fact * (gamma1 * 0.5 * (exp_e + 1.0 / exp_e) + gamma2 * fact2 * d)
    total = f
    p = 0.5 * exp_e / reciprocal_plus
    q = 0.5 / (exp_e * reciprocal_minus)
    c, quarter_x2, total1 = 1.0, half_x * half_x, p
    for i in range(1, CF_ITERATIONS):
        scale = 1.0 / ((i - mu) * (i + mu))     # 1 / (i - mu) = (i + mu) scale, 1 / (i + mu) = (i - mu) scale
        f = (i * f + p + q) * scale
        c *= quarter_x2 / i
        p *= (i + mu) * scale
        q *= (i - mu) * scale
        term = c * f
        total += term
        total1 += c * (p - i * f)
        if abs(term) < EPS * abs(total):
            break
    return total, total1 * 2.0 / x


@njit(cache=True)
def _steed(mu: float, x: float) -> tuple:
    """(log K_mu(x), K_(mu+1)(x) / K_mu(x)) for |mu| <= 1/2, x > 2 by Steed's continued fraction CF2
    (with Temme's normalisation sum s: K_mu = sqrt(pi / (2x)) e^-x / s)."""
    b = 2.0 * (1.0 + x)
    d = 1.0 / b
    h = delta_h = d
    q1, q2 = 0.0, 1.0
    a1 = 0.25 - mu * mu
    q = c = a1
    a = -a1
    s = 1.0 + q * delta_h
    for i in range(1, CF_ITERATIONS):
        a -= 2 * i
        c = -a * c / (i + 1.0)
        q_next = (q1 - b * q2) / a
        q1, q2 = q2, q_next
        q += c * q_next
        b += 2.0
        d = 1.0 / (b + a * d)
        delta_h = (b * d - 1.0) * delta_h
        h += delta_h
        delta_s = q * delta_h
        s += delta_s
        if abs(delta_s) < EPS * abs(s):
            break
    h *= a1
    return 0.5 * math.log(math.pi / (2.0 * x)) - x - math.log(s), (mu + x + 0.5 - h) / x


@njit(cache=True)
def _log_k_small_order(v: float, x: float) -> float:
    """log K_v(x), v < V_DEBYE: K at mu = v - round(v) (Temme or CF2), then the forward recurrence
    y_(nu+1) = (2 nu / x) y_nu + y_(nu-1) from y_mu = 1, y_(mu+1) = K_(mu+1) / K_mu (stable upwards), so that
    y_v = K_v / K_mu; rescaled before it can overflow (one multiply-add per step, no division)."""
    steps = int(math.floor(v + 0.5))
    mu = v - steps
    if x <= 2.0:
        k_mu, k_next = _temme(mu, x)
        log_k, ratio = math.log(k_mu), k_next / k_mu
    else:
        log_k, ratio = _steed(mu, x)
    lower, y = 1.0, ratio
    two_over_x = 2.0 / x
    for i in range(1, steps):
        lower, y = y, (mu + i) * two_over_x * y + lower
        if y > 1e250:
            log_k += math.log(y)
            lower, y = lower / y, 1.0
    return log_k + math.log(y if steps else lower)


@njit(cache=True)
def log_k_scalar(v: float, x: float) -> float:
    if v >= V_DEBYE:
        return _log_k_debye(v, x)
    if x >= max(v * v, 30.0):
        return -x + 0.5 * math.log(math.pi / (2.0 * x)) + math.log(_asymptotic_sum(v, x, 1.0))
    return _log_k_small_order(v, x)


@njit(cache=True)
def _log_i_array(v: np.ndarray, x: np.ndarray, out: np.ndarray) -> None:
    for i in range(x.shape[0]):
        out[i] = log_i_scalar(v[i], x[i])


@njit(cache=True)
def _log_k_array(v: np.ndarray, x: np.ndarray, out: np.ndarray) -> None:
    for i in range(x.shape[0]):
        out[i] = log_k_scalar(v[i], x[i])


def _checked(v: np.ndarray | float, x: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    v, x = np.broadcast_arrays(np.asarray(v, dtype=np.float64), np.asarray(x, dtype=np.float64))
    if (v < 0).any() or (x <= 0).any():
        raise ValueError("log_bessel needs order v >= 0 and argument x > 0 (use |v| for K, since K_-v = K_v)")
    return np.ascontiguousarray(v).ravel(), np.ascontiguousarray(x).ravel()


def log_bessel_i_compiled(v: np.ndarray | float, x: np.ndarray | float) -> np.ndarray:
    """log I_v(x) in float64 on the CPU, element by element (broadcast over v, x)."""
    shape = np.broadcast_shapes(np.shape(v), np.shape(x))
    v, x = _checked(v, x)
    out = np.empty_like(x)
    _log_i_array(v, x, out)
    return out.reshape(shape)


def log_bessel_k_compiled(v: np.ndarray | float, x: np.ndarray | float) -> np.ndarray:
    """log K_v(x) in float64 on the CPU, element by element (broadcast over v, x)."""
    shape = np.broadcast_shapes(np.shape(v), np.shape(x))
    v, x = _checked(v, x)
    out = np.empty_like(x)
    _log_k_array(v, x, out)
    return out.reshape(shape)
