"""S4 layers with a HiPPO (or random) state matrix in NPLR form, kernels by the Woodbury generating function.

Per layer and channel h (H channels, state size N, sequence length L):

    A = Lambda - P^* Q  (diagonal plus rank r, Q = P for HiPPO), x' = A x + B u, y = C x + D u,
    bilinear step Delta_h = exp(log_dt_h).

The length-L kernel K_l = C~ Abar^l Bbar (C~ = C (I - Abar^L), learned directly as in S4) is read off
its generating function at the roots of unity z_k = exp(-2 pi i k / L):

    Khat(z) = 2 [ r_CB - (1 + z) r_CP (I + (1 + z) r_QP)^-1 r_QB ],
    r_ab(z) = sum_n a_n b_n / ((2 / Delta)(1 - z) - Lambda_n (1 + z))      (Cauchy sums),

which is S4's 2/(1+z) [k_00 - k_01 (1 + k_11)^-1 k_10] multiplied through by (1 + z) so that z = -1 is
not singular. The kernel is Re ifft(Khat) over all L roots (C~ is complex, so Khat is not Hermitian), and
the layer's output an FFT convolution (causal, zero-padded). All N modes are kept, so the kernel is the
real part of a sum over them (no conjugate-pair halving, which is fragile at repeated eigenvalues).
The kernel is linear in C~ (K = Re C~ phi); with A, B, Delta frozen (`train_ssm: false`, the cpu-scale
budget) phi is computed once and only C~, D and the linear maps train.
"""

import math

import numpy as np
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from repro.papers.hippo.hippo import MEASURES, nplr

INITS = (*MEASURES, "random")


