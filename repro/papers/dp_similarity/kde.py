"""Pure eps-DP Gaussian kernel density: F(y) = sum_{x in X} exp(-||x - y||^2 / sigma^2), for any number of queries.

Random Fourier features (Rahimi-Recht): with W (D, d) ~ N(0, 2 / sigma^2) and b ~ U[0, 2 pi],
    z(x) = sqrt(2 / D) cos(W x + b),   E[z(x) . z(y)] = exp(-||x - y||^2 / sigma^2).
The structure releases s = sum_x z(x) + Laplace(Delta / eps)^D with Delta = max_x ||z(x)||_1 = sqrt(2 D)
(the prior mechanism, Wagner et al. 2023) and answers F(y) ~= z(y) . s.

The paper's dimensionality reduction: a JL map P (d', d) ~ N(0, 1 / d') first, so that features cost D d' instead
of D d per query; P, W, b are data independent (public randomness).
"""

import numpy as np


class PrivateRFFKDE:
    def __init__(self, dim: int, features: int, sigma: float, projected_dim: int | None,
                 rng: np.random.Generator) -> None:
        self.projection = None
        if projected_dim is not None:
            self.projection = rng.normal(scale=1 / np.sqrt(projected_dim), size=(projected_dim, dim))
            dim = projected_dim
        self.frequencies = rng.normal(scale=np.sqrt(2) / sigma, size=(features, dim))
        self.phases = rng.uniform(0, 2 * np.pi, size=features)
        self.features = features

    def feature_map(self, points: np.ndarray) -> np.ndarray:
        """z(P x) for each row: (q, D)."""
        if self.projection is not None:
            points = points @ self.projection.T
        return np.sqrt(2 / self.features) * np.cos(points @ self.frequencies.T + self.phases)

    @property
    def sensitivity(self) -> float:
        return float(np.sqrt(2 * self.features))

    def build(self, points: np.ndarray, eps: float, rng: np.random.Generator) -> "PrivateRFFKDE":
        exact = self.feature_map(points).sum(0)
        self.released = exact + rng.laplace(scale=self.sensitivity / eps, size=exact.shape)
        return self

    def query(self, queries: np.ndarray) -> np.ndarray:
        return self.feature_map(queries) @ self.released


def median_distance(points: np.ndarray) -> float:
    """Median pairwise Euclidean distance (the bandwidth, computed on public data only)."""
    from scipy.spatial.distance import pdist

    return float(np.median(pdist(points)))
