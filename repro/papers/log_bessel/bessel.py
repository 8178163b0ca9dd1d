"""log I_v(x) and log K_v(x) in float64 torch, computed in log space region by region (Plesner et al., 2024).

Every formula is written as  log F = (log of a dominant factor) + log(sum of terms),  with the sum formed by
log-sum-exp or as a sum close to 1, so no intermediate under- or overflows. Regions (v >= 0, x > 0):

log I_v(x)
- power series      x^2 / 4 <= v + 1:   I_v(x) = sum_k (x/2)^(v+2k) / (k! Gamma(v+k+1))
- Debye expansion   v >= V_DEBYE:       I_v(v z) ~ e^(v eta) / (sqrt(2 pi v) (1+z^2)^(1/4)) sum_k U_k(p) / v^k
- large argument    x >= max(30, v^2):  I_v(x) ~ e^x / sqrt(2 pi x) sum_k (-1)^k a_k(v) / x^k
- otherwise         downward recurrence I_(mu-1) = I_(mu+1) + (2 mu / x) I_mu from Debye at order v + n >= V_DEBYE
log K_v(x)
- Debye expansion   v >= V_DEBYE:       K_v(v z) ~ sqrt(pi / (2 v)) e^(-v eta) / (1+z^2)^(1/4) sum_k (-1)^k U_k(p) / v^k
- large argument    x >= max(30, v^2):  K_v(x) ~ sqrt(pi / (2 x)) e^(-x) sum_k a_k(v) / x^k
- otherwise         K_v(x) = int_0^inf exp(-x cosh t) cosh(v t) dt by the trapezoidal rule in log space on the
                    interval where the integrand is within e^-50 of its maximum.
with p = 1 / sqrt(1 + z^2), eta = sqrt(1 + z^2) + log(z / (1 + sqrt(1 + z^2))),
a_k(v) = prod_(j<=k) (4v^2 - (2j-1)^2) / (k! 8^k).

Derivatives in x (autograd): d/dx log I_v = I_(v+1)/I_v + v/x and d/dx log K_v = v/x - K_(v+1)/K_v.
"""

import math
from fractions import Fraction

import torch

V_DEBYE = 50.0          # Debye (uniform large-order) expansion from this order on
DEBYE_TERMS = 14        # U_0 .. U_13: error ~ U_14 / v^14 < 1e-20 at v = 50
SERIES_TERMS = 24       # (x^2/4) / (j (v+j)) <= 1/j in the series region: tail < 1/24! ~ 1.6e-24
ASYMPTOTIC_TERMS = 40   # large-argument series for x >= max(30, v^2), v < V_DEBYE
QUAD_NODES = 64         # trapezoidal nodes per QUAD_SPAN of t for the K integral (step <= 0.19)
QUAD_SPAN = 12.0
QUAD_DROP = 50.0        # integrate where the log integrand is within 50 of its maximum


def debye_polynomials(count: int) -> list[list[Fraction]]:
    """Coefficients (ascending powers of p) of U_0..U_(count-1):
    U_(k+1)(p) = p^2 (1 - p^2) U_k'(p) / 2 + (1/8) int_0^p (1 - 5 t^2) U_k(t) dt."""
    polys = [[Fraction(1)]]
    for _ in range(count - 1):
        u = polys[-1]
        nxt = [Fraction(0)] * (len(u) + 3)
        for power, c in enumerate(u):
            if power:                     # p^2 (1 - p^2) * power c p^(power-1) / 2
                nxt[power + 1] += c * power / 2
                nxt[power + 3] -= c * power / 2
            nxt[power + 1] += c / (8 * (power + 1))        # (1/8) int t^power
            nxt[power + 3] -= 5 * c / (8 * (power + 3))    # -(5/8) int t^(power+2)
        polys.append(nxt)
    return polys


_U = [[float(c) for c in poly] for poly in debye_polynomials(DEBYE_TERMS)]


def _horner(coefficients: list[float], p: torch.Tensor) -> torch.Tensor:
    out = torch.zeros_like(p)
    for c in reversed(coefficients):
        out = out * p + c
    return out


