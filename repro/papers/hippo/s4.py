"""S4 layers with a HiPPO (or random DPLR) state matrix, kernels by the Woodbury generating function.

Per layer and channel h (H channels, state size N, sequence length L):

    A = Lambda - P^* P  (diagonal plus rank r), x' = A x + B u, y = C x + D u,
    bilinear step Delta_h = exp(log_dt_h).

A, B, P are real, so their N modes come in conjugate pairs: as in the s4 repository, one mode of each pair
is stored (N/2 of them) and every sum over modes is taken over both, sum_n [v_n / d(Lambda_n) +
conj(v_n) / d(conj Lambda_n)], so that the kernel is real. The length-L kernel K_l = C~ Abar^l Bbar
(C~ = C (I - Abar^L), learned directly as in S4) is read off its generating function at the roots of
unity z_k = exp(-2 pi i k / L):

    Khat(z) = 2 [ r_CB - (1 + z) r_CP (I + (1 + z) r_QP)^-1 r_QB ],
    r_ab(z) = sum_n a_n b_n / ((2 / Delta)(1 - z) - Lambda_n (1 + z))      (Cauchy sums, Q = P^*),

which is S4's 2/(1+z) [k_00 - k_01 (1 + k_11)^-1 k_10] multiplied through by (1 + z) so that z = -1 is
not singular. The kernel is real, so Khat(conj z) = conj Khat(z): it is evaluated at the L/2 + 1 roots
k <= L/2 only and inverted with irfft. The layer's output is an FFT convolution (causal, zero-padded).
The cost of one kernel is O(H L N) per step, in closed form, with no recurrence over time: A (Lambda, P),
B and Delta are trained with the rest of the model, as in the paper.
"""

import math

import numpy as np
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from repro.papers.hippo.hippo import MEASURES, nplr

INITS = (*MEASURES, "random")


