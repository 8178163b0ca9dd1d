"""Baselines: a PINN (tanh MLP, second derivatives by autograd, boundary-weighted loss) and second-order
finite differences on the same points (scipy.sparse)."""

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.linalg import spsolve
from torch import nn


class PINN(nn.Module):
    """u(x) = MLP(x), hidden layers of tanh units; the loss is mean residual^2 + weight * mean boundary gap^2."""

    def __init__(self, dimension: int, width: int, depth: int, generator: torch.Generator) -> None:
        super().__init__()
        sizes = [dimension, *[width] * depth, 1]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            linear = nn.Linear(a, b, dtype=torch.float64)
            nn.init.xavier_normal_(linear.weight, generator=generator)
            nn.init.zeros_(linear.bias)
            layers += [linear] + ([nn.Tanh()] if i < len(sizes) - 2 else [])
        self.net = nn.Sequential(*layers)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        return self.net(points).squeeze(-1)


def laplacian(model: nn.Module, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """u and sum_i d^2 u / dx_i^2 at the points (autograd, graph kept for training)."""
    points = points.requires_grad_(True)
    u = model(points)
    (grad,) = torch.autograd.grad(u.sum(), points, create_graph=True)
    total = torch.zeros_like(u)
    for i in range(points.shape[1]):
        (second,) = torch.autograd.grad(grad[:, i].sum(), points, create_graph=True)
        total = total + second[:, i]
    return u, total


def pinn_loss(model: nn.Module, interior: torch.Tensor, source: torch.Tensor, boundary_points: torch.Tensor,
              boundary_values: torch.Tensor, allen_cahn: bool, boundary_weight: float) -> torch.Tensor:
    u, lap = laplacian(model, interior.clone())
    residual = lap - source + (u * (u ** 2 - 1) if allen_cahn else 0.0)
    return (residual ** 2).mean() + boundary_weight * ((model(boundary_points) - boundary_values) ** 2).mean()


def second_difference(n: int, step: float) -> sp.csr_matrix:
    """The (n - 2) x (n - 2) interior matrix of u'' ~ (u_{i-1} - 2 u_i + u_{i+1}) / h^2."""
    return sp.diags([1.0, -2.0, 1.0], [-1, 0, 1], shape=(n - 2, n - 2), format="csr") / step ** 2


def finite_difference_poisson_1d(x: np.ndarray, source: np.ndarray, left: float, right: float) -> np.ndarray:
    """u'' = f with u(x_0) = left, u(x_end) = right, on the uniform grid x."""
    step = x[1] - x[0]
    rhs = source[1:-1].copy()
    rhs[0] -= left / step ** 2
    rhs[-1] -= right / step ** 2
    return np.concatenate([[left], spsolve(second_difference(len(x), step).tocsc(), rhs), [right]])


def finite_difference_poisson_2d(x: np.ndarray, y: np.ndarray, source: np.ndarray, boundary: np.ndarray
                                 ) -> np.ndarray:
    """u_xx + u_yy = f on the grid x (rows) by y (columns); boundary holds u on the grid with its edges set."""
    hx, hy = x[1] - x[0], y[1] - y[0]
    nx, ny = len(x) - 2, len(y) - 2
    operator = sp.kron(second_difference(len(x), hx), sp.eye(ny)) + sp.kron(sp.eye(nx), second_difference(len(y), hy))
    # Move the known edge values to the right-hand side: apply the 5-point stencil to the boundary-only field.
    edge = boundary.copy()
    edge[1:-1, 1:-1] = 0.0
    stencil = ((edge[:-2, 1:-1] + edge[2:, 1:-1]) / hx ** 2 + (edge[1:-1, :-2] + edge[1:-1, 2:]) / hy ** 2)
    rhs = (source[1:-1, 1:-1] - stencil).reshape(-1)
    u = boundary.copy()
    u[1:-1, 1:-1] = spsolve(operator.tocsc(), rhs).reshape(nx, ny)
    return u