def _debye(v: torch.Tensor, x: torch.Tensor, sign: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(v eta, log (1+z^2)^(1/4), log sum_k sign^k U_k(p) / v^k) for the Debye expansions."""
    z = x / v
    root = torch.sqrt(1 + z * z)
    p = 1 / root
    eta = root + torch.log(z) - torch.log1p(root)
    series = torch.ones_like(x)
    power = torch.ones_like(x)
    for k in range(1, DEBYE_TERMS):
        power = power * (sign / v)
        series = series + _horner(_U[k], p) * power
    return v * eta, 0.5 * torch.log(root), torch.log(series)


def _log_i_debye(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    exponent, log_quartic, log_series = _debye(v, x, 1.0)
    return exponent - log_quartic - 0.5 * torch.log(2 * math.pi * v) + log_series


def _log_k_debye(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    exponent, log_quartic, log_series = _debye(v, x, -1.0)
    return -exponent - log_quartic + 0.5 * torch.log(math.pi / (2 * v)) + log_series


def _asymptotic_sum(v: torch.Tensor, x: torch.Tensor, sign: float) -> torch.Tensor:
    """sum_k sign^k a_k(v) / x^k (large-argument series)."""
    mu = 4 * v * v
    term = torch.ones_like(x)
    total = torch.ones_like(x)
    for k in range(1, ASYMPTOTIC_TERMS):
        term = term * (mu - (2 * k - 1) ** 2) / (8 * k * x) * sign
        total = total + term
    return total


def _log_i_large_x(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return x - 0.5 * torch.log(2 * math.pi * x) + torch.log(_asymptotic_sum(v, x, -1.0))


def _log_k_large_x(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return -x + 0.5 * torch.log(math.pi / (2 * x)) + torch.log(_asymptotic_sum(v, x, 1.0))


def _log_i_series(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log I = v log(x/2) - lgamma(v+1) + log sum_k prod_(j<=k) (x^2/4) / (j (v+j)); in this region every factor
    is <= 1/j, so the terms fall from 1 and the sum neither under- nor overflows."""
    quarter_x2 = x * x / 4
    term = torch.ones_like(x)
    tail = torch.zeros_like(x)  # the sum less its leading 1: log1p keeps its digits where log I is near 0
    for j in range(1, SERIES_TERMS):
        term = term * quarter_x2 / (j * (v + j))
        tail = tail + term
    return v * torch.log(x / 2) - torch.lgamma(v + 1) + torch.log1p(tail)


def _log_i_recurrence(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Downward recurrence of the ratio rho_mu = I_(mu+1)/I_mu: rho_(mu-1) = 1 / (rho_mu + 2 mu / x), stable
    because I decreases with the order; start from Debye at mu = v + n >= V_DEBYE."""
    steps = torch.ceil(V_DEBYE - v).clamp(min=0)
    mu = v + steps
    log_i = _log_i_debye(mu, x)
    rho = torch.exp(_log_i_debye(mu + 1, x) - log_i)
    for step in range(int(steps.max().item()) if steps.numel() else 0):
        active = step < steps
        rho_down = 1 / (rho + 2 * mu / x)
        log_i = torch.where(active, log_i - torch.log(rho_down), log_i)
        rho = torch.where(active, rho_down, rho)
        mu = torch.where(active, mu - 1, mu)
    return log_i


def _log_integrand(t: torch.Tensor, v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """h(t) = -x cosh t + log cosh(v t), with log cosh y = |y| + log1p(e^(-2|y|)) - log 2."""
    y = (v * t).abs()
    return -x * torch.cosh(t) + y + torch.log1p(torch.exp(-2 * y)) - math.log(2)


def _bisect(f, low: torch.Tensor, high: torch.Tensor, iterations: int) -> torch.Tensor:
    """Vectorised bisection for the sign change of f (f(low) > 0 >= f(high))."""
    for _ in range(iterations):
        middle = (low + high) / 2
        positive = f(middle) > 0
        low, high = torch.where(positive, middle, low), torch.where(positive, high, middle)
    return (low + high) / 2


def _log_k_integral(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log int_0^inf exp(h(t)) dt by the trapezoidal rule on [a, b] where h >= max h - QUAD_DROP.

    The maximum t* is 0 when v^2 <= x (h' = -x sinh t + v tanh(v t) <= t (v^2 - x)); otherwise it is the root of
    h' in (0, asinh(v / x)]. For a = 0 the even integrand makes the trapezoidal rule spectrally accurate.
    """
    def h(t: torch.Tensor) -> torch.Tensor:
        return _log_integrand(t, v, x)

    interior = v * v > x
    upper = torch.asinh(v / x)
    # The ends need only a few digits: outside [a, b] the integrand is below e^-50 of its peak anyway.
    peak = _bisect(lambda t: -x * torch.sinh(t) + v * torch.tanh(v * t), torch.zeros_like(x), upper, 30)
    peak = torch.where(interior, peak, torch.zeros_like(x))
    level = h(peak) - QUAD_DROP
    # Bracket the right end, h(peak + width) < level, from a Gaussian guess (curvature at the peak) capped at 1.
    width = torch.sqrt(2 * QUAD_DROP / (x * torch.cosh(peak))).clamp(max=1.0)
    inner = torch.zeros_like(x)
    for _ in range(12):
        above = h(peak + width) > level
        inner = torch.where(above, width, inner)
        width = torch.where(above, 2 * width, width)
    right = _bisect(lambda t: h(t) - level, peak + inner, peak + width, 24)
    left_zero = h(torch.zeros_like(x)) >= level
    left = _bisect(lambda t: level - h(t), torch.zeros_like(x), peak, 16)
    left = torch.where(left_zero, torch.zeros_like(x), left)
    # A fixed step keeps the rule accurate: QUAD_NODES nodes per QUAD_SPAN of t (long intervals when x is tiny).
    blocks = torch.ceil((right - left) / QUAD_SPAN).clamp(min=1)
    out = torch.empty_like(x)
    for count in torch.unique(blocks).tolist():
        chosen = blocks == count
        out[chosen] = _trapezoid_log(left[chosen], right[chosen], v[chosen], x[chosen], int(count) * QUAD_NODES)
    return out


def _trapezoid_log(left: torch.Tensor, right: torch.Tensor, v: torch.Tensor, x: torch.Tensor,
                   nodes_count: int) -> torch.Tensor:
    """log of the trapezoidal sum of exp(h) on [left, right] with `nodes_count` nodes (log-sum-exp)."""
    fraction = torch.linspace(0, 1, nodes_count, dtype=x.dtype, device=x.device)
    nodes = left[:, None] + (right - left)[:, None] * fraction
    log_weights = torch.zeros(nodes_count, dtype=x.dtype, device=x.device)
    log_weights[[0, -1]] = math.log(0.5)
    step = (right - left) / (nodes_count - 1)
    values = _log_integrand(nodes, v[:, None], x[:, None]) + log_weights
    return torch.log(step) + torch.logsumexp(values, dim=1)


def _by_region(v: torch.Tensor, x: torch.Tensor, regions: list) -> torch.Tensor:
    """Evaluate each formula only on its region's elements (first matching region wins)."""
    out = torch.full_like(x, float("nan"))
    done = torch.zeros_like(x, dtype=torch.bool)
    for mask, formula in regions:
        mask = mask & ~done
        if mask.any():
            out[mask] = formula(v[mask], x[mask])
        done |= mask
    return out


def _prepare(v: torch.Tensor | float, x: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.as_tensor(x, dtype=torch.float64)
    v = torch.as_tensor(v, dtype=torch.float64, device=x.device)
    v, x = torch.broadcast_tensors(v, x)
    if (v < 0).any() or (x <= 0).any():
        raise ValueError("log_bessel needs order v >= 0 and argument x > 0 (use |v| for K, since K_-v = K_v)")
    return v.reshape(-1), x.reshape(-1)


def _regions_i(v: torch.Tensor, x: torch.Tensor) -> list:
    return [(x * x / 4 <= v + 1, _log_i_series), (v >= V_DEBYE, _log_i_debye),
            (x >= torch.clamp(v * v, min=30.0), _log_i_large_x), (torch.ones_like(x, dtype=torch.bool),
                                                                   _log_i_recurrence)]


def _regions_k(v: torch.Tensor, x: torch.Tensor) -> list:
    return [(v >= V_DEBYE, _log_k_debye), (x >= torch.clamp(v * v, min=30.0), _log_k_large_x),
            (torch.ones_like(x, dtype=torch.bool), _log_k_integral)]


def _log_i_values(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return _by_region(v, x, _regions_i(v, x))


def _log_k_values(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return _by_region(v, x, _regions_k(v, x))


class _LogI(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        out = _log_i_values(v, x)
        ctx.save_for_backward(v, x, out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        v, x, out = ctx.saved_tensors
        return None, grad * (torch.exp(_log_i_values(v + 1, x) - out) + v / x)


class _LogK(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        out = _log_k_values(v, x)
        ctx.save_for_backward(v, x, out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        v, x, out = ctx.saved_tensors
        return None, grad * (v / x - torch.exp(_log_k_values(v + 1, x) - out))


def log_bessel_i(v: torch.Tensor | float, x: torch.Tensor | float) -> torch.Tensor:
    """log I_v(x), float64, broadcast over (v, x); differentiable in x. Runs on x's device."""
    shape = torch.broadcast_shapes(torch.as_tensor(v).shape, torch.as_tensor(x).shape)
    return _LogI.apply(*_prepare(v, x)).reshape(shape)


def log_bessel_k(v: torch.Tensor | float, x: torch.Tensor | float) -> torch.Tensor:
    """log K_v(x), float64, broadcast over (v, x); differentiable in x. Runs on x's device."""
    shape = torch.broadcast_shapes(torch.as_tensor(v).shape, torch.as_tensor(x).shape)
    return _LogK.apply(*_prepare(v, x)).reshape(shape)
