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


def log_rectify(x: torch.Tensor, threshold: float) -> torch.Tensor:
    """ReEig followed by LogEig in one eigendecomposition: log(max(s, threshold)) (both keep the eigenvectors,
    so the composite is a single eigen-function, and its divided differences are the product of the two)."""
    return eig_apply(x, lambda s: torch.log(s.clamp(min=threshold)), lambda s: (s > threshold).to(s.dtype) / s)


def spectral(p: torch.Tensor, *fns: Callable) -> list[torch.Tensor]:
    """U f(S) U^T for several f from ONE eigendecomposition of a point that carries no gradient (a batch or
    running statistic, which both official layers compute without gradient)."""
    with torch.no_grad():
        s, u = torch.linalg.eigh(sym(p))
        return [(u * fn(s).unsqueeze(-2)) @ u.transpose(-1, -2) for fn in fns]


def root_pair(p: torch.Tensor) -> list[torch.Tensor]:
    """P^1/2 and P^-1/2 of a constant point from one eigendecomposition."""
    return spectral(p, lambda s: torch.sqrt(s.clamp(min=TINY)), lambda s: s.clamp(min=TINY) ** -0.5)


def congruence(x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """a x a^T (a symmetric here: a x a)."""
    return a @ x @ a.transpose(-1, -2)


# ---- Bures-Wasserstein geometry ----

def bw_distance_sq_identity(x: torch.Tensor) -> torch.Tensor:
    """d^2(I, X) = n + tr X - 2 tr X^1/2, from the eigenvalues of X alone (no gradient: a batch statistic)."""
    with torch.no_grad():
        s = torch.linalg.eigvalsh(sym(x))
        return x.shape[-1] + s.sum(-1) - 2 * torch.sqrt(s.clamp(min=TINY)).sum(-1)


def bw_log(p: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Log_P(X) = (P X)^1/2 + (X P)^1/2 - 2 P, with (P X)^1/2 = P^1/2 (P^1/2 X P^1/2)^1/2 P^-1/2.
    P is a constant point (the batch or running mean, no gradient); X carries the gradient."""
    root, inv_root = root_pair(p)
    half = root @ sqrtm(congruence(x, root)) @ inv_root
    return half + half.transpose(-1, -2) - 2 * p


def lyapunov_eig(eig: tuple[torch.Tensor, torch.Tensor], v: torch.Tensor) -> torch.Tensor:
    """L with P L + L P = V, solved in the eigenbasis (s, u) of P: L_ij = V_ij / (p_i + p_j)."""
    s, u = eig
    inner = (u.transpose(-1, -2) @ v @ u) / (s.unsqueeze(-1) + s.unsqueeze(-2))
    return u @ inner @ u.transpose(-1, -2)


def lyapunov(p: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return lyapunov_eig(stable_eigh(p), v)


def bw_exp_eig(p: torch.Tensor, eig: tuple[torch.Tensor, torch.Tensor], v: torch.Tensor) -> torch.Tensor:
    """Exp_P(V) = P + V + L P L with P L + L P = V, given P's eigendecomposition."""
    lyap = lyapunov_eig(eig, v)
    return p + v + lyap @ p @ lyap


def bw_exp(p: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return bw_exp_eig(p, stable_eigh(p), v)


def bw_exp_identity(v: torch.Tensor) -> torch.Tensor:
    half = eye_like(v) + v / 2
    return half @ half


def bw_log_identity(x: torch.Tensor) -> torch.Tensor:
    return 2 * (sqrtm(x) - eye_like(x))


@torch.no_grad()
def bw_geodesic(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """gamma(t) = (1-t)^2 A + t^2 B + t(1-t) [(A B)^1/2 + (B A)^1/2] (the point Exp_A(t Log_A B));
    a running-statistic update, without gradient."""
    root, inv_root = root_pair(a)
    half = root @ spectral(congruence(b, root), lambda s: torch.sqrt(s.clamp(min=TINY)))[0] @ inv_root
    return (1 - t) ** 2 * a + t ** 2 * b + t * (1 - t) * (half + half.transpose(-1, -2))


def _rescale(eig: tuple[torch.Tensor, torch.Tensor], v: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    s, u = eig
    return u @ (scale * (u.transpose(-1, -2) @ v @ u)) @ u.transpose(-1, -2)


def transport_to_identity_eig(eig: tuple[torch.Tensor, torch.Tensor], v: torch.Tensor) -> torch.Tensor:
    """Map a tangent vector at P (eigendecomposition (s, u)) to the identity by scaling its entries in P's
    eigenbasis by sqrt(2 / (p_i + p_j)). This is an isometry of the BW inner products
    g_P(V, V) = 1/2 sum V_ij^2/(p_i+p_j) and g_I = 1/4 sum V_ij^2 (the official layer's transport; it is not
    the Levi-Civita parallel transport)."""
    s = eig[0]
    return _rescale(eig, v, torch.sqrt(2 / (s.unsqueeze(-1) + s.unsqueeze(-2))))


def transport_from_identity_eig(eig: tuple[torch.Tensor, torch.Tensor], v: torch.Tensor) -> torch.Tensor:
    """The inverse map: entries in P's eigenbasis scaled by sqrt((p_i + p_j) / 2)."""
    s = eig[0]
    return _rescale(eig, v, torch.sqrt((s.unsqueeze(-1) + s.unsqueeze(-2)) / 2))


def bw_transport_to_identity(p: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return transport_to_identity_eig(stable_eigh(p), v)


def bw_transport_from_identity(p: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return transport_from_identity_eig(stable_eigh(p), v)


@torch.no_grad()
def bw_barycenter(x: torch.Tensor, iterations: int) -> torch.Tensor:
    """Fixed point G <- G^-1/2 (mean_i (G^1/2 X_i G^1/2)^1/2)^2 G^-1/2 from the arithmetic mean (x: (N, n, n));
    a batch statistic, without gradient (as the official BaryGeom)."""
    g = x.mean(0)
    for _ in range(iterations):
        root, inv_root = root_pair(g)
        middle = spectral(congruence(x, root), lambda s: torch.sqrt(s.clamp(min=TINY)))[0].mean(0)
        g = congruence(middle @ middle, inv_root)
    return g


def bw_inner(p: torch.Tensor, v: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """g_P(V, W) = 1/2 tr(L_P[V] W), the BW metric at P."""
    return 0.5 * torch.diagonal(lyapunov(p, v) @ w, dim1=-2, dim2=-1).sum(-1)


# ---- affine-invariant geometry (SPDNetBN) ----

@torch.no_grad()
def ai_karcher_mean(x: torch.Tensor, iterations: int) -> torch.Tensor:
    """Karcher flow G <- G^1/2 exp(mean_i log(G^-1/2 X_i G^-1/2)) G^1/2 from the arithmetic mean; a batch
    statistic, without gradient."""
    g = x.mean(0)
    for _ in range(iterations):
        root, inv_root = root_pair(g)
        tangent = spectral(congruence(x, inv_root), lambda s: torch.log(s.clamp(min=TINY)))[0].mean(0)
        g = congruence(spectral(tangent, torch.exp)[0], root)
    return g


@torch.no_grad()
def ai_geodesic(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """A^1/2 (A^-1/2 B A^-1/2)^t A^1/2 (a running-statistic update, without gradient)."""
    root, inv_root = root_pair(a)
    return congruence(spectral(congruence(b, inv_root), lambda s: s.clamp(min=TINY) ** t)[0], root)
