"""Predictors y ~ w^T x and their invariance residual, all on exact population covariances.

Invariance residual in environment e. A representation is invariant when the best model on top of it is the same in
every environment; for phi_w(x) = w^T x the best model in e is c_e phi_w, c_e = w^T Sigma_XY,e / w^T Sigma_XX,e w, and
    g_e(w) = w^T Sigma_XX,e w - w^T Sigma_XY,e = w^T Sigma_XX,e w (1 - c_e) = (1/2) d/dt R_e(t w) at t = 1
vanishes in every e exactly when that model is the identity everywhere (the IRMv1 form). eps-approximate invariance
is |g_e(w)| <= eps.
Risk in e:  R_e(w) = Sigma_YY,e - 2 w^T Sigma_XY,e + w^T Sigma_XX,e w.
"""

import numpy as np
from scipy.optimize import minimize


def residuals(w: np.ndarray, sxx: np.ndarray, sxy: np.ndarray) -> np.ndarray:
    """(E,) g_e(w)."""
    return np.einsum("i,eij,j->e", w, sxx, w) - sxy @ w


def risks(w: np.ndarray, sxx: np.ndarray, sxy: np.ndarray, syy: np.ndarray) -> np.ndarray:
    """(E,) R_e(w)."""
    return syy - 2 * sxy @ w + np.einsum("i,eij,j->e", w, sxx, w)


def pooled_erm(sxx: np.ndarray, sxy: np.ndarray) -> np.ndarray:
    """argmin_w mean_e R_e(w) = (mean Sigma_XX)^-1 mean Sigma_XY."""
    return np.linalg.solve(sxx.mean(0), sxy.mean(0))


def invariant_learner(sxx: np.ndarray, sxy: np.ndarray, syy: np.ndarray, eps: float, starts: list[np.ndarray],
                      feasibility_tol: float = 1e-7) -> np.ndarray:
    """argmin_w mean_e R_e(w) subject to |g_e(w)| <= eps on every training environment (SLSQP from each start;
    the lowest-risk feasible solution is kept; the first start must be feasible, e.g. the causal predictor)."""
    mean_xx, mean_xy = sxx.mean(0), sxy.mean(0)
    constraints = [
        {"type": "ineq", "fun": lambda w: eps - residuals(w, sxx, sxy),
         "jac": lambda w: -(2 * (sxx @ w) - sxy)},   # 2 (S w), not (2 S) w: no (E, p, p) copy per call
        {"type": "ineq", "fun": lambda w: eps + residuals(w, sxx, sxy),
         "jac": lambda w: 2 * (sxx @ w) - sxy},
    ]

    def pooled_risk(w: np.ndarray) -> float:  # mean_e R_e(w) without the constant mean Sigma_YY
        return w @ mean_xx @ w - 2 * mean_xy @ w

    def pooled_risk_gradient(w: np.ndarray) -> np.ndarray:
        return 2 * mean_xx @ w - 2 * mean_xy

    best, best_risk = starts[0], float(risks(starts[0], sxx, sxy, syy).mean())
    for start in starts:
        result = minimize(pooled_risk, start, jac=pooled_risk_gradient, method="SLSQP", constraints=constraints,
                          options={"maxiter": 200, "ftol": 1e-10})
        feasible = np.abs(residuals(result.x, sxx, sxy)).max() <= eps + feasibility_tol
        risk = float(risks(result.x, sxx, sxy, syy).mean())
        if feasible and risk < best_risk:
            best, best_risk = result.x, risk
    return best
