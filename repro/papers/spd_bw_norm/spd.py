"""Matrix functions on SPD matrices with stable gradients, and the Bures-Wasserstein (BW) and
affine-invariant (AI) operations the normalisation layers need. Batches are (..., n, n) float64 tensors.

BW geometry (Bhatia et al.): d^2(A, B) = tr A + tr B - 2 tr (A^1/2 B A^1/2)^1/2;
Log_P(X) = (P X)^1/2 + (X P)^1/2 - 2 P; Exp_P(V) = P + V + L P L with P L + L P = V;
at the identity Exp_I(V) = (I + V/2)^2 and Log_I(X) = 2 (X^1/2 - I).
"""

from collections.abc import Callable

import torch


def sym(a: torch.Tensor) -> torch.Tensor:
    return (a + a.transpose(-1, -2)) / 2


def eye_like(a: torch.Tensor) -> torch.Tensor:
    return torch.eye(a.shape[-1], dtype=a.dtype, device=a.device).expand_as(a)


class _StableEigh(torch.autograd.Function):
    """eigh whose backward drops the eigenvector terms 1 / (s_j - s_i) of (nearly) equal eigenvalues, where
    torch's own backward returns NaN (the identity, a common bias and metric initialisation, is such a point).
    For functions of the matrix that are smooth there (transports, Lyapunov solves) those terms cancel."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, u = torch.linalg.eigh(x)
        ctx.save_for_backward(s, u)
        return s, u

    @staticmethod
    def backward(ctx, grad_s: torch.Tensor, grad_u: torch.Tensor) -> torch.Tensor:
        s, u = ctx.saved_tensors
        gap = s.unsqueeze(-2) - s.unsqueeze(-1)  # gap_ij = s_j - s_i
        close = gap.abs() <= 1e-10 * s.abs().amax(-1, keepdim=True).unsqueeze(-1).clamp(min=1e-300)
        inner = torch.zeros_like(gap)
        if grad_u is not None:
            rotation = u.transpose(-1, -2) @ grad_u
            rotation = (rotation - rotation.transpose(-1, -2)) / 2
            inner = torch.where(close, torch.zeros_like(gap), rotation / torch.where(close, torch.ones_like(gap), gap))
        if grad_s is not None:
            inner = inner + torch.diag_embed(grad_s)
        return sym(u @ inner @ u.transpose(-1, -2))


def stable_eigh(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return _StableEigh.apply(sym(x))


class _EigFunction(torch.autograd.Function):
    """U f(S) U^T with the Daleckii-Krein backward: the divided difference (f(s_i) - f(s_j)) / (s_i - s_j)
    is replaced by f'(s_i) when the two eigenvalues are (nearly) equal, where eigh's own backward divides by 0."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, fn: Callable, deriv: Callable) -> torch.Tensor:
        s, u = torch.linalg.eigh(sym(x))
        fs = fn(s)
        ctx.save_for_backward(u, s, fs, deriv(s))
        return (u * fs.unsqueeze(-2)) @ u.transpose(-1, -2)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        u, s, fs, dfs = ctx.saved_tensors
        gap = s.unsqueeze(-1) - s.unsqueeze(-2)
        close = gap.abs() <= 1e-10 * s.abs().amax(-1, keepdim=True).unsqueeze(-1).clamp(min=1e-300)
        ratio = (fs.unsqueeze(-1) - fs.unsqueeze(-2)) / torch.where(close, torch.ones_like(gap), gap)
        mean_deriv = (dfs.unsqueeze(-1) + dfs.unsqueeze(-2)) / 2
        kernel = torch.where(close, mean_deriv, ratio)
        inner = kernel * (u.transpose(-1, -2) @ sym(grad) @ u)
        return u @ inner @ u.transpose(-1, -2), None, None


def eig_apply(x: torch.Tensor, fn: Callable, deriv: Callable) -> torch.Tensor:
    return _EigFunction.apply(x, fn, deriv)


# Eigenvalues of products such as A^1/2 B A^1/2 can come out a rounding error below zero: clamp at TINY.
TINY = 1e-12


def sqrtm(x: torch.Tensor) -> torch.Tensor:
    return eig_apply(x, lambda s: torch.sqrt(s.clamp(min=TINY)), lambda s: 0.5 / torch.sqrt(s.clamp(min=TINY)))


def invsqrtm(x: torch.Tensor) -> torch.Tensor:
    return eig_apply(x, lambda s: s.clamp(min=TINY) ** -0.5, lambda s: -0.5 * s.clamp(min=TINY) ** -1.5)


def logm(x: torch.Tensor) -> torch.Tensor:
    return eig_apply(x, lambda s: torch.log(s.clamp(min=TINY)), lambda s: 1 / s.clamp(min=TINY))


def expm_sym(x: torch.Tensor) -> torch.Tensor:
    return eig_apply(x, torch.exp, torch.exp)


def powm(x: torch.Tensor, power: float) -> torch.Tensor:
    if power == 1.0:
        return x
    return eig_apply(x, lambda s: s.clamp(min=TINY) ** power, lambda s: power * s.clamp(min=TINY) ** (power - 1))


