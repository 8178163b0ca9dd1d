"""The GP solver: u at the collocation points and the kernel parameters are learned jointly by maximising
the log joint probability (Adam on its negative), as the official JAX code does:

  -log p = 1/2 logdet K + 1/2 u^T K^-1 u
           + lambda_b [tau/2 sum_b (u_b - g_b)^2 - N_b/2 log tau] + v/2 sum_c r_c^2 - N_c/2 log v

with the equation residual r = u_xx (+ u_yy) [+ u (u^2 - 1) for Allen-Cahn] - f, and u_xx = K_xx K^-1 u the GP
conditional mean of the second derivative. On a 2-D grid with a product kernel K = K1 (x) K2, so every solve,
log-determinant and derivative needs only the per-axis N1 x N1 and N2 x N2 factors (Kronecker algebra).
"""

import torch
from torch import nn

from repro.papers.gp_hm.kernels import initial_parameters, kernel_and_second_derivative


def grid_matrices(kind: str, params: dict[str, torch.Tensor], x: torch.Tensor, jitter: float
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """K (with jitter) and K_xx on a uniform 1-D grid x: both are Toeplitz, so the kernel is evaluated on the
    2N - 1 lags only and gathered into N x N matrices (the same values as evaluating every pair)."""
    n = x.numel()
    step = x[1] - x[0]
    lags = torch.arange(-(n - 1), n, dtype=x.dtype, device=x.device) * step
    k, kxx = kernel_and_second_derivative(kind, lags, params)
    index = torch.arange(n, device=x.device)
    index = index.unsqueeze(1) - index.unsqueeze(0) + (n - 1)
    eye = torch.eye(n, dtype=x.dtype, device=x.device)
    return k[index] + jitter * eye, kxx[index]


def solve_and_logdet(matrix: torch.Tensor, rhs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """matrix^-1 rhs and log|det matrix| (solve and slogdet, as the official code; no Cholesky, which fails when
    the jittered K loses definiteness in rounding)."""
    return torch.linalg.solve(matrix, rhs), torch.linalg.slogdet(matrix)[1]


def gaussian_terms(gap_sq: torch.Tensor, count: int, log_precision: torch.Tensor) -> torch.Tensor:
    """-log N(gap | 0, 1/precision) up to a constant: precision/2 * sum gap^2 - count/2 * log precision."""
    return 0.5 * torch.exp(log_precision) * gap_sq - 0.5 * count * log_precision


class KernelParameters(nn.Module):
    def __init__(self, kind: str, components: int, freq_scale: float, device: str) -> None:
        super().__init__()
        self.kind = kind
        init = initial_parameters(kind, components, freq_scale, torch.float64, device)
        self.values = nn.ParameterDict({name: nn.Parameter(value) for name, value in init.items()})

    def as_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.values.items())


class GPSolver1D(nn.Module):
    """u'' [+ u (u^2 - 1)] = f on a uniform 1-D grid with Dirichlet values at both ends."""

    def __init__(self, kind: str, x: torch.Tensor, source: torch.Tensor, boundary: torch.Tensor, allen_cahn: bool,
                 components: int, freq_scale: float, jitter: float, boundary_weight: float) -> None:
        super().__init__()
        self.kernel = KernelParameters(kind, components, freq_scale, x.device.type)
        self.u = nn.Parameter(torch.zeros_like(x))
        self.log_tau = nn.Parameter(torch.zeros((), dtype=x.dtype, device=x.device))
        self.log_v = nn.Parameter(torch.zeros((), dtype=x.dtype, device=x.device))
        self.register_buffer("x", x)
        self.register_buffer("source", source)
        self.register_buffer("boundary", boundary)
        self.allen_cahn, self.jitter, self.boundary_weight = allen_cahn, jitter, boundary_weight

    def negative_log_joint(self) -> torch.Tensor:
        k, kxx = grid_matrices(self.kernel.kind, self.kernel.as_dict(), self.x, self.jitter)
        k_inv_u, logdet = solve_and_logdet(k, self.u.unsqueeze(1))
        u_xx = (kxx @ k_inv_u).squeeze(1)
        residual = u_xx - self.source + (self.u * (self.u ** 2 - 1) if self.allen_cahn else 0.0)
        ends = torch.stack([self.u[0], self.u[-1]])
        prior = 0.5 * logdet + 0.5 * (self.u * k_inv_u.squeeze(1)).sum()
        boundary = gaussian_terms(((ends - self.boundary) ** 2).sum(), 2, self.log_tau)
        equation = gaussian_terms((residual ** 2).sum(), self.u.numel(), self.log_v)
        return prior + self.boundary_weight * boundary + equation

    def predict(self, x_test: torch.Tensor) -> torch.Tensor:
        """The GP conditional mean k(x*, X) K^-1 u."""
        k, _ = grid_matrices(self.kernel.kind, self.kernel.as_dict(), self.x, self.jitter)
        cross, _ = kernel_and_second_derivative(self.kernel.kind, x_test.unsqueeze(1) - self.x.unsqueeze(0),
                                                self.kernel.as_dict())
        return cross @ torch.linalg.solve(k, self.u)


class GPSolver2D(nn.Module):
    """Laplacian u [+ u (u^2 - 1)] = f on an N1 x N2 grid with Dirichlet values on its four edges, one product
    kernel k1(x) k2(y) (each its own spectral mixture), solved with Kronecker algebra or, for the timing
    comparison, with the dense N1 N2 x N1 N2 covariance."""

    def __init__(self, kind: str, x: torch.Tensor, y: torch.Tensor, source: torch.Tensor, boundary: torch.Tensor,
                 allen_cahn: bool, components: int, freq_scale: float, jitter: float, boundary_weight: float) -> None:
        super().__init__()
        self.kernel_x = KernelParameters(kind, components, freq_scale, x.device.type)
        self.kernel_y = KernelParameters(kind, components, freq_scale, x.device.type)
        self.u = nn.Parameter(torch.zeros(x.numel(), y.numel(), dtype=x.dtype, device=x.device))
        self.log_tau = nn.Parameter(torch.zeros((), dtype=x.dtype, device=x.device))
        self.log_v = nn.Parameter(torch.zeros((), dtype=x.dtype, device=x.device))
        for name, value in (("x", x), ("y", y), ("source", source), ("boundary", boundary)):
            self.register_buffer(name, value)
        self.allen_cahn, self.jitter, self.boundary_weight = allen_cahn, jitter, boundary_weight

    def axis_matrices(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        k1, k1xx = grid_matrices(self.kernel_x.kind, self.kernel_x.as_dict(), self.x, self.jitter)
        k2, k2yy = grid_matrices(self.kernel_y.kind, self.kernel_y.as_dict(), self.y, self.jitter)
        return k1, k1xx, k2, k2yy

    def edges(self, u: torch.Tensor) -> torch.Tensor:
        return torch.cat([u[0, :], u[-1, :], u[:, 0], u[:, -1]])

    def likelihood_terms(self, u: torch.Tensor, laplacian: torch.Tensor) -> torch.Tensor:
        residual = laplacian - self.source + (u * (u ** 2 - 1) if self.allen_cahn else 0.0)
        boundary = gaussian_terms(((self.edges(u) - self.boundary) ** 2).sum(), self.boundary.numel(), self.log_tau)
        return self.boundary_weight * boundary + gaussian_terms((residual ** 2).sum(), u.numel(), self.log_v)

    def negative_log_joint(self) -> torch.Tensor:
        """(K1 (x) K2)^-1 vec U = vec(K1^-1 U K2^-1); logdet(K1 (x) K2) = N2 logdet K1 + N1 logdet K2;
        U_xx = K1xx K1^-1 U and U_yy = U K2^-1 K2yy^T (K2yy acts on the second index)."""
        k1, k1xx, k2, k2yy = self.axis_matrices()
        n1, n2 = self.u.shape
        k1_inv_u, logdet1 = solve_and_logdet(k1, self.u)
        k2_inv_ut, logdet2 = solve_and_logdet(k2, self.u.T)
        u_xx = k1xx @ k1_inv_u
        u_yy = (k2yy @ k2_inv_ut).T
        whitened = torch.linalg.solve(k2, k1_inv_u.T).T  # K1^-1 U K2^-1
        prior = 0.5 * (n2 * logdet1 + n1 * logdet2) + 0.5 * (self.u * whitened).sum()
        return prior + self.likelihood_terms(self.u, u_xx + u_yy)

    def negative_log_joint_dense(self) -> torch.Tensor:
        """The same objective with the full (N1 N2)^2 covariance, without the Kronecker structure."""
        k1, k1xx, k2, k2yy = self.axis_matrices()
        n1, n2 = self.u.shape
        u = self.u.reshape(-1, 1)
        k_inv_u, logdet = solve_and_logdet(torch.kron(k1, k2), u)
        laplacian = (torch.kron(k1xx, k2) @ k_inv_u + torch.kron(k1, k2yy) @ k_inv_u).reshape(n1, n2)
        return 0.5 * logdet + 0.5 * (u * k_inv_u).sum() + self.likelihood_terms(self.u, laplacian)

    def predict(self, x_test: torch.Tensor, y_test: torch.Tensor) -> torch.Tensor:
        """k1(x*, X) K1^-1 U K2^-1 k2(Y, y*)."""
        k1, _, k2, _ = self.axis_matrices()
        cross_x, _ = kernel_and_second_derivative(self.kernel_x.kind, x_test.unsqueeze(1) - self.x.unsqueeze(0),
                                                  self.kernel_x.as_dict())
        cross_y, _ = kernel_and_second_derivative(self.kernel_y.kind, y_test.unsqueeze(1) - self.y.unsqueeze(0),
                                                  self.kernel_y.as_dict())
        whitened = torch.linalg.solve(k2, torch.linalg.solve(k1, self.u).T).T
        return cross_x @ whitened @ cross_y.T
