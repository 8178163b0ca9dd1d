"""The Gaussian-mixture instance: EM on unlabeled data, then logistic regression on the responsibilities.

Model: z ~ Uniform{0, ..., K-1}, x | z ~ N(mu_z, I_d), mu_k ~ N(0, (9/d) I); label y = 1[z in positive set],
flipped with probability `flip`. With eta(x) = P(y = 1 | x) = flip + (1 - 2 flip) P(z in positive | x), any
classifier yhat has conditional error P(y != yhat | x) = eta(x) if yhat = 0 else 1 - eta(x), so test errors are
exact expectations over test x (no label noise in the estimate); the Bayes error is E min(eta, 1 - eta).
"""

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp
from sklearn.linear_model import LogisticRegression
from sklearn.mixture import GaussianMixture


@dataclass(frozen=True)
class LabeledMixture:
    means: np.ndarray       # (K, d), unit-variance isotropic components, equal weights
    positive: tuple[int, ...]
    flip: float

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(x (n, d), y (n,) in {0, 1})."""
        k, d = self.means.shape
        z = rng.integers(k, size=n)
        x = self.means[z] + rng.standard_normal((n, d))
        y = np.isin(z, self.positive).astype(int)
        return x, np.where(rng.random(n) < self.flip, 1 - y, y)

    def responsibilities(self, x: np.ndarray, chunk: int = 4096) -> np.ndarray:
        """(n, K) true P(z = k | x) (equal weights, unit variances), `chunk` rows at a time: the (rows, K, d)
        difference is the only large temporary (paper scale: 10^5 test points x 10 x 500 would be 4 GB at once)."""
        out = np.empty((len(x), len(self.means)))
        for start in range(0, len(x), chunk):
            block = x[start:start + chunk]
            log_joint = -0.5 * ((block[:, None, :] - self.means[None]) ** 2).sum(-1)
            out[start:start + chunk] = np.exp(log_joint - logsumexp(log_joint, axis=1, keepdims=True))
        return out

    def eta(self, x: np.ndarray) -> np.ndarray:
        """P(y = 1 | x) with the true parameters."""
        return self.flip + (1 - 2 * self.flip) * self.responsibilities(x)[:, list(self.positive)].sum(1)

    def error(self, predictions: np.ndarray, x: np.ndarray) -> float:
        """Expected test error of the predictions at x, E P(y != yhat | x)."""
        eta = self.eta(x)
        return float(np.where(predictions == 1, 1 - eta, eta).mean())

    def bayes_error(self, x: np.ndarray) -> float:
        eta = self.eta(x)
        return float(np.minimum(eta, 1 - eta).mean())


def random_mixture(clusters: int, d: int, positive: list[int], flip: float, rng: np.random.Generator) -> LabeledMixture:
    return LabeledMixture(rng.standard_normal((clusters, d)) * np.sqrt(9 / d), tuple(positive), flip)


def fit_mixture(unlabeled: np.ndarray, clusters: int, n_init: int, seed: int) -> GaussianMixture:
    """MLE (EM, several restarts) of a spherical Gaussian mixture: the pretraining step."""
    return GaussianMixture(clusters, covariance_type="spherical", n_init=n_init, random_state=seed).fit(unlabeled)


def logistic_predictions(features: np.ndarray, y: np.ndarray, test_features: np.ndarray) -> np.ndarray:
    """Logistic regression (sklearn defaults, L2 with C = 1); a one-class sample predicts its class."""
    if len(np.unique(y)) == 1:
        return np.full(len(test_features), y[0])
    return LogisticRegression().fit(features, y).predict(test_features)
