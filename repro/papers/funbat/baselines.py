"""Baselines: Tucker and CP fitted by ALS on binned indices (discrete tensor methods), and GP regression on the
raw continuous indices (a functional/regression baseline).

Binned methods: bin edges per mode are equal-width over the TRAINING index range (test indices are clipped into
it); each observation keeps its own entry (repeats in a cell act as weights). Factors U^k (B_k, R_k):
    y_n ~= vec(W)^T (U^1[b_n1] kron ... kron U^K[b_nK]),
Tucker updates W too; CP fixes W to the superdiagonal of ones. Each row of U^k is a ridge least-squares fit over
the observations in its bin; a bin without training data keeps a zero row (it cannot predict).
"""

import numpy as np
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

from repro.papers.funbat.model import batched_kron, unfold_core


def bin_index(train_values: np.ndarray, values: np.ndarray, bins: int) -> np.ndarray:
    low, high = train_values.min(), train_values.max()
    return np.clip(((values - low) / (high - low) * bins).astype(int), 0, bins - 1)


class BinnedTucker:
    def __init__(self, ranks: list[int], bins: int, cp: bool, iterations: int, ridge: float) -> None:
        self.ranks, self.bins, self.cp, self.iterations, self.ridge = list(ranks), bins, cp, iterations, ridge

    def fit(self, index: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> "BinnedTucker":
        self.train_index = index
        cells = self.cells(index)
        modes = index.shape[1]
        self.factors = [rng.normal(size=(self.bins, r)) for r in self.ranks]
        size = int(np.prod(self.ranks))
        if self.cp:
            self.core = np.zeros(size)
            self.core[np.ravel_multi_index([np.arange(self.ranks[0])] * modes, self.ranks)] = 1.0
        else:
            self.core = rng.normal(size=size)
        self.train_rmse = []   # per sweep: the training fit (the convergence record)
        for _ in range(self.iterations):
            for k in range(modes):
                rows = [self.factors[j][cells[:, j]] for j in range(modes) if j != k]
                unfolded = unfold_core(self.core, self.ranks, k)
                design = batched_kron(rows) @ unfolded.T                                  # (N, R_k)
                gram = np.zeros((self.bins, self.ranks[k], self.ranks[k]))
                rhs = np.zeros((self.bins, self.ranks[k]))
                np.add.at(gram, cells[:, k], design[:, :, None] * design[:, None, :])
                np.add.at(rhs, cells[:, k], design * y[:, None])
                gram += self.ridge * np.eye(self.ranks[k])
                self.factors[k] = np.linalg.solve(gram, rhs[..., None])[..., 0]
            if not self.cp:
                design = batched_kron([self.factors[k][cells[:, k]] for k in range(modes)])
                self.core = np.linalg.solve(design.T @ design + self.ridge * np.eye(size), design.T @ y)
            fitted = batched_kron([self.factors[k][cells[:, k]] for k in range(modes)]) @ self.core
            self.train_rmse.append(float(np.sqrt(np.mean((fitted - y) ** 2))))
        return self

    def cells(self, index: np.ndarray) -> np.ndarray:
        return np.stack([bin_index(self.train_index[:, k], index[:, k], self.bins)
                         for k in range(index.shape[1])], 1)

    def predict(self, index: np.ndarray) -> np.ndarray:
        cells = self.cells(index)
        return batched_kron([self.factors[k][cells[:, k]] for k in range(index.shape[1])]) @ self.core


def gp_regression(index: np.ndarray, y: np.ndarray, max_points: int, rng: np.random.Generator
                  ) -> GaussianProcessRegressor:
    """sklearn GP: constant x Matern(nu = 1.5, one lengthscale per mode) + white noise, hyper-parameters by
    marginal likelihood (one optimiser start, so no random restarts), on at most max_points random training
    entries."""
    chosen = rng.choice(len(y), size=min(max_points, len(y)), replace=False)
    kernel = ConstantKernel(1.0) * Matern(length_scale=np.full(index.shape[1], 0.2), nu=1.5) + WhiteKernel(0.01)
    return GaussianProcessRegressor(kernel, normalize_y=True, random_state=int(rng.integers(2**31))).fit(
        index[chosen], y[chosen])
