"""The layer-wise three-layer network for h = g(p) and its baselines.

Network (bottleneck of width 1):  f(x) = sum_{i <= m1} c_i ReLU(a_i z(x) + b_i),  z(x) = u . sigma2(V x),
with sigma2 = He_k/sqrt(k!) (target.hermite) and the rows of V uniform on the unit sphere. V, a and b are random
and stay fixed; u and c are trained, one after the other, by gradient descent on the square loss with weight decay:
  stage 1 (first half of the samples): u from 0, on the loss of the bottleneck output z(x) against y; the bottom
           layer is a random-feature model of the degree-k Hermite space, so z converges to the ridge-regularised
           fit of the best degree-k approximation of h, which is ~ E[g'(p)] p for nearly Gaussian p;
  stage 2 (second half): z standardised, a_i = +-1, b_i uniform over the range of z; c from 0, weight decay
           picked on a held-out 10 % of that half, then trained on all of it.
Both stages minimise a strongly convex quadratic, so GD on it only needs the samples' second moments
(F^T F / n, F^T y / n), accumulated in chunks; its iterates then have a closed form in the eigenbasis of F^T F / n
(gradient_descent), so long runs cost one eigendecomposition.

Baselines: random features (stage 1 skipped: the middle layer frozen at a random Gaussian W of width m1, the outer
layer trained as in stage 2), RBF kernel ridge with bandwidth and regulariser picked on a held-out 20 %, and an
oracle stage 2 on the true p.
"""

from collections.abc import Callable, Sequence

import numpy as np
from sklearn.kernel_ridge import KernelRidge

from repro.core.train import plateaued
from repro.papers.hier_poly.target import hermite

FeatureMap = Callable[[np.ndarray], np.ndarray]
CHUNK = 16384   # rows of features built at once (bounds memory at large n)


