"""The global parametrisation of GL+(2, R) and SL(2, R) through the polar (Cartan) decomposition.

Every g in GL+(2) factors uniquely as g = P R with P = (g g^T)^{1/2} symmetric positive definite and R a
rotation (left polar decomposition). P = exp(X) for exactly one symmetric X, so (X, theta) -> exp(X) R(theta)
is a global chart of GL+(2) (X traceless <=> det g = 1: SL(2)). The group exponential is not surjective on
SL(2): diag(-2, -1/2) has no real logarithm in sl(2), yet the chart reaches it as exp(diag(log 2, -log 2))
R(pi). Matrices are torch tensors (..., 2, 2).

The network needs three things from a group: pairs (g, g^-1) drawn from its sampler, the chart coordinates
xi^-1(h) of a group element (the input of the kernel network), and whether it preserves volume.
"""

import math

import torch

GROUPS = ("so2", "sl2", "gl2")
# Coordinates of xi^-1(h) fed to the kernel network: the rotation angle, plus the free entries of X.
COORDINATE_COUNT = {"so2": 1, "sl2": 3, "gl2": 4}


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


def symmetric_from_coordinates(coords: torch.Tensor, group: str) -> torch.Tensor:
    """The symmetric matrix with the given coordinates in the orthonormal basis of the trace metric
    <X, Y> = tr(X^T Y): sl2 (2 coordinates) uses {diag(1, -1), offdiag(1, 1)} / sqrt 2; gl2 (3 coordinates)
    uses {diag(1, 0), offdiag(1, 1) / sqrt 2, diag(0, 1)}."""
    x = torch.zeros(*coords.shape[:-1], 2, 2, dtype=coords.dtype, device=coords.device)
    s = 1 / math.sqrt(2.0)
    if group == "sl2":
        x[..., 0, 0], x[..., 1, 1] = coords[..., 0] * s, -coords[..., 0] * s
        x[..., 0, 1] = x[..., 1, 0] = coords[..., 1] * s
    else:
        x[..., 0, 0], x[..., 1, 1] = coords[..., 0], coords[..., 2]
        x[..., 0, 1] = x[..., 1, 0] = coords[..., 1] * s
    return x


def sample_pair(group: str, count: int, spd_variance: float, rotation_bound: float,
                device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` group elements g and their inverses, as the reference code samples them.

    so2: the cyclic rotations 2 pi k / count. sl2 and gl2: g = S^{1/2} R(theta) with S log-normal
    (S = exp(X), X's coordinates i.i.d. N(0, spd_variance), traceless for sl2) and theta on the equidistant grid
    linspace(-pi b, pi b, count) (b = rotation_bound; with b = 1 its two ends are the same rotation, as in the
    reference). Randomness comes from torch's global generator, which the framework seeds per unit.
    """
    if group == "so2":
        theta = torch.arange(count, device=device, dtype=torch.float32) * (2 * math.pi / count)
        return rotation(theta), rotation(-theta)
    bound = math.pi * rotation_bound
    theta = torch.linspace(-bound, bound, count, device=device)
    dim = 2 if group == "sl2" else 3
    coords = torch.randn(count, dim, device=device) * math.sqrt(spd_variance)
    half_log = 0.5 * symmetric_from_coordinates(coords, group)  # log S^{1/2}
    g = symmetric_function(half_log, torch.exp) @ rotation(theta)
    g_inverse = rotation(-theta) @ symmetric_function(-half_log, torch.exp)
    return g, g_inverse


def chart_coordinates(h: torch.Tensor, group: str) -> torch.Tensor:
    """xi^-1(h): the coordinates of h = exp(X) R(theta) that the kernel network reads, (..., 2, 2) -> (..., d).

    theta is taken in [0, 2 pi) as in the reference (a sine below 1e-6 is read as 0, so that h = I gives 0, not
    2 pi). sl2: (sqrt 2 X01, theta, sqrt 2 X00); gl2: (X00, sqrt 2 X01, X11, theta); so2: theta.
    """
    if group == "so2":
        x, r = None, h
    else:
        x, _ = decompose(h)
        r = symmetric_function(x, lambda e: torch.exp(-e)) @ h
    sin = torch.where(r[..., 1, 0].abs() < 1e-6, torch.zeros_like(r[..., 1, 0]), r[..., 1, 0])
    theta = torch.remainder(torch.atan2(sin, r[..., 0, 0]), 2 * math.pi)
    if group == "so2":
        return theta[..., None]
    s = math.sqrt(2.0)
    if group == "sl2":
        return torch.stack([s * x[..., 0, 1], theta, s * x[..., 0, 0]], -1)
    return torch.stack([x[..., 0, 0], s * x[..., 0, 1], x[..., 1, 1], theta], -1)
