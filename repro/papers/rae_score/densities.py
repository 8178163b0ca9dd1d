"""The data densities, in float64 numpy: isotropic Gaussian mixtures p(x) = sum_k pi_k N(x; mu_k, s^2 I) in R^d
(the 1-D mixture, the ring of Gaussians, the noisy spiral) and the authors' 2-D "ninja star" p = exp(-E) / Z.

Convolving with the corruption N(0, sigma^2 I) keeps the family: p_sigma = sum_k pi_k N(mu_k, (s^2 + sigma^2) I),
so the exact minimiser of the denoising criterion E ||r(x + sigma eps) - x||^2 is available in closed form
(Tweedie / Miyasawa):  r*(x~) = E[x | x~] = x~ + sigma^2 grad log p_sigma(x~).
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.integrate import solve_bvp
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
        """(n, K): log pi_k + log N(x; mu_k, s^2 I), with ||x - mu||^2 = ||x||^2 - 2 x . mu + ||mu||^2 (a matmul)."""
        sq = (x**2).sum(-1)[:, None] - 2 * x @ self.means.T + (self.means**2).sum(-1)[None]
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


class NinjaStar:
    """The authors' 2-D "ninja star" (mcmc_pof/ninja_star_distribution.py of the official code):
    p(x, y) = exp(-E(x, y)) / Z,  E = (sqrt(x^2 + y^2) - 2)^2 + (x^2 - y^2)^2 + 1/2 log(x^2 + y^2 + 1),
    four arms along the diagonals at radius ~2. Z has no closed form: ``log_prob`` is -E (unnormalised; every
    use normalises on a grid), and exact samples come from the density discretised on the authors' grid
    (step 0.01 on [-5, 5]^2), uniform within the chosen cell."""

    dim = 2
    half_width = 5.0
    step = 0.01

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        sq = (x**2).sum(-1)
        return -((np.sqrt(sq) - 2) ** 2 + (x[:, 0] ** 2 - x[:, 1] ** 2) ** 2 + 0.5 * np.log(sq + 1))

    def score(self, x: np.ndarray) -> np.ndarray:
        """(n, 2) -grad E:  grad of (r - 2)^2 is 2 (r - 2) x / r, of (x^2 - y^2)^2 is 4 (x^2 - y^2) (x, -y),
        of 1/2 log(r^2 + 1) is x / (r^2 + 1)."""
        sq = (x**2).sum(-1, keepdims=True)
        radius = np.sqrt(np.maximum(sq, 1e-300))
        diagonal = 4 * (x[:, :1] ** 2 - x[:, 1:] ** 2) * x * np.array([1.0, -1.0])
        return -(2 * (radius - 2) * x / radius + diagonal + x / (sq + 1))

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        edges = np.arange(-self.half_width, self.half_width, self.step)
        corners = np.stack(np.meshgrid(edges, edges, indexing="ij"), -1).reshape(-1, 2)
        log_p = self.log_prob(corners + self.step / 2)
        weights = np.exp(log_p - log_p.max())
        cells = rng.choice(len(corners), size=n, p=weights / weights.sum())
        return corners[cells] + self.step * rng.random((n, 2))


def spiral(components: int = 800, noise: float = 0.02) -> GaussianMixture:
    """The authors' spiral (t ~ U[3, 15], point 0.04 t (sin t, cos t); iclr2013_paper/debian_spiral.py) with
    isotropic data noise N(0, noise^2 I) so that p has a density in 2-D: p = E_t N(0.04 t (sin t, cos t),
    noise^2 I), the expectation over t as a midpoint rule with `components` nodes (node spacing along the
    curve <= 0.04 * 15 * 12 / 800 = 0.009, under half the noise std: log p within 0.04 of a 10x finer rule)."""
    t = 3 + 12 * (np.arange(components) + 0.5) / components
    means = 0.04 * t[:, None] * np.stack([np.sin(t), np.cos(t)], 1)
    return GaussianMixture(means, noise, np.full(components, 1 / components))


def make_density(name: str) -> GaussianMixture | NinjaStar:
    """`mixture1d` = 1/2 N(-1, 0.3^2) + 1/2 N(1, 0.3^2); `ring2d` = 8 Gaussians of std 0.25 equally spaced on the
    circle of radius 2; `spiral` and `ninja_star` as above."""
    if name == "mixture1d":
        return GaussianMixture(np.array([[-1.0], [1.0]]), 0.3, np.array([0.5, 0.5]))
    if name == "ring2d":
        angles = 2 * np.pi * np.arange(8) / 8
        return GaussianMixture(2.0 * np.stack([np.cos(angles), np.sin(angles)], 1), 0.25, np.full(8, 1 / 8))
    if name == "spiral":
        return spiral()
    if name == "ninja_star":
        return NinjaStar()
    raise ConfigError(f"unknown density {name!r}; choose mixture1d, ring2d, spiral or ninja_star")


def rcae_optimum(p: GaussianMixture, sigma: float, half_width: float) -> Callable[[np.ndarray], np.ndarray]:
    """The exact minimiser of the 1-D RCAE criterion  int p(x) [(r(x) - x)^2 + sigma^2 r'(x)^2] dx  on
    [-half_width, half_width], as a function of x (n,) -> r(x) (n,). Its Euler-Lagrange equation
    p (r - x) = sigma^2 (p r')' with the natural boundary condition p r' = 0 is the first-order system
    r' = v,  v' = (r - x)/sigma^2 - (log p)' v,  v(-w) = v(w) = 0, solved by scipy's solve_bvp from r = x."""
    if p.dim != 1:
        raise ConfigError("the RCAE boundary-value optimum is computed for 1-D densities only")

    def system(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.vstack([y[1], (y[0] - x) / sigma**2 - p.score(x[:, None])[:, 0] * y[1]])

    mesh = np.linspace(-half_width, half_width, 801)
    solution = solve_bvp(system, lambda a, b: np.array([a[1], b[1]]), mesh, np.vstack([mesh, np.ones_like(mesh)]),
                         tol=1e-6, max_nodes=200000)
    if not solution.success:
        raise FloatingPointError(f"solve_bvp failed for the RCAE optimum at sigma = {sigma}: {solution.message}")
    return lambda x: solution.sol(x)[0]
