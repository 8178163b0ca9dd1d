"""DP-SGD multinomial logistic regression (the baseline) and its RDP accountant.

Step: Poisson-sample each example with rate q; per-example gradient g_i = x~_i (p_i - e_{y_i})^T with
x~ = (x, 1), whose Frobenius norm is ||x~_i|| ||p_i - e_{y_i}||, clipped to norm C; then
    W <- W - lr (sum_i clip(g_i) + N(0, sigma^2 C^2 I)) / (q n).
Accountant (Mironov, Talwar, Zhang 2019, integer orders alpha >= 2, add/remove neighbours):
    RDP(alpha) = log( sum_k binom(alpha, k) (1 - q)^(alpha - k) q^k exp((k^2 - k) / (2 sigma^2)) ) / (alpha - 1),
T steps compose additively; eps = min_alpha T RDP(alpha) + log(1 / delta) / (alpha - 1).
"""

from functools import lru_cache

import numpy as np
from scipy.special import gammaln, logsumexp

ORDERS = np.arange(2, 257)


def sampled_gaussian_rdp(q: float, sigma: float, order: int) -> float:
    if q == 1.0:   # no subsampling: the Gaussian mechanism's alpha / (2 sigma^2)
        return order / (2 * sigma**2)
    k = np.arange(order + 1)
    log_binomial = gammaln(order + 1) - gammaln(k + 1) - gammaln(order - k + 1)
    with np.errstate(divide="ignore"):
        log_terms = (log_binomial + (order - k) * np.log1p(-q) + k * np.log(q) + (k**2 - k) / (2 * sigma**2))
    return float(logsumexp(log_terms) / (order - 1))


def dpsgd_epsilon(q: float, sigma: float, steps: int, delta: float) -> float:
    return min(steps * sampled_gaussian_rdp(q, sigma, a) + np.log(1 / delta) / (a - 1) for a in ORDERS)


@lru_cache(maxsize=64)
def noise_for_epsilon(q: float, steps: int, eps: float, delta: float) -> float:
    """Smallest noise multiplier (bisection, 1e-3 relative) whose accounted epsilon is <= eps."""
    low, high = 0.2, 200.0
    if dpsgd_epsilon(q, high, steps, delta) > eps:
        raise ValueError(f"eps = {eps} is out of reach for q = {q}, {steps} steps (noise multiplier > {high})")
    while high / low > 1 + 1e-3:
        middle = np.sqrt(low * high)
        low, high = (low, middle) if dpsgd_epsilon(q, middle, steps, delta) <= eps else (middle, high)
    return high


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(1, keepdims=True))
    return shifted / shifted.sum(1, keepdims=True)


def train_dpsgd_logreg(features: np.ndarray, labels: np.ndarray, classes: int, noise_multiplier: float,
                       batch_size: int, epochs: int, lr: float, clip: float,
                       rng: np.random.Generator) -> np.ndarray:
    """Weights (d + 1, classes) after epochs * n / batch_size Poisson-sampled steps."""
    augmented = np.hstack([features, np.ones((len(features), 1))])
    onehot = np.eye(classes)[labels]
    weights = np.zeros((augmented.shape[1], classes))
    q = batch_size / len(features)
    for _ in range(int(epochs / q)):
        chosen = rng.random(len(features)) < q
        x, residual = augmented[chosen], softmax(augmented[chosen] @ weights) - onehot[chosen]
        norms = np.linalg.norm(x, axis=1) * np.linalg.norm(residual, axis=1)
        scaled = residual * np.minimum(1.0, clip / np.maximum(norms, 1e-12))[:, None]
        noise = rng.normal(scale=noise_multiplier * clip, size=weights.shape)
        weights -= lr * (x.T @ scaled + noise) / batch_size
    return weights


def predict_logreg(weights: np.ndarray, features: np.ndarray) -> np.ndarray:
    return (np.hstack([features, np.ones((len(features), 1))]) @ weights).argmax(1)
