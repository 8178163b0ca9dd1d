"""The contrastive-learning instance: pretraining by maximum likelihood of the pair label, then ERM on few labels.

Views: z ~ N(0, I_r), a view x = B z + eps, eps ~ N(0, s_x^2 I_d), with B = s U (U (d, r) orthonormal columns, equal
factor strengths s); downstream y = beta^T z + nu as in the factor model (factor.FactorModel with these loadings).
Unlabeled data are m pairs (x, x', t): with probability 1/2 a positive pair (two views of one z, t = 1), otherwise a
negative pair (views of independent z, z', t = 0). Then P(t = 1 | x, x') = sigmoid(log p+(x, x') / (p(x) p(x'))).
Along U_k, with a = U_k^T x, v = s^2 + s_x^2 and c = s^2 (the other directions are the same noise under both laws),
    log ratio = sum_k [alpha a_k a'_k - beta (a_k^2 + a'_k^2)] - (r/2) log(1 - c^2 / v^2),
    alpha = c / (v^2 - c^2),  beta = c^2 / (2 v (v^2 - c^2)),
so with u = W x, W = sqrt(alpha) U^T: log ratio = u^T u' - tau (|u|^2 + |u'|^2) + b, tau = c / (2 v),
b = -(r/2) log(1 - c^2 / v^2). Pretraining is the MLE of this conditional model over (W, tau, b) (the logistic loss
of the pair label); W is identified up to a rotation of R^r, which the downstream OLS on W x absorbs, and its row
space is that of E[z | x] = B^T Sigma_x^{-1} x.
"""

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_expit

from repro.papers.unsup_pretrain.factor import FactorModel


def random_view_model(d: int, r: int, noise_x: float, noise_y: float, rng: np.random.Generator) -> FactorModel:
    """B = s U with U Haar-orthonormal and s = sqrt(d / r) (the factor model's expected column norm, E|B_k|^2 = d/r);
    beta uniform on the sphere of radius 2 in R^r."""
    basis, _ = np.linalg.qr(rng.standard_normal((d, r)))
    beta = rng.standard_normal(r)
    return FactorModel(np.sqrt(d / r) * basis, 2 * beta / np.linalg.norm(beta), noise_x, noise_y)


def sample_pairs(model: FactorModel, m: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """m pairs (x (m, d), x' (m, d), t (m,)): t = 1 w.p. 1/2 (x' a second view of x's latent), else independent."""
    d, r = model.loadings.shape
    positive = rng.uniform(size=m) < 0.5
    z = rng.standard_normal((m, r))
    other = np.where(positive[:, None], z, rng.standard_normal((m, r)))
    first = z @ model.loadings.T + model.noise_x * rng.standard_normal((m, d))
    second = other @ model.loadings.T + model.noise_x * rng.standard_normal((m, d))
    return first, second, positive.astype(float)


def true_parameters(model: FactorModel) -> tuple[np.ndarray, float, float]:
    """(W (r, d), tau, b) of the true log density ratio (module docstring); B must be s U with equal strengths."""
    strengths = np.linalg.norm(model.loadings, axis=0)
    c = float(strengths[0]) ** 2
    v = c + model.noise_x**2
    r = model.loadings.shape[1]
    alpha = c / (v**2 - c**2)
    return np.sqrt(alpha) * (model.loadings / strengths).T, c / (2 * v), -0.5 * r * np.log(1 - c**2 / v**2)


def log_ratio(first: np.ndarray, second: np.ndarray, weights: np.ndarray, tau: float, offset: float) -> np.ndarray:
    """u^T u' - tau (|u|^2 + |u'|^2) + b with u = W x, u' = W x' (one value per pair)."""
    u, w = first @ weights.T, second @ weights.T
    return np.sum(u * w, axis=1) - tau * (np.sum(u**2, axis=1) + np.sum(w**2, axis=1)) + offset


def pair_log_likelihood(first: np.ndarray, second: np.ndarray, label: np.ndarray, weights: np.ndarray, tau: float,
                        offset: float) -> float:
    """Mean log P(t | x, x') of the model: t log sigmoid(score) + (1 - t) log sigmoid(-score)."""
    score = log_ratio(first, second, weights, tau, offset)
    return float(np.mean(label * log_expit(score) + (1 - label) * log_expit(-score)))


def contrastive_representation(first: np.ndarray, second: np.ndarray, label: np.ndarray, r: int, seed: int,
                               max_iterations: int) -> tuple[np.ndarray, float, float]:
    """MLE of (W, tau, b) by L-BFGS on the mean negative log-likelihood of the pair labels (analytic gradient), from
    W with N(0, 1/d) entries (W = 0 is a stationary point), tau = 0, b = 0. Returns (W (r, d), tau, b)."""
    m, d = first.shape

    def loss_and_gradient(theta: np.ndarray) -> tuple[float, np.ndarray]:
        weights, tau, offset = theta[:-2].reshape(r, d), theta[-2], theta[-1]
        u, w = first @ weights.T, second @ weights.T
        score = np.sum(u * w, axis=1) - tau * (np.sum(u**2, axis=1) + np.sum(w**2, axis=1)) + offset
        loss = -np.mean(label * log_expit(score) + (1 - label) * log_expit(-score))
        residual = (expit(score) - label) / m                       # d loss / d score
        grad_w = (residual[:, None] * (w - 2 * tau * u)).T @ first + (residual[:, None] * (u - 2 * tau * w)).T @ second
        grad_tau = -residual @ (np.sum(u**2, axis=1) + np.sum(w**2, axis=1))
        return float(loss), np.concatenate([grad_w.ravel(), [grad_tau, residual.sum()]])

    start = np.concatenate([np.random.default_rng(seed).standard_normal(r * d) / np.sqrt(d), [0.0, 0.0]])
    result = minimize(loss_and_gradient, start, jac=True, method="L-BFGS-B", options={"maxiter": max_iterations})
    return result.x[:-2].reshape(r, d), float(result.x[-2]), float(result.x[-1])
