"""Local learning coefficient by SGLD (Lau et al.; devinterp's estimator, written out here).

Behavioural loss L_B(theta) = (1/n) sum_x ||f_theta(x) - f_theta*(x)||^2, minimised (= 0) at theta*.
Localised SGLD at inverse temperature n beta (beta = 1 / log n):
    theta <- theta - (eps / 2) (n beta grad L_B(theta) + gamma (theta - theta*)) + N(0, eps I),
    lambda_hat = n beta (E_chain[L_B] - L_B(theta*)).
"""

from collections.abc import Callable

import numpy as np
import torch


def estimate_llc(loss: Callable[[torch.Tensor], torch.Tensor], theta_star: torch.Tensor, n: int, eps: float,
                 gamma: float, steps: int, burn_in: int, chains: int, generator: torch.Generator) -> float:
    n_beta = n / np.log(n)
    base = float(loss(theta_star))
    draws = []
    for _ in range(chains):
        theta = theta_star.clone()
        for step in range(steps):
            theta.requires_grad_(True)
            value = loss(theta)
            (grad,) = torch.autograd.grad(value, theta)
            with torch.no_grad():
                noise = torch.randn(theta.shape, generator=generator, dtype=theta.dtype)
                theta = theta - eps / 2 * (n_beta * grad + gamma * (theta - theta_star)) + np.sqrt(eps) * noise
            if step >= burn_in:
                draws.append(value.item())
    return float(n_beta * (np.mean(draws) - base))


def localized_quadratic_llc(hessian_eigenvalues: np.ndarray, n: int, gamma: float) -> float:
    """What the estimator returns at equilibrium if L_B = delta^T H delta exactly: each eigen-direction h adds
    n beta h / (2 (n beta h + gamma / 2)), i.e. 1/2 when n beta h >> gamma and ~0 when the localisation dominates."""
    n_beta = n / np.log(n)
    h = np.clip(hessian_eigenvalues, 0, None)
    return float(np.sum(n_beta * h / (2 * (n_beta * h + gamma / 2))))


def sgld_quadratic_expectation(hessian_eigenvalues: np.ndarray, n: int, eps: float, gamma: float,
                               steps: int | None = None, burn_in: int = 0) -> float:
    """E[lambda_hat] of `estimate_llc`'s chain when L_B(theta* + delta) = delta^T H delta exactly (the localised
    quadratic). Along an eigen-direction h the chain is AR(1) started at delta_0 = 0:
        delta_{t+1} = a delta_t + sqrt(eps) xi,  a = 1 - eps (n beta h + gamma / 2),
        Var delta_t = eps (1 - a^{2t}) / (1 - a^2),
    and lambda_hat averages n beta sum_h h Var delta_t over the draws t = burn_in .. steps - 1. With steps=None it is
    the chain's stationary value n beta sum_h h eps / (1 - a^2), which a finite chain is calibrated against."""
    n_beta = n / np.log(n)
    h = np.clip(hessian_eigenvalues, 0, None)
    a = 1 - eps * (n_beta * h + gamma / 2)
    stationary = eps / (1 - a**2)
    if steps is None:
        return float(n_beta * h @ stationary)
    draws = steps - burn_in
    # mean over t in [burn_in, steps) of a^{2t} = a^{2 burn_in} (1 - a^{2 draws}) / ((1 - a^2) draws)
    mean_decay = a ** (2 * burn_in) * (1 - a ** (2 * draws)) / ((1 - a**2) * draws)
    return float(n_beta * h @ (stationary * (1 - mean_decay)))
