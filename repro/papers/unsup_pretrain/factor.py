"""The factor-model instance: pretraining by maximum likelihood on unlabeled data, then ERM on few labels.

Model (x in R^d, r factors):  z ~ N(0, I_r),  x = B z + eps, eps ~ N(0, s_x^2 I_d),  y = beta^T z + nu,
nu ~ N(0, s_y^2). Then Sigma_x = B B^T + s_x^2 I, the Bayes predictor is linear, E[y | x] = c*^T x with
c* = Sigma_x^{-1} B beta, and any affine predictor yhat = c0 + c^T x has excess risk
    E(yhat - y)^2 - E(c*^T x - y)^2 = (c - c*)^T Sigma_x (c - c*) + c0^2        (x has mean zero).
"""

from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import FactorAnalysis
from sklearn.linear_model import LinearRegression, RidgeCV


@dataclass(frozen=True)
class FactorModel:
    loadings: np.ndarray   # B, (d, r)
    beta: np.ndarray       # (r,)
    noise_x: float         # s_x
    noise_y: float         # s_y

    @property
    def covariance(self) -> np.ndarray:
        """Sigma_x = B B^T + s_x^2 I, (d, d)."""
        return self.loadings @ self.loadings.T + self.noise_x**2 * np.eye(len(self.loadings))

    @property
    def bayes_coefficients(self) -> np.ndarray:
        """c* = Sigma_x^{-1} B beta, (d,)."""
        return np.linalg.solve(self.covariance, self.loadings @ self.beta)

    @property
    def residual_variance(self) -> float:
        """sigma^2_{y|x} = beta^T (I - B^T Sigma_x^{-1} B) beta + s_y^2."""
        b = self.loadings
        inner = np.eye(b.shape[1]) - b.T @ np.linalg.solve(self.covariance, b)
        return float(self.beta @ inner @ self.beta + self.noise_y**2)

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(x (n, d), y (n,))."""
        d, r = self.loadings.shape
        z = rng.standard_normal((n, r))
        x = rng.standard_normal((n, d))   # built in place: one (n, d) temporary instead of three
        x *= self.noise_x
        x += z @ self.loadings.T
        return x, z @ self.beta + self.noise_y * rng.standard_normal(n)

    def excess_risk(self, coef: np.ndarray, intercept: float) -> float:
        delta = coef - self.bayes_coefficients
        return float(delta @ self.covariance @ delta + intercept**2)

    def posterior_mean_map(self) -> np.ndarray:
        """The true representation E[z | x] = B^T Sigma_x^{-1} x, as a (d, r) matrix."""
        return np.linalg.solve(self.covariance, self.loadings)


def random_factor_model(d: int, r: int, noise_x: float, noise_y: float, rng: np.random.Generator) -> FactorModel:
    """B_ij ~ N(0, 1/r); beta uniform on the sphere of radius 2 in R^r."""
    loadings = rng.standard_normal((d, r)) / np.sqrt(r)
    beta = rng.standard_normal(r)
    return FactorModel(loadings, 2 * beta / np.linalg.norm(beta), noise_x, noise_y)


def linear_representation(unlabeled: np.ndarray, r: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """MLE factor analysis on the (m, d) unlabeled sample; E_hat[z | x] = (x - mean) @ W, returned as (mean, W).

    sklearn's transform is this affine map (posterior mean of the fitted model); we read it off exactly from
    the transform of the origin and the unit vectors."""
    model = FactorAnalysis(n_components=r, random_state=seed).fit(unlabeled)
    d = unlabeled.shape[1]
    at_zero = model.transform(np.zeros((1, d)))
    weights = model.transform(np.eye(d)) - at_zero
    return model.mean_, weights


def ols_on_features(x: np.ndarray, y: np.ndarray, mean: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, float]:
    """OLS of y on the features (x - mean) @ W (no intercept: y has mean zero), as an affine map of raw x."""
    fit = LinearRegression(fit_intercept=False).fit((x - mean) @ weights, y)
    coef = weights @ fit.coef_
    return coef, float(-mean @ coef)


def supervised(method: str, x: np.ndarray, y: np.ndarray, ridge_alphas: np.ndarray) -> tuple[np.ndarray, float]:
    """Labeled data only, on raw x: `ols` or `ridge_cv` (leave-one-out CV over the alphas); no intercept."""
    model = LinearRegression(fit_intercept=False) if method == "ols" else RidgeCV(ridge_alphas, fit_intercept=False)
    model.fit(x, y)
    return model.coef_, float(model.intercept_)


def ols_expected_excess(residual_variance: float, dim: int, n: int) -> float:
    """E[excess risk] of OLS without intercept, Gaussian design, n > dim + 1: sigma^2 dim / (n - dim - 1)."""
    return residual_variance * dim / (n - dim - 1)