def initial_dplr(init: str, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Lambda (N/2,), P (r, N/2), B (N/2,)), complex, one mode of each conjugate pair.

    `random`: the s4 repository's random DPLR initialisation (`dplr(init='rand')`, B_init 'constant'):
    Re Lambda = -1/2, Im Lambda = -exp(g) with g ~ N(0, 1), B = 1, P ~ CN(0, 1) of rank 1. It is stable
    by construction: A + A^* = 2 Re Lambda - 2 P^* P = -I - 2 P^* P is negative definite.
    """
    if init in MEASURES:
        lam, p, b, _ = nplr(init, n)
        return lam, p, b
    if init == "random":
        half = n // 2
        lam = -0.5 - 1j * np.exp(rng.standard_normal(half))
        p = (rng.standard_normal((1, half)) + 1j * rng.standard_normal((1, half))) * math.sqrt(0.5)
        return lam, p, np.ones(half, complex)
    raise ValueError(f"unknown init {init!r}; choose from {INITS}")


def _complex_parameter(value: np.ndarray) -> nn.Parameter:
    return nn.Parameter(torch.view_as_real(torch.as_tensor(value, dtype=torch.complex64)).clone())


def pair_sum(v: torch.Tensor, r: torch.Tensor, r_conj: torch.Tensor, spec: str) -> torch.Tensor:
    """sum over both modes of each pair: einsum(spec) of v with 1/d(Lambda) plus conj(v) with 1/d(conj Lambda)."""
    return torch.einsum(spec, v, r) + torch.einsum(spec, v.conj(), r_conj)


class S4Kernel(nn.Module):
    """Learnable DPLR SSM kernel for H channels: forward(L) -> K, shape (H, L), in the parameters' dtype
    (float32; `.double()` for float64)."""

    def __init__(self, channels: int, n: int, init: str, dt_range: tuple[float, float],
                 rng: np.random.Generator, chunk: int = 1024) -> None:
        super().__init__()
        self.chunk = chunk
        lam, p, b = initial_dplr(init, n, rng)
        # Re Lambda = -exp(log_neg_re) < 0, started at -max(|Re Lambda|, 1e-4) as in S4: LegT and FouT have
        # Re Lambda = 0 exactly, which makes the Cauchy sums singular at z = 1.
        self.log_neg_re = nn.Parameter(torch.as_tensor(np.log(np.maximum(np.abs(lam.real), 1e-4)),
                                                       dtype=torch.float32))
        self.lam_im = nn.Parameter(torch.as_tensor(lam.imag, dtype=torch.float32))   # (N/2,): shared by channels
        self.p = _complex_parameter(p)                           # (r, N/2, 2)
        self.b = _complex_parameter(b)                           # (N/2, 2)
        c = (rng.standard_normal((channels, len(lam))) + 1j * rng.standard_normal((channels, len(lam))))
        self.c = _complex_parameter(c * math.sqrt(0.5))          # (H, N/2, 2): C~ directly
        log_lo, log_hi = math.log(dt_range[0]), math.log(dt_range[1])
        self.log_dt = nn.Parameter(torch.as_tensor(rng.uniform(log_lo, log_hi, channels), dtype=torch.float32))

    def diagonal(self) -> torch.Tensor:
        """Lambda, shape (N/2,), complex."""
        return torch.complex(-self.log_neg_re.exp(), self.lam_im)

    def generating_function(self, z: torch.Tensor) -> torch.Tensor:
        """Khat(z) at the K points z, shape (H, K), complex (the formula in the module docstring)."""
        lam = self.diagonal()
        p, b, c = (torch.view_as_complex(t) for t in (self.p, self.b, self.c))
        dt = self.log_dt.exp()[:, None, None]                                  # (H, 1, 1)
        one_plus_z = (1 + z)[None, :]                                          # (1, K)
        two_over_dt = (2 / dt) * (1 - z)[None, :, None]
        r = 1 / (two_over_dt - lam * one_plus_z[..., None])                    # (H, K, N/2)
        r_conj = 1 / (two_over_dt - lam.conj() * one_plus_z[..., None])
        r_qp = pair_sum(p.conj()[:, None] * p[None], r, r_conj, "ijn,hkn->hkij")          # (H, K, r, r)
        r_qb = pair_sum(p.conj() * b, r, r_conj, "in,hkn->hki")                            # (H, K, r)
        r_cb = pair_sum(c * b, r, r_conj, "hn,hkn->hk")                                    # (H, K)
        r_cp = pair_sum(c[:, None] * p[None], r, r_conj, "hjn,hkn->hkj")                   # (H, K, r)
        eye = torch.eye(len(p), dtype=r.dtype, device=r.device)
        s = torch.linalg.solve(eye + one_plus_z[..., None, None] * r_qp, r_qb)            # (H, K, r)
        return 2 * (r_cb - one_plus_z * (r_cp * s).sum(-1))

    def forward(self, length: int) -> torch.Tensor:
        k = torch.arange(length // 2 + 1, dtype=torch.float64, device=self.log_dt.device)
        z = torch.exp(-2j * math.pi * k / length).to(torch.view_as_complex(self.c).dtype)
        if len(z) <= self.chunk:
            return torch.fft.irfft(self.generating_function(z), n=length)
        # Long L (LRA): the roots in chunks recomputed in the backward pass, memory O(H chunk N), not O(H L N).
        khat = [checkpoint(self.generating_function, zc, use_reentrant=False) for zc in z.split(self.chunk)]
        return torch.fft.irfft(torch.cat(khat, dim=1), n=length)


def causal_convolution(u: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """y_t = sum_{s <= t} K_{t-s} u_s by zero-padded FFT; u (B, H, L), kernel (H, L)."""
    length = u.shape[-1]
    spectrum = torch.fft.rfft(u, n=2 * length) * torch.fft.rfft(kernel, n=2 * length)
    return torch.fft.irfft(spectrum, n=2 * length)[..., :length]


class S4Layer(nn.Module):
    """Pre-norm residual block: x + W GELU(SSM(LN x) + D LN x); x is (B, L, H)."""

    def __init__(self, channels: int, n: int, init: str, dt_range: tuple[float, float],
                 rng: np.random.Generator) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.kernel = S4Kernel(channels, n, init, dt_range, rng)
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
            for name, p in module.named_parameters() if name != "c"]


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
                 seed: int) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)
        torch.manual_seed(seed)
        self.encoder = nn.Linear(1, channels)
        self.layers = nn.ModuleList(S4Layer(channels, n, init, dt_range, rng) for _ in range(depth))
        self.decoder = nn.Linear(channels, 1)

    def ssm_parameters(self) -> list[nn.Parameter]:
        return ssm_parameters(self)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        x = self.encoder(u[..., None])
        for layer in self.layers:
            x = layer(x)
        return self.decoder(x)[..., 0]
