"""Learners for h = g(p): the layer-wise three-layer network and its baselines, all fit in closed form.

Three-layer net f(x) = sum_i a_i ReLU(w_i . phi(x) + b_i) on the degree-2 Hermite features phi (the inner layer).
Stage 1 (n/2 samples): from W = 0 with a_i = +-1/m and every ReLU active, one gradient step of the square loss
moves row i by a_i-signed multiples of h_hat = mean_j y_j phi(x_j), so the learned feature is z(x) = h_hat . phi(x).
Stage 2 (the other n/2 samples): standardise z; unit i computes ReLU(s_i z + b_i), s_i = +-1, b_i ~ U[-3, 3];
ridge regression for the outer weights a (lambda chosen on a held-out 10 %).

Random features: the same net with stage 1 skipped (W Gaussian, frozen), ridge on all n samples.
Oracle: stage 2 on the true p(x) instead of z(x).
"""

import numpy as np
from sklearn.kernel_ridge import KernelRidge

LAMBDAS = np.logspace(-6, 1, 8)


def ridge_fit(features: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    """argmin_a ||F a - y||^2 / n + lam ||a||^2 (a constant column is expected in F)."""
    gram = features.T @ features / len(y)
    return np.linalg.solve(gram + lam * np.eye(len(gram)), features.T @ y / len(y))


def ridge_validated(features: np.ndarray, y: np.ndarray, holdout: float = 0.1) -> np.ndarray:
    """Ridge with lambda picked on the last `holdout` fraction, refit on everything.

    One eigendecomposition of the training Gram matrix G = Q diag(mu) Q^T serves every lambda:
    a(lambda) = Q diag(1 / (mu + lambda)) Q^T F^T y / n."""
    split = int(len(y) * (1 - holdout))
    train, held = features[:split], features[split:]
    gram_train = train.T @ train
    mu, q = np.linalg.eigh(gram_train / split)
    projected = q.T @ (train.T @ y[:split] / split)
    errors = [np.mean((held @ (q @ (projected / (mu + lam))) - y[split:]) ** 2) for lam in LAMBDAS]
    gram = (gram_train + held.T @ held) / len(y)
    best = LAMBDAS[int(np.argmin(errors))]
    return np.linalg.solve(gram + best * np.eye(len(gram)), features.T @ y / len(y))


def relu_features(z: np.ndarray, signs: np.ndarray, biases: np.ndarray) -> np.ndarray:
    """(n, m + 1): ReLU(s_i z + b_i) for a scalar feature z, plus a constant column."""
    hidden = np.maximum(z[:, None] * signs[None] + biases[None], 0.0)
    return np.concatenate([hidden, np.ones((len(z), 1))], axis=1)


class ScalarFeatureNet:
    """Stage 2: ridge on ReLU(s_i z + b_i) of a standardised scalar feature z (learned z, or the true p)."""

    def __init__(self, width: int, rng: np.random.Generator) -> None:
        self.signs = rng.choice([-1.0, 1.0], width)
        self.biases = rng.uniform(-3, 3, width)

    def fit(self, z: np.ndarray, y: np.ndarray) -> "ScalarFeatureNet":
        self.mean, self.std = z.mean(), z.std()
        self.outer = ridge_validated(relu_features((z - self.mean) / self.std, self.signs, self.biases), y)
        return self

    def predict(self, z: np.ndarray) -> np.ndarray:
        return relu_features((z - self.mean) / self.std, self.signs, self.biases) @ self.outer


def stage_one_direction(phi: np.ndarray, y: np.ndarray) -> np.ndarray:
    """h_hat = mean_j y_j phi(x_j): the direction every middle-layer row takes after one step from W = 0."""
    return phi.T @ y / len(y)


class RandomFeatures:
    """f(x) = sum_i a_i ReLU(w_i . phi(x) + b_i), w_i ~ N(0, I/D) frozen, b_i ~ U[-1, 1]; ridge on a."""

    def __init__(self, dim: int, width: int, rng: np.random.Generator) -> None:
        self.weights = rng.standard_normal((dim, width)) / np.sqrt(dim)
        self.biases = rng.uniform(-1, 1, width)

    def features(self, phi: np.ndarray) -> np.ndarray:
        hidden = np.maximum(phi @ self.weights + self.biases, 0.0)
        return np.concatenate([hidden, np.ones((len(phi), 1))], axis=1)

    def fit(self, phi: np.ndarray, y: np.ndarray) -> "RandomFeatures":
        self.outer = ridge_validated(self.features(phi), y)
        return self

    def predict(self, phi: np.ndarray) -> np.ndarray:
        return self.features(phi) @ self.outer


def kernel_ridge(x: np.ndarray, y: np.ndarray, x_test: np.ndarray) -> np.ndarray:
    """RBF kernel ridge on raw x (bandwidth from E||x - x'||^2 = 2d), alpha picked on a held-out 10 %."""
    gamma = 1 / (2 * x.shape[1])
    split = int(len(y) * 0.9)
    alphas = [1e-3, 1e-2, 1e-1, 1.0]
    errors = [np.mean((KernelRidge(alpha=a, kernel="rbf", gamma=gamma).fit(x[:split], y[:split]).predict(x[split:])
                       - y[split:]) ** 2) for a in alphas]
    best = alphas[int(np.argmin(errors))]
    return KernelRidge(alpha=best, kernel="rbf", gamma=gamma).fit(x, y).predict(x_test)
