"""Manufactured problems: the solution u is chosen, the source f is derived from it symbolically (sympy), and
the boundary values are u's own. Poisson: u'' = f (2-D: u_xx + u_yy = f); Allen-Cahn: u'' + u (u^2 - 1) = f."""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import sympy

X, Y = sympy.symbols("x y")

# The official equation dictionary (solutions and domains) restricted to the problems run here.
SOLUTIONS = {
    "poisson_1d-sin_cos": ("sin(6*x)*cos(100*x)", 2 * np.pi),
    "poisson_1d-single_sin": ("sin(100*x)", 2 * np.pi),
    "poisson_1d-sin20": ("sin(20*x)", 2 * np.pi),
    "poisson_1d-mix_sin": ("sin(x) + 0.1*sin(20*x) + 0.05*sin(100*x)", 2 * np.pi),
    "allencahn_1d-sin_cos": ("sin(6*x)*cos(100*x)", 2 * np.pi),
    "poisson_2d-sin_sin": ("sin(100*x)*sin(100*y)", 2 * np.pi),
    "poisson_2d-sin_sin20": ("sin(20*x)*sin(20*y)", 2 * np.pi),
    "allencahn_2d-mix-sincos": ("(sin(x) + 0.1*sin(20*x) + cos(100*x))*(sin(y) + 0.1*sin(20*y) + cos(100*y))", 1.0),
}


@dataclass(frozen=True)
class Problem:
    name: str
    dimension: int
    allen_cahn: bool
    length: float                       # the domain is [0, length]^dimension
    solution: Callable[..., np.ndarray]
    source: Callable[..., np.ndarray]
    frequencies: tuple[float, ...]      # the solution's frequencies along x, in cycles per unit length


def make_problem(name: str) -> Problem:
    if name not in SOLUTIONS:
        raise KeyError(f"unknown problem {name!r}; choose from {sorted(SOLUTIONS)}")
    text, length = SOLUTIONS[name]
    u = sympy.sympify(text)
    dimension = 2 if "_2d" in name else 1
    allen_cahn = name.startswith("allencahn")
    f = sympy.diff(u, X, 2) + (sympy.diff(u, Y, 2) if dimension == 2 else 0) + (u * (u ** 2 - 1) if allen_cahn else 0)
    args = (X, Y) if dimension == 2 else (X,)
    solution = sympy.lambdify(args, u, "numpy")
    source = sympy.lambdify(args, f, "numpy")
    return Problem(name, dimension, allen_cahn, float(length), solution, source, x_frequencies(u))


def x_frequencies(u: sympy.Expr) -> tuple[float, ...]:
    """Frequencies (cycles per unit) of the sinusoids in x: products sin(a x) cos(b x) give |a +- b|."""
    angular = set()
    for term in sympy.Add.make_args(sympy.expand(u)):
        rates = [arg.args[0].coeff(X) for arg in term.atoms(sympy.sin, sympy.cos) if arg.args[0].has(X)]
        if len(rates) == 1:
            angular.add(abs(float(rates[0])))
        elif len(rates) == 2:
            angular.update({abs(float(rates[0] + rates[1])), abs(float(rates[0] - rates[1]))})
    return tuple(sorted(a / (2 * np.pi) for a in angular if a > 0))
