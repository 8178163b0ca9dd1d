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
                 rng: np.random.Generator, trainable: bool = True) -> None:
        super().__init__()
        self.trainable, self.frozen = trainable, None
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

    def mode_kernels(self, length: int) -> torch.Tensor:
        """phi (H, N, L), complex: the kernel is linear in C~, K_l = Re sum_n C~_n phi_n,l.

        phi_n = ifft_z 2 [R_n B_n - (1 + z) R_n sum_j P_jn s_j(z)], s = (I + (1 + z) r_QP)^-1 r_QB.
        """
        lam = self.diagonal()
        p, b = torch.view_as_complex(self.p), torch.view_as_complex(self.b)
        dt = self.log_dt.exp()[:, None, None]                                  # (H, 1, 1)
        z = torch.exp(-2j * math.pi * torch.arange(length, dtype=torch.float64) / length)
        r = 1 / ((2 / dt) * (1 - z)[None, :, None] - lam * (1 + z)[None, :, None])   # (H, L, N)
        one_plus_z = (1 + z)[None, :, None]
        r_qp = torch.einsum("in,hkn,jn->hkij", p.conj(), r, p)                  # (H, L, r, r)
        r_qb = torch.einsum("in,hkn,n->hki", p.conj(), r, b)                    # (H, L, r)
        eye = torch.eye(len(p), dtype=r.dtype)
        s = torch.linalg.solve(eye + one_plus_z[..., None] * r_qp, r_qb)       # (H, L, r)
        w = 2 * r * (b - one_plus_z * (s @ p))                                  # (H, L, N)
        return torch.fft.ifft(w, dim=1).transpose(1, 2)

    def forward(self, length: int) -> torch.Tensor:
        if self.frozen is None or self.frozen.shape[-1] != length:
            phi = self.mode_kernels(length)
            if not self.trainable:                 # A, B, Delta fixed: phi is computed once
                self.frozen = phi.detach().to(torch.complex64)
        phi = self.frozen if self.frozen is not None else phi
        c = torch.view_as_complex(self.c).to(phi.dtype)
        return torch.einsum("hn,hnl->hl", c, phi).real


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
        """A (Lambda, P), B and log Delta: trained at the lower SSM learning rate, no weight decay."""
        return [p for layer in self.layers for name, p in layer.kernel.named_parameters()
                if name != "c" and p.requires_grad]

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        x = self.encoder(u[..., None])
        for layer in self.layers:
            x = layer(x)
        return self.decoder(x)[..., 0]
