"""The global parametrisation of GL+(2, R) and SL(2, R) through the polar (Cartan) decomposition.

Every g in GL+(2) factors uniquely as g = P R with P = (g g^T)^{1/2} symmetric positive definite and R a
rotation (left polar decomposition). P = exp(X) for exactly one symmetric X, so (X, theta) -> exp(X) R(theta)
is a global chart of GL+(2) (X traceless <=> det g = 1: SL(2)). The group exponential is not surjective on
SL(2): diag(-2, -1/2) has no real logarithm in sl(2), yet the chart reaches it as exp(diag(log 2, -log 2))
R(pi). Matrices are torch tensors (..., 2, 2).
"""

import math

import torch


def rotation(theta: torch.Tensor) -> torch.Tensor:
    """R(theta) = [[cos, -sin], [sin, cos]], (...,) -> (..., 2, 2)."""
    cos, sin = torch.cos(theta), torch.sin(theta)
    return torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)


def angle(r: torch.Tensor) -> torch.Tensor:
    """The angle in (-pi, pi] of a rotation matrix."""
    return torch.atan2(r[..., 1, 0], r[..., 0, 0])


def symmetric_function(x: torch.Tensor, f) -> torch.Tensor:
    """f applied to the eigenvalues of a symmetric matrix (exp, log, sqrt, ...)."""
    values, vectors = torch.linalg.eigh(x)
    return (vectors * f(values).unsqueeze(-2)) @ vectors.transpose(-1, -2)


def traceless(x: torch.Tensor) -> torch.Tensor:
    """The deviator x - tr(x)/2 I: the sl(2) part of a 2x2 matrix."""
    trace = x.diagonal(dim1=-2, dim2=-1).sum(-1)
    return x - 0.5 * trace[..., None, None] * torch.eye(2, dtype=x.dtype, device=x.device)


def compose(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """The chart: exp(X) R(theta) for symmetric X (traceless X gives SL(2))."""
    return symmetric_function(x, torch.exp) @ rotation(theta)


def decompose(g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The inverse chart: X = 1/2 log(g g^T) and theta the angle of R = exp(-X) g."""
    x = symmetric_function(g @ g.transpose(-1, -2), lambda e: 0.5 * torch.log(e))
    r = symmetric_function(x, lambda e: torch.exp(-e)) @ g
    return x, angle(r)


def polar(g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Left polar factors g = P R (P symmetric positive definite, R a rotation)."""
    x, theta = decompose(g)
    return symmetric_function(x, torch.exp), rotation(theta)


def sample_sl2(count: int, spd_bound: float, rotation_bound: float, generator: torch.Generator,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """SL(2) elements as the reference samples them: a traceless symmetric X with Gaussian coordinates of
    variance ``spd_bound`` (log-normal SPD factor) and an angle uniform in [-pi b, pi b]."""
    coords = torch.randn(count, 2, generator=generator, dtype=dtype) * math.sqrt(spd_bound)
    scale = 1 / math.sqrt(2.0)  # the reference's orthonormal basis of traceless symmetric 2x2 matrices
    x = torch.zeros(count, 2, 2, dtype=dtype)
    x[:, 0, 0], x[:, 1, 1] = coords[:, 0] * scale, -coords[:, 0] * scale
    x[:, 0, 1] = x[:, 1, 0] = coords[:, 1] * scale
    theta = (2 * torch.rand(count, generator=generator, dtype=dtype) - 1) * math.pi * rotation_bound
    return compose(x, theta)
