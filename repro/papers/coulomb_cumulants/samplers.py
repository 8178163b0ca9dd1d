"""Samplers of the 2-D Coulomb gas with energy E(z) = -sum_(i<j) log|z_i - z_j| + (N/2) sum_i |z_i|^2 and weight
exp(-beta E): beta = 2 is the complex Ginibre ensemble (entries of variance 1/N), droplet = unit disk for every beta."""

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


def coulomb_energy_and_gradient(z: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """U = beta E(z) per chain (chains, n) and dU/d(Re z) + i dU/d(Im z)."""
    n = z.shape[-1]
    diff = z[:, :, None] - z[:, None, :]
    distance2 = diff.real**2 + diff.imag**2
    eye = torch.eye(n, dtype=torch.bool, device=z.device)
    distance2 = distance2.masked_fill(eye, 1.0)
    pair = -0.25 * torch.log(distance2).masked_fill(eye, 0.0).sum(dim=(1, 2))     # -sum_(i<j) log|z_i - z_j|
    trap = 0.5 * n * (z.real**2 + z.imag**2).sum(dim=1)
    force = (diff / distance2).masked_fill(eye, 0.0).sum(dim=2)                  # sum_j (z_i - z_j) / |z_i - z_j|^2
    return beta * (pair + trap), beta * (-force + n * z)


def mala_linear_statistic(n: int, beta: float, chains: int, burn_in: int, steps: int, thin: int,
                          generator: torch.Generator, device: str = "cpu") -> np.ndarray:
    """Metropolis-adjusted Langevin chains on C^n for exp(-beta E); returns sum_i |z_i|^2 every `thin` steps after
    burn-in, shape (steps // thin, chains). The step size adapts during burn-in towards acceptance 0.57. Chains run on
    `device` (the generator's device)."""
    z = ginibre_eigenvalues(n, chains, generator, device)   # beta = 2 equilibrium: the same droplet for every beta
    u, grad = coulomb_energy_and_gradient(z, beta)
    tau = 0.1 / (beta * n)
    records = []
    for step in range(burn_in + steps):
        noise = torch.complex(torch.randn(chains, n, generator=generator, dtype=torch.float64, device=device),
                              torch.randn(chains, n, generator=generator, dtype=torch.float64, device=device))
        proposal = z - tau * grad + math.sqrt(2 * tau) * noise
        u_new, grad_new = coulomb_energy_and_gradient(proposal, beta)
        forward = (proposal - z + tau * grad).abs().pow(2).sum(dim=1)
        backward = (z - proposal + tau * grad_new).abs().pow(2).sum(dim=1)
        log_accept = u - u_new - (backward - forward) / (4 * tau)
        accept = torch.log(torch.rand(chains, generator=generator, dtype=torch.float64, device=device)) < log_accept
        z = torch.where(accept[:, None], proposal, z)
        u = torch.where(accept, u_new, u)
        grad = torch.where(accept[:, None], grad_new, grad)
        if step < burn_in and step % 20 == 19:
            tau *= 1.2 if accept.double().mean() > 0.57 else 0.8
        if step >= burn_in and (step - burn_in) % thin == 0:
            records.append((z.real**2 + z.imag**2).sum(dim=1))
    return torch.stack(records).cpu().numpy()