def initial_nplr(init: str, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Lambda (N,), P (r, N), B (N,)) in the diagonal basis, complex.

    `random`: A with i.i.d. N(0, 1) / N entries and B ~ N(0, 1), diagonalised directly (P = 0); a generic
    A is well conditioned, unlike LegS.
    """
    if init in MEASURES:
        lam, p, b, _ = nplr(init, n)
        return lam, p, b
    if init == "random":
        a = rng.standard_normal((n, n)) / n
        lam, v = np.linalg.eig(a)
        return lam, np.zeros((1, n), complex), np.linalg.solve(v, rng.standard_normal(n))
    raise ValueError(f"unknown init {init!r}; choose from {INITS}")


def _complex_parameter(value: np.ndarray) -> nn.Parameter:
    return nn.Parameter(torch.view_as_real(torch.as_tensor(value, dtype=torch.complex128)).clone())


class S4Kernel(nn.Module):
    """Learnable NPLR SSM kernel for H channels: forward(L) -> K, shape (H, L), float64."""

    def __init__(self, channels: int, n: int, init: str, dt_range: tuple[float, float],
                 rng: np.random.Generator, trainable: bool = True, chunk: int = 1024) -> None:
        super().__init__()
        self.trainable, self.frozen, self.chunk = trainable, None, chunk
        lam, p, b = initial_nplr(init, n, rng)
        # Re Lambda = -exp(log_neg_re) < 0, started at -max(|Re Lambda|, 1e-4) as in S4: LegT and FouT have
        # Re Lambda = 0 exactly, which makes the Cauchy sums singular at z = 1; random A's unstable
        # eigenvalues are reflected into the left half-plane (the baseline is made stable, not weaker).
        self.log_neg_re = nn.Parameter(torch.as_tensor(np.log(np.maximum(np.abs(lam.real), 1e-4))))
        self.lam_im = nn.Parameter(torch.as_tensor(lam.imag, dtype=torch.float64))   # (N,): shared by channels
        self.p = _complex_parameter(p)                           # (r, N, 2)
        self.b = _complex_parameter(b)                           # (N, 2)
        c = (rng.standard_normal((channels, n)) + 1j * rng.standard_normal((channels, n))) * math.sqrt(0.5)
        self.c = _complex_parameter(c)                           # (H, N, 2): C~ directly
        log_lo, log_hi = math.log(dt_range[0]), math.log(dt_range[1])
        self.log_dt = nn.Parameter(torch.as_tensor(rng.uniform(log_lo, log_hi, channels), dtype=torch.float64))
        for parameter in (self.log_neg_re, self.lam_im, self.p, self.b, self.log_dt):
            parameter.requires_grad_(trainable)

    def diagonal(self) -> torch.Tensor:
        """Lambda, shape (N,), complex."""
        return torch.complex(-self.log_neg_re.exp(), self.lam_im)

    def generating_function(self, z: torch.Tensor) -> torch.Tensor:
        """w (H, K, N), complex: per-mode terms of Khat at the K points z, Khat(z) = sum_n C~_n w_n(z).

        w_n(z) = 2 [R_n B_n - (1 + z) R_n sum_j P_jn s_j(z)], s = (I + (1 + z) r_QP)^-1 r_QB.
        """
        lam = self.diagonal()
        p, b = torch.view_as_complex(self.p), torch.view_as_complex(self.b)
        dt = self.log_dt.exp()[:, None, None]                                  # (H, 1, 1)
        one_plus_z = (1 + z)[None, :, None]
        r = 1 / ((2 / dt) * (1 - z)[None, :, None] - lam * one_plus_z)          # (H, K, N)
        r_qp = torch.einsum("in,hkn,jn->hkij", p.conj(), r, p)                  # (H, K, r, r)
        r_qb = torch.einsum("in,hkn,n->hki", p.conj(), r, b)                    # (H, K, r)
        eye = torch.eye(len(p), dtype=r.dtype, device=r.device)
        s = torch.linalg.solve(eye + one_plus_z[..., None] * r_qp, r_qb)       # (H, K, r)
        return 2 * r * (b - one_plus_z * (s @ p))                               # (H, K, N)

    def roots_of_unity(self, length: int) -> torch.Tensor:
        """z_k = exp(-2 pi i k / L), k < L, on the parameters' device."""
        k = torch.arange(length, dtype=torch.float64, device=self.log_dt.device)
        return torch.exp(-2j * math.pi * k / length)

    def mode_kernels(self, length: int) -> torch.Tensor:
        """phi (H, N, L), complex: the kernel is linear in C~, K_l = Re sum_n C~_n phi_n,l."""
        return torch.fft.ifft(self.generating_function(self.roots_of_unity(length)), dim=1).transpose(1, 2)

    def forward(self, length: int) -> torch.Tensor:
        c = torch.view_as_complex(self.c)
        if not self.trainable:                     # A, B, Delta fixed: phi is computed once
            if self.frozen is None or self.frozen.shape[-1] != length:
                self.frozen = self.mode_kernels(length).detach().to(torch.complex64)
            return torch.einsum("hn,hnl->hl", c.to(self.frozen.dtype), self.frozen).real
        # Trained A, B, Delta: contract C~ before the inverse FFT (ifft is linear), in chunks of roots of
        # unity that are recomputed in the backward pass, so memory is O(H chunk N), not O(H L N).
        khat = [checkpoint(self.contracted, c, zc, use_reentrant=False)
                for zc in self.roots_of_unity(length).split(self.chunk)]
        return torch.fft.ifft(torch.cat(khat, dim=1), dim=1).real

    def contracted(self, c: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Khat(z) = sum_n C~_n w_n(z), (H, K)."""
        return torch.einsum("hn,hkn->hk", c, self.generating_function(z))


def causal_convolution(u: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """y_t = sum_{s <= t} K_{t-s} u_s by zero-padded FFT; u (B, H, L), kernel (H, L)."""
    length = u.shape[-1]
    spectrum = torch.fft.rfft(u, n=2 * length) * torch.fft.rfft(kernel, n=2 * length)
    return torch.fft.irfft(spectrum, n=2 * length)[..., :length]


class S4Layer(nn.Module):
    """Pre-norm residual block: x + W GELU(SSM(LN x) + D LN x); x is (B, L, H)."""

    def __init__(self, channels: int, n: int, init: str, dt_range: tuple[float, float],
                 rng: np.random.Generator, train_ssm: bool = True) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.kernel = S4Kernel(channels, n, init, dt_range, rng, train_ssm)
        self.skip = nn.Parameter(torch.randn(channels))
        self.out = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = self.norm(x).transpose(1, 2)                                      # (B, H, L)
        kernel = self.kernel(u.shape[-1]).to(u.dtype)
        y = causal_convolution(u, kernel) + self.skip[:, None] * u
        return x + self.out(nn.functional.gelu(y.transpose(1, 2)))


def ssm_parameters(model: nn.Module) -> list[nn.Parameter]:
    """A (Lambda, P), B and log Delta of every S4 kernel: trained at the lower SSM learning rate, no weight
    decay (C~ is an ordinary parameter)."""
    return [p for module in model.modules() if isinstance(module, S4Kernel)
            for name, p in module.named_parameters() if name != "c" and p.requires_grad]


def bidirectional_convolution(u: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """y_t = sum_{s <= t} K^f_{t-s} u_s + sum_{s >= t} K^b_{s-t} u_s; u (B, H, L), kernel (2H, L) = [K^f; K^b]."""
    channels = u.shape[1]
    backward = causal_convolution(u.flip(-1), kernel[channels:]).flip(-1)
    return causal_convolution(u, kernel[:channels]) + backward


class S4Block(nn.Module):
    """The LRA block of the s4 configs: bidirectional S4 (+ D u), GELU, dropout, Linear(H, 2H) + GLU, dropout,
    residual; batch or layer norm, before (prenorm) or after the residual. x is (B, L, H)."""

    def __init__(self, channels: int, n: int, init: str, dt_range: tuple[float, float], rng: np.random.Generator,
                 norm: str, prenorm: bool, dropout: float) -> None:
        super().__init__()
        if norm not in ("batch", "layer"):
            raise ValueError(f"norm must be 'batch' or 'layer', got {norm!r}")
        self.kernel = S4Kernel(2 * channels, n, init, dt_range, rng)     # forward and backward kernels
        self.skip = nn.Parameter(torch.randn(channels))
        self.out = nn.Linear(channels, 2 * channels)
        self.norm = nn.BatchNorm1d(channels) if norm == "batch" else nn.LayerNorm(channels)
        self.prenorm, self.dropout = prenorm, nn.Dropout(dropout)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.transpose(1, 2)).transpose(1, 2) if isinstance(self.norm, nn.BatchNorm1d) else self.norm(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = (self.normalise(x) if self.prenorm else x).transpose(1, 2)          # (B, H, L)
        y = bidirectional_convolution(u, self.kernel(u.shape[-1]).to(u.dtype)) + self.skip[:, None] * u
        y = nn.functional.glu(self.out(self.dropout(nn.functional.gelu(y)).transpose(1, 2)), dim=-1)
        x = x + self.dropout(y)
        return x if self.prenorm else self.normalise(x)


class S4Classifier(nn.Module):
    """Sequence classifier for LRA: embedding (tokens) or Linear(1 -> H) (pixels), `depth` S4 blocks, pooling
    (masked mean over the true length, or the last position), linear head. With a second sequence
    (retrieval) both are encoded by the same tower and the head sees [f1, f2, f1 * f2, f1 - f2]."""

    def __init__(self, classes: int, vocab: int | None, channels: int, n: int, depth: int, init: str,
                 dt_range: tuple[float, float], seed: int, norm: str = "batch", prenorm: bool = False,
                 dropout: float = 0.0, pool: str = "mean", pair: bool = False) -> None:
        super().__init__()
        if pool not in ("mean", "last"):
            raise ValueError(f"pool must be 'mean' or 'last', got {pool!r}")
        rng = np.random.default_rng(seed)
        torch.manual_seed(seed)
        self.encoder = nn.Embedding(vocab, channels, padding_idx=0) if vocab else nn.Linear(1, channels)
        self.layers = nn.ModuleList(S4Block(channels, n, init, dt_range, rng, norm, prenorm, dropout)
                                    for _ in range(depth))
        self.pool = pool
        self.head = (nn.Sequential(nn.Linear(4 * channels, channels), nn.GELU(), nn.Linear(channels, classes))
                     if pair else nn.Linear(channels, classes))

    def features(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """x (B, L) token ids (long) or pixel values (float); lengths (B,) -> (B, H)."""
        h = self.encoder(x) if isinstance(self.encoder, nn.Embedding) else self.encoder(x[..., None])
        for layer in self.layers:
            h = layer(h)
        if self.pool == "last":
            return h[torch.arange(len(h), device=h.device), lengths - 1]
        mask = (torch.arange(h.shape[1], device=h.device)[None, :] < lengths[:, None]).to(h.dtype)
        return (h * mask[..., None]).sum(1) / lengths[:, None].to(h.dtype)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, x2: torch.Tensor | None = None,
                lengths2: torch.Tensor | None = None) -> torch.Tensor:
        f = self.features(x, lengths)
        if x2 is not None:
            g = self.features(x2, lengths2)
            f = torch.cat([f, g, f * g, f - g], dim=-1)
        return self.head(f)


class DelayModel(nn.Module):
    """Linear(1 -> H), `depth` S4 layers, Linear(H -> 1): sequence to sequence, (B, L) -> (B, L)."""

    def __init__(self, channels: int, n: int, depth: int, init: str, dt_range: tuple[float, float],
                 seed: int, train_ssm: bool = True) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)
        torch.manual_seed(seed)
        self.encoder = nn.Linear(1, channels)
        self.layers = nn.ModuleList(S4Layer(channels, n, init, dt_range, rng, train_ssm) for _ in range(depth))
        self.decoder = nn.Linear(channels, 1)

    def ssm_parameters(self) -> list[nn.Parameter]:
        return ssm_parameters(self)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        x = self.encoder(u[..., None])
        for layer in self.layers:
            x = layer(x)
        return self.decoder(x)[..., 0]