def rectify(x: torch.Tensor, threshold: float) -> torch.Tensor:
    """ReEig: eigenvalues below the threshold are raised to it (SPDNet's non-linearity)."""
    return eig_apply(x, lambda s: s.clamp(min=threshold), lambda s: (s > threshold).to(s.dtype))


def congruence(x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """a x a^T (a symmetric here: a x a)."""
    return a @ x @ a.transpose(-1, -2)


# ---- Bures-Wasserstein geometry ----

def bw_distance_sq(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    root = sqrtm(a)
    trace = torch.diagonal(sqrtm(congruence(b, root)), dim1=-2, dim2=-1).sum(-1)
    return torch.diagonal(a, dim1=-2, dim2=-1).sum(-1) + torch.diagonal(b, dim1=-2, dim2=-1).sum(-1) - 2 * trace


def bw_log(p: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Log_P(X) = (P X)^1/2 + (X P)^1/2 - 2 P, with (P X)^1/2 = P^1/2 (P^1/2 X P^1/2)^1/2 P^-1/2."""
    root, inv_root = sqrtm(p), invsqrtm(p)
    half = root @ sqrtm(congruence(x, root)) @ inv_root
    return half + half.transpose(-1, -2) - 2 * p


def lyapunov(p: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """L with P L + L P = V, solved in the eigenbasis of P: L_ij = V_ij / (p_i + p_j)."""
    s, u = stable_eigh(p)
    inner = (u.transpose(-1, -2) @ v @ u) / (s.unsqueeze(-1) + s.unsqueeze(-2))
    return u @ inner @ u.transpose(-1, -2)


def bw_exp(p: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Exp_P(V) = P + V + L P L with P L + L P = V."""
    lyap = lyapunov(p, v)
    return p + v + lyap @ p @ lyap


def bw_exp_identity(v: torch.Tensor) -> torch.Tensor:
    half = eye_like(v) + v / 2
    return half @ half


def bw_log_identity(x: torch.Tensor) -> torch.Tensor:
    return 2 * (sqrtm(x) - eye_like(x))


def bw_geodesic(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """gamma(t) = (1-t)^2 A + t^2 B + t(1-t) [(A B)^1/2 + (B A)^1/2] (the point Exp_A(t Log_A B))."""
    root, inv_root = sqrtm(a), invsqrtm(a)
    half = root @ sqrtm(congruence(b, root)) @ inv_root
    return (1 - t) ** 2 * a + t ** 2 * b + t * (1 - t) * (half + half.transpose(-1, -2))


def bw_transport_to_identity(p: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Map a tangent vector at P to the identity by scaling its entries in P's eigenbasis by
    sqrt(2 / (p_i + p_j)). This is an isometry of the BW inner products g_P(V, V) = 1/2 sum V_ij^2/(p_i+p_j)
    and g_I = 1/4 sum V_ij^2 (the official layer's transport; it is not the Levi-Civita parallel transport)."""
    s, u = stable_eigh(p)
    scale = torch.sqrt(2 / (s.unsqueeze(-1) + s.unsqueeze(-2)))
    return u @ (scale * (u.transpose(-1, -2) @ v @ u)) @ u.transpose(-1, -2)


def bw_transport_from_identity(p: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The inverse map: entries in P's eigenbasis scaled by sqrt((p_i + p_j) / 2)."""
    s, u = stable_eigh(p)
    scale = torch.sqrt((s.unsqueeze(-1) + s.unsqueeze(-2)) / 2)
    return u @ (scale * (u.transpose(-1, -2) @ v @ u)) @ u.transpose(-1, -2)


def bw_barycenter(x: torch.Tensor, iterations: int) -> torch.Tensor:
    """Fixed point G <- G^-1/2 (mean_i (G^1/2 X_i G^1/2)^1/2)^2 G^-1/2 from the arithmetic mean (x: (N, n, n))."""
    g = x.mean(0)
    for _ in range(iterations):
        root, inv_root = sqrtm(g), invsqrtm(g)
        middle = sqrtm(congruence(x, root)).mean(0)
        g = congruence(middle @ middle, inv_root)
    return g


def bw_inner(p: torch.Tensor, v: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """g_P(V, W) = 1/2 tr(L_P[V] W), the BW metric at P."""
    return 0.5 * torch.diagonal(lyapunov(p, v) @ w, dim1=-2, dim2=-1).sum(-1)


# ---- affine-invariant geometry (SPDNetBN) ----

def ai_karcher_mean(x: torch.Tensor, iterations: int) -> torch.Tensor:
    """Karcher flow G <- G^1/2 exp(mean_i log(G^-1/2 X_i G^-1/2)) G^1/2 from the arithmetic mean."""
    g = x.mean(0)
    for _ in range(iterations):
        root, inv_root = sqrtm(g), invsqrtm(g)
        g = congruence(expm_sym(logm(congruence(x, inv_root)).mean(0)), root)
    return g


def ai_geodesic(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """A^1/2 (A^-1/2 B A^-1/2)^t A^1/2."""
    root, inv_root = sqrtm(a), invsqrtm(a)
    return congruence(powm(congruence(b, inv_root), t), root)
