"""Output entropy of a bounded activation under a Gaussian pre-activation, and the WAFBC.

For X ~ N(0, s^2) and an increasing f, the output density is p_X(x) / f'(x) at y = f(x), so
H(f(X)) = H(X) + E[log f'(X)], with H(X) = log(2 pi e s^2) / 2. Under the boundary conditions f(-inf) = 0,
f(+inf) = 1 the output lives in [0, 1], whose largest differential entropy, 0, belongs to the uniform law; the
activation that reaches it is f = Phi(x / s), the input's own CDF (the worst activation function with boundary
conditions, WAFBC: it spreads its outputs as evenly as possible). Every other such f falls below 0.

The bounded activations are rescaled to the same boundary values (0, 1); log f' is written in a form that
stays finite in the tails (quad integrates over the whole line).
"""

import math

import numpy as np
from scipy import integrate, special, stats

# name: (f(x), log f'(x)) for f increasing from 0 to 1; the WAFBC depends on the input scale s.
BOUNDED = {
    "sigmoid": (special.expit, lambda x: -np.logaddexp(0.0, -x) - np.logaddexp(0.0, x)),
    # (tanh(x) + 1) / 2: f' = (1 - tanh^2 x) / 2 = 2 / (e^x + e^-x)^2
    "tanh": (lambda x: (np.tanh(x) + 1) / 2, lambda x: math.log(2.0) - 2 * np.logaddexp(x, -x)),
    # (x / (1 + |x|) + 1) / 2: f' = 1 / (2 (1 + |x|)^2)
    "softsign": (lambda x: (x / (1 + np.abs(x)) + 1) / 2, lambda x: -math.log(2.0) - 2 * np.log1p(np.abs(x))),
    # 1/2 + arctan(x) / pi: f' = 1 / (pi (1 + x^2))
    "arctan": (lambda x: 0.5 + np.arctan(x) / math.pi, lambda x: -math.log(math.pi) - np.log1p(x * x)),
}


def wafbc(scale: float):
    """(f, log f') of the WAFBC for N(0, scale^2) inputs and boundary values 0, 1: Phi(x / scale)."""
    return (lambda x: special.ndtr(x / scale), lambda x: stats.norm.logpdf(x / scale) - math.log(scale))


def activation_pair(name: str, scale: float):
    return wafbc(scale) if name == "wafbc" else BOUNDED[name]


def gaussian_entropy(scale: float) -> float:
    return 0.5 * math.log(2 * math.pi * math.e * scale ** 2)


def output_entropy(log_derivative, scale: float) -> float:
    """H(f(X)) for X ~ N(0, scale^2): H(X) + integral of p(x) log f'(x) dx, by adaptive quadrature."""
    expectation, _ = integrate.quad(lambda x: stats.norm.pdf(x, scale=scale) * log_derivative(x), -np.inf, np.inf,
                                    epsabs=1e-11, epsrel=1e-11, limit=200)
    return gaussian_entropy(scale) + expectation