def second_moments(features: FeatureMap, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(F^T F / n, F^T y / n) of F = features(x), accumulated over chunks of rows."""
    gram, moment = 0.0, 0.0
    for start in range(0, len(y), CHUNK):
        block = features(x[start:start + CHUNK])
        gram = gram + block.T @ block
        moment = moment + block.T @ y[start:start + CHUNK]
    return gram / len(y), moment / len(y)


def gradient_descent(gram: np.ndarray, moment: np.ndarray, weight_decay: float, steps: int,
                     check: Callable[[np.ndarray], float] | None = None, checks: int = 20
                     ) -> tuple[np.ndarray, list[float]]:
    """`steps` steps of GD from w = 0 on L(w) = mean (F w - y)^2 + wd |w|^2 = w^T (G + wd I) w - 2 m^T w + const.

    With step 1/beta, beta = 2 (lambda_max(G) + wd) the smoothness of L, one step is
    w <- w - ((G + wd I) w - m) / (lambda_max + wd). On an eigenvector q_i of G (eigenvalue mu_i) it is a scalar
    recursion with the exact solution w_t . q_i = (1 - r_i^t) (q_i . m) / (mu_i + wd), r_i = 1 - (mu_i + wd) /
    (lambda_max + wd); so the iterate after t steps is computed directly (tests compare it with the loop).
    Returns the weights and, when `check` is given, its value at `checks` evenly spaced steps (a held-out loss)."""
    mu, q = np.linalg.eigh(gram)
    mu = np.maximum(mu, 0.0) + weight_decay
    ratio, projected = 1 - mu / mu[-1], q.T @ moment

    def iterate(t: int) -> np.ndarray:
        return q @ ((1 - ratio**t) * projected / mu)

    curve = [check(iterate(t)) for t in np.linspace(steps / checks, steps, checks).astype(int)] if check else []
    return iterate(steps), curve


def train_layer(features: FeatureMap, x: np.ndarray, y: np.ndarray, weight_decays: Sequence[float], steps: int,
                holdout: float) -> tuple[np.ndarray, bool]:
    """Train one linear layer by GD: each weight decay on the first (1 - holdout) of the rows, the one with the
    lowest held-out loss again on all rows. Returns the weights and whether the chosen run's held-out loss
    plateaued."""
    split = int(len(y) * (1 - holdout))
    gram_fit, moment_fit = second_moments(features, x[:split], y[:split])
    held_features, held_y = features(x[split:]), y[split:]
    gram_held, moment_held = held_features.T @ held_features / len(held_y), held_features.T @ held_y / len(held_y)

    def held_loss(weights: np.ndarray) -> float:
        return float(np.mean((held_features @ weights - held_y) ** 2))

    curves = [gradient_descent(gram_fit, moment_fit, wd, steps, held_loss)[1] for wd in weight_decays]
    best = int(np.argmin([curve[-1] for curve in curves]))
    share = split / len(y)   # second moments of all rows from those of the two parts
    weights, _ = gradient_descent(share * gram_fit + (1 - share) * gram_held,
                                  share * moment_fit + (1 - share) * moment_held, weight_decays[best], steps)
    return weights, plateaued(curves[best])


class BottomLayer:
    """sigma2(V x) = He_k(V x)/sqrt(k!) with m2 rows of V uniform on the unit sphere (fixed random features)."""

    def __init__(self, k: int, d: int, width: int, rng: np.random.Generator) -> None:
        rows = rng.standard_normal((width, d))
        self.k, self.rows = k, rows / np.linalg.norm(rows, axis=1, keepdims=True)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return hermite(self.k, x @ self.rows.T)


class Bottleneck:
    """Stage 1: z(x) = u . sigma2(V x), u trained by GD on the first half of the samples."""

    def __init__(self, bottom: BottomLayer) -> None:
        self.bottom = bottom

    def fit(self, x: np.ndarray, y: np.ndarray, weight_decay: float, steps: int, holdout: float) -> bool:
        self.u, converged = train_layer(self.bottom, x, y, [weight_decay], steps, holdout)
        return converged

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.concatenate([self.bottom(x[s:s + CHUNK]) @ self.u for s in range(0, len(x), CHUNK)])


class ScalarHead:
    """Stage 2: f = sum_i c_i ReLU(a_i z + b_i) + c_0 on a standardised scalar z (the learned z(x), or the true p).

    a_i = +-1 and b_i ~ U[-r, r], r the largest |z| of the training half, so the kinks cover the range of z
    (h grows like z^3: the tails dominate the square loss)."""

    def __init__(self, width: int, rng: np.random.Generator) -> None:
        self.slopes = rng.choice([-1.0, 1.0], width)
        self.offsets = rng.uniform(-1, 1, width)

    def features(self, z: np.ndarray) -> np.ndarray:
        hidden = np.maximum(((z - self.mean) / self.std)[:, None] * self.slopes + self.offsets * self.range, 0.0)
        return np.concatenate([hidden, np.ones((len(z), 1))], axis=1)

    def fit(self, z: np.ndarray, y: np.ndarray, weight_decays: Sequence[float], steps: int, holdout: float) -> bool:
        self.mean, self.std = z.mean(), z.std()
        self.range = np.abs((z - self.mean) / self.std).max()
        self.outer, converged = train_layer(self.features, z, y, weight_decays, steps, holdout)
        return converged

    def predict(self, z: np.ndarray) -> np.ndarray:
        return self.features(z) @ self.outer


class RandomFeatures:
    """f(x) = sum_i c_i ReLU(w_i . sigma2(V x) + b_i) + c_0, w_i ~ N(0, I/m2) and b_i ~ U[-1, 1] frozen."""

    def __init__(self, bottom: BottomLayer, width: int, rng: np.random.Generator) -> None:
        self.bottom = bottom
        self.middle = rng.standard_normal((len(bottom.rows), width)) / np.sqrt(len(bottom.rows))
        self.biases = rng.uniform(-1, 1, width)

    def features(self, x: np.ndarray) -> np.ndarray:
        hidden = np.maximum(self.bottom(x) @ self.middle + self.biases, 0.0)
        return np.concatenate([hidden, np.ones((len(x), 1))], axis=1)

    def fit(self, x: np.ndarray, y: np.ndarray, weight_decays: Sequence[float], steps: int, holdout: float) -> bool:
        self.outer, converged = train_layer(self.features, x, y, weight_decays, steps, holdout)
        return converged

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.concatenate([self.features(x[s:s + CHUNK]) @ self.outer for s in range(0, len(x), CHUNK)])


def kernel_ridge(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, bandwidths: Sequence[float],
                 regularisers: Sequence[float], holdout: float) -> np.ndarray:
    """RBF kernel ridge, exp(-gamma |x - x'|^2) with gamma = c / (2 d) (E|x - x'|^2 = 2 d), (c, alpha) picked on
    the last `holdout` of the samples, then refit on all of them."""
    split = int(len(y) * (1 - holdout))
    grid = [(c / (2 * x.shape[1]), alpha) for c in bandwidths for alpha in regularisers]
    errors = [np.mean((KernelRidge(alpha=alpha, kernel="rbf", gamma=gamma).fit(x[:split], y[:split])
                       .predict(x[split:]) - y[split:]) ** 2) for gamma, alpha in grid]
    gamma, alpha = grid[int(np.argmin(errors))]
    return KernelRidge(alpha=alpha, kernel="rbf", gamma=gamma).fit(x, y).predict(x_test)
