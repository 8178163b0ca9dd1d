"""Samplers of the Coulomb gas with weight exp(-beta E): in d = 2, E(z) = -sum_(i<j) log|z_i - z_j| +
(N/2) sum_i |z_i|^2, and beta = 2 is the complex Ginibre ensemble (entries of variance 1/N); MALA chains for any d
and beta (phi_d(r) = r^(2-d) / (d-2) for d >= 3). The droplet is the unit ball for every d and beta."""

import math

import numpy as np
import torch


def ginibre_eigenvalues(n: int, batch: int, generator: torch.Generator, device: str = "cpu") -> torch.Tensor:
    """Eigenvalues (batch, n) of n x n matrices with i.i.d. complex entries, real and imaginary parts N(0, 1/(2n)),
    on `device` (the generator's device)."""
    shape = (batch, n, n)
    real = torch.randn(shape, generator=generator, dtype=torch.float64, device=device)
    imag = torch.randn(shape, generator=generator, dtype=torch.float64, device=device)
    return torch.linalg.eigvals(torch.complex(real, imag) / math.sqrt(2 * n))


def kostlan_squared_radii(n: int, batch: int, rng: np.random.Generator) -> np.ndarray:
    """|z|^2 of the Ginibre eigenvalues in law (Kostlan): Gamma(k, 1) / n, k = 1..n, shape (batch, n)."""
    return rng.gamma(np.arange(1, n + 1), size=(batch, n)) / n


def coulomb_energy_and_gradient(x: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """U = beta E(x) per chain and dU/dx for positions x of shape (chains, n, d): the d-dimensional Coulomb gas
    E = sum_(i<j) phi_d(|x_i - x_j|) + (n/2) sum_i |x_i|^2 with phi_2(r) = -log r and phi_d(r) = r^(2-d) / (d-2)
    for d >= 3 (so that -phi_d'(r) = r^(1-d), Gauss's law; the equilibrium droplet is the unit ball in every d)."""
    n, d = x.shape[-2], x.shape[-1]
    diff = x[:, :, None, :] - x[:, None, :, :]
    distance2 = (diff**2).sum(dim=-1)
    eye = torch.eye(n, dtype=torch.bool, device=x.device)
    distance2 = distance2.masked_fill(eye, 1.0)
    if d == 2:
        phi = -0.5 * torch.log(distance2)
    else:
        phi = distance2 ** ((2 - d) / 2) / (d - 2)
    pair = 0.5 * phi.masked_fill(eye, 0.0).sum(dim=(1, 2))                        # sum over i < j
    trap = 0.5 * n * (x**2).sum(dim=(1, 2))
    inverse = (distance2 ** (-d / 2)).masked_fill(eye, 0.0)                      # phi_d'(r) / r = -r^(-d)
    force = (diff * inverse[..., None]).sum(dim=2)                               # sum_j (x_i - x_j) / |x_i - x_j|^d
    return beta * (pair + trap), beta * (-force + n * x)


def uniform_ball(chains: int, n: int, d: int, generator: torch.Generator, device: str = "cpu") -> torch.Tensor:
    """n points per chain uniform in the unit ball of R^d (the equilibrium droplet): shape (chains, n, d)."""
    direction = torch.randn(chains, n, d, generator=generator, dtype=torch.float64, device=device)
    direction = direction / direction.norm(dim=-1, keepdim=True)
    radius = torch.rand(chains, n, 1, generator=generator, dtype=torch.float64, device=device) ** (1 / d)
    return direction * radius


def tamed_drift(grad: torch.Tensor, tau: float) -> torch.Tensor:
    """The Langevin drift tau grad, tamed per particle to a length below 1 (the droplet radius): tau g / (1 + tau |g|).
    A close pair's huge force then cannot throw a proposal out of the droplet (a chain would stick); the proposal is
    still a Gaussian around a function of the current state, so the Metropolis step keeps the chain exact in law
    (MALTA, Roberts and Tweedie 1996)."""
    step = tau * grad
    return step / (1 + step.norm(dim=-1, keepdim=True))


def mala_power_sums(n: int, d: int, beta: float, powers: int, chains: int, burn_in: int, steps: int, thin: int,
                    generator: torch.Generator, device: str = "cpu") -> np.ndarray:
    """Metropolis-adjusted (tamed) Langevin chains on R^(n d) for the density exp(-beta E) (exact in law: the Metropolis
    step corrects the Langevin discretisation). Returns, every `thin` steps after burn-in, the power sums
    S_k = sum_i |x_i|^(2k), k = 1..powers, of each chain: shape (steps // thin, chains, powers); any linear statistic
    with g(u) = f(sqrt(u)) a polynomial of degree <= powers is a combination of them. Chains start uniform in the
    droplet; the step size adapts during burn-in only (towards acceptance 0.57), so the recorded chain is a fixed
    Metropolis kernel. Chains run on `device` (the generator's device)."""
    x = uniform_ball(chains, n, d, generator, device)
    u, grad = coulomb_energy_and_gradient(x, beta)
    tau = 0.1 / (beta * n)
    drift = tamed_drift(grad, tau)
    exponents = torch.arange(1, powers + 1, dtype=torch.float64, device=device)
    records = []
    for step in range(burn_in + steps):
        noise = torch.randn(x.shape, generator=generator, dtype=torch.float64, device=device)
        proposal = x - drift + math.sqrt(2 * tau) * noise
        u_new, grad_new = coulomb_energy_and_gradient(proposal, beta)
        drift_new = tamed_drift(grad_new, tau)
        forward = ((proposal - x + drift) ** 2).sum(dim=(1, 2))                  # -4 tau log q(proposal | x)
        backward = ((x - proposal + drift_new) ** 2).sum(dim=(1, 2))             # -4 tau log q(x | proposal)
        log_accept = u - u_new - (backward - forward) / (4 * tau)
        accept = torch.log(torch.rand(chains, generator=generator, dtype=torch.float64, device=device)) < log_accept
        x = torch.where(accept[:, None, None], proposal, x)
        u = torch.where(accept, u_new, u)
        grad = torch.where(accept[:, None, None], grad_new, grad)
        if step < burn_in and step % 20 == 19:
            tau *= 1.2 if accept.double().mean() > 0.57 else 0.8
        drift = tamed_drift(grad, tau)
        if step >= burn_in and (step - burn_in) % thin == 0:
            squared = (x**2).sum(dim=-1)                                         # |x_i|^2, (chains, n)
            records.append((squared[..., None] ** exponents).sum(dim=1))
    return torch.stack(records).cpu().numpy()
