"""The hierarchical target h(x) = g(p(x)) with x ~ N(0, I_d) and the bottom layer's Hermite activation.

p(x) = d^{-1/2} sum_j s_j He_k(u_j . x) / sqrt(k!), with u_j the columns of a Haar-orthogonal U and random signs
s_j = +-1. The u_j . x are independent N(0, 1), so E p = 0 and Var p = 1; p is a sum of d independent terms, hence
close to Gaussian for large d (the "large subclass" of degree-k polynomials the main theorem covers). For k = 2
this is x^T A x - tr A with A = U diag(s / sqrt(2d)) U^T: high rank, ||A||_op = 1/sqrt(2d).
g(z) = He_1(z) + He_3(z)/sqrt(6) (q = 3; its linear coefficient E[g(Z) Z] = 1 carries the stage-1 signal).
"""

from dataclasses import dataclass
from math import factorial

import numpy as np
from numpy.polynomial import hermite_e
from scipy.stats import ortho_group


def hermite(k: int, t: np.ndarray) -> np.ndarray:
    """Orthonormal probabilists' Hermite polynomial He_k(t)/sqrt(k!): E[hermite(k, Z)^2] = 1 for Z ~ N(0, 1)."""
    return hermite_e.hermeval(t, np.eye(k + 1)[k]) / np.sqrt(factorial(k))


def link(z: np.ndarray) -> np.ndarray:
    """g(z) = He_1(z) + He_3(z)/sqrt(6) = z + (z^3 - 3 z)/sqrt(6)."""
    return z + (z**3 - 3 * z) / np.sqrt(6)


@dataclass(frozen=True)
class Feature:
    """p(x) = d^{-1/2} sum_j s_j hermite(k, u_j . x): the degree-k feature that the target composes with g."""

    k: int
    directions: np.ndarray   # (d, d), orthonormal columns u_j
    signs: np.ndarray        # (d,), +-1

    @classmethod
    def random(cls, k: int, d: int, rng: np.random.Generator) -> "Feature":
        return cls(k, ortho_group.rvs(d, random_state=rng), rng.choice([-1.0, 1.0], d))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """(n,) p(x) for (n, d) inputs."""
        return hermite(self.k, x @ self.directions) @ self.signs / np.sqrt(len(self.signs))
