"""Isotropic Gaussian mixtures p(x) = sum_k pi_k N(x; mu_k, s^2 I) in R^d, in float64 numpy.

Convolving with the corruption N(0, sigma^2 I) keeps the family: p_sigma = sum_k pi_k N(mu_k, (s^2 + sigma^2) I),
so the exact minimiser of the denoising criterion E ||r(x + sigma eps) - x||^2 is available in closed form
(Tweedie / Miyasawa):  r*(x~) = E[x | x~] = x~ + sigma^2 grad log p_sigma(x~).
"""

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp, softmax

from repro.core.errors import ConfigError


@dataclass(frozen=True)
class GaussianMixture:
    """means: (K, d); std: the common isotropic component std s; weights: (K,) summing to 1."""

    means: np.ndarray
    std: float
    weights: np.ndarray

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def _log_components(self, x: np.ndarray) -> np.ndarray:
        """(n, K): log pi_k + log N(x; mu_k, s^2 I)."""
        sq = ((x[:, None, :] - self.means[None]) ** 2).sum(-1)
        return (np.log(self.weights) - 0.5 * sq / self.std**2
                - 0.5 * self.dim * np.log(2 * np.pi * self.std**2))

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        """(n,) log p(x) for x of shape (n, d)."""
        return logsumexp(self._log_components(x), axis=1)

    def score(self, x: np.ndarray) -> np.ndarray:
        """(n, d) grad log p(x) = sum_k gamma_k(x) (mu_k - x) / s^2 (gamma: responsibilities)."""
        gamma = softmax(self._log_components(x), axis=1)
        return (gamma @ self.means - x) / self.std**2

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        k = rng.choice(len(self.weights), size=n, p=self.weights)
        return self.means[k] + self.std * rng.standard_normal((n, self.dim))

    def smoothed(self, sigma: float) -> "GaussianMixture":
        """p_sigma = p * N(0, sigma^2 I): the same mixture with component variance s^2 + sigma^2."""
        return GaussianMixture(self.means, float(np.hypot(self.std, sigma)), self.weights)

    def dae_optimum(self, x: np.ndarray, sigma: float) -> np.ndarray:
        """(n, d) the exact DAE optimum r*(x) = x + sigma^2 grad log p_sigma(x)."""
        return x + sigma**2 * self.smoothed(sigma).score(x)


def make_density(name: str) -> GaussianMixture:
    """The card's densities: `mixture1d` = 1/2 N(-1, 0.3^2) + 1/2 N(1, 0.3^2); `ring2d` = 8 Gaussians of std
    0.25 equally spaced on the circle of radius 2."""
    if name == "mixture1d":
        return GaussianMixture(np.array([[-1.0], [1.0]]), 0.3, np.array([0.5, 0.5]))
    if name == "ring2d":
        angles = 2 * np.pi * np.arange(8) / 8
        return GaussianMixture(2.0 * np.stack([np.cos(angles), np.sin(angles)], 1), 0.25, np.full(8, 1 / 8))
    raise ConfigError(f"unknown density {name!r}; choose mixture1d or ring2d")
