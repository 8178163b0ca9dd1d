"""The function family indexed by gamma: g_gamma(x) = sin(2 pi (1 + 3 gamma) x) on a fixed grid of x in [-1, 1].

Every training step draws a batch of gamma ~ U(0, 1) and, for each gamma, a random subset of the grid points;
evaluation uses a fixed grid of gamma values and every point.
"""

import math

import torch


def target(gamma: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """g_gamma(x) for gamma (batch, 1) and x (batch, points): the frequency rises from 1 to 4 with gamma."""
    return torch.sin(2 * math.pi * (1 + 3 * gamma) * x)


def grid_points(count: int, device: str) -> torch.Tensor:
    return torch.linspace(-1.0, 1.0, count, device=device)


def training_batch(grid: torch.Tensor, gammas: int, points: int, seed: int) -> tuple[torch.Tensor, ...]:
    """(gamma, x, y) for one step: `gammas` values of gamma ~ U(0, 1), `points` grid points drawn without
    replacement for each."""
    generator = torch.Generator().manual_seed(seed)
    gamma = torch.rand(gammas, 1, generator=generator)
    chosen = torch.rand(gammas, grid.numel(), generator=generator).argsort(dim=1)[:, :points]
    gamma = gamma.to(device=grid.device, dtype=grid.dtype)
    x = grid[chosen.to(grid.device)]
    return gamma, x, target(gamma, x)


def evaluation_set(grid: torch.Tensor, gamma_values: list[float]) -> tuple[torch.Tensor, ...]:
    """(gamma, x, y) with every grid point for each evaluation gamma."""
    gamma = torch.tensor(gamma_values, dtype=grid.dtype, device=grid.device).unsqueeze(1)
    x = grid.expand(len(gamma_values), -1)
    return gamma, x, target(gamma, x)
