"""Predictors y ~ w^T x and their invariance residual, all on exact population covariances.

Invariance residual in environment e (IRM-style, the suite's convention; zero iff w is the best predictor
along its own direction in e):  g_e(w) = w^T Sigma_XX,e w - w^T Sigma_XY,e.
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
