"""FlowState at small size: a scale-aware diagonal SSM (S5-style) encoder and a Legendre basis decoder.

Time is measured in model units ("hours" of the training rate). A series with seasonal period m steps
gets the scale factor s = 24 / m: one of its steps lasts s model units. s enters (i) every SSM layer's
step Delta s, (ii) the decoder's time grid, (iii) the number of output steps (horizon = 48 / s steps).
"""

import numpy as np
import torch
from numpy.polynomial import legendre
from torch import nn

from repro.papers.hippo.hippo import nplr

DECODER_SPAN = 48.0           # model units covered by the decoder (2 days at the training rate)


class ScaledSSM(nn.Module):
    """x_k = exp(Lambda Delta s) x_{k-1} + (exp(Lambda Delta s) - 1) / Lambda B u_k, y_k = Re(C x_k) + D u_k.

    Lambda starts at HiPPO-N blocks (the normal part of LegS: -1/2 + i omega, from hippo.nplr), log Delta ~
    U[log 1e-3, log 1e-1] per state; the scan is an FFT convolution per state. u is (B, L, H).
    """

    def __init__(self, width: int, states: int, block: int, rng: np.random.Generator) -> None:
        super().__init__()
        lam = np.concatenate([nplr("legs", block)[0] for _ in range(states // block)])
        self.log_neg_re = nn.Parameter(torch.as_tensor(np.log(-lam.real), dtype=torch.float32))
        self.im = nn.Parameter(torch.as_tensor(lam.imag, dtype=torch.float32))
        scale = 1 / np.sqrt(width)
        self.b = nn.Parameter(torch.as_tensor(rng.normal(0, scale, (states, width, 2)), dtype=torch.float32))
        self.c = nn.Parameter(torch.as_tensor(rng.normal(0, scale, (width, states, 2)), dtype=torch.float32))
        self.d = nn.Parameter(torch.ones(width))
        self.log_dt = nn.Parameter(torch.as_tensor(rng.uniform(np.log(1e-3), np.log(1e-1), states),
                                                   dtype=torch.float32))

    def forward(self, u: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        length = u.shape[1]
        lam = torch.complex(-self.log_neg_re.exp(), self.im)                         # (P,)
        step = self.log_dt.exp()[None, :] * s[:, None]                              # (B, P): Delta s
        lam_bar = torch.exp(lam * step)                                             # (B, P)
        v = torch.einsum("pw,blw->bpl", torch.view_as_complex(self.b), torch.complex(u, torch.zeros_like(u)))
        v = v * ((lam_bar - 1) / lam)[..., None]                                    # Bbar u
        powers = lam_bar[..., None] ** torch.arange(length, device=u.device)         # (B, P, L)
        n = 2 * length
        x = torch.fft.ifft(torch.fft.fft(v, n=n) * torch.fft.fft(powers, n=n), n=n)[..., :length]
        y = torch.einsum("wp,bpl->blw", torch.view_as_complex(self.c), x).real
        return y + self.d * u


class EncoderLayer(nn.Module):
    """SSM -> SELU -> self-gate x sigmoid(W x) -> LayerNorm -> residual."""

    def __init__(self, width: int, states: int, block: int, rng: np.random.Generator) -> None:
        super().__init__()
        self.ssm = ScaledSSM(width, states, block, rng)
        self.gate = nn.Linear(width, width)
        self.norm = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        h = nn.functional.selu(self.ssm(x, s))
        return x + self.norm(h * torch.sigmoid(self.gate(h)))


def legendre_basis(degree: int, grid: np.ndarray) -> np.ndarray:
    """P_0..P_{degree-1} at grid in [-1, 1], (len(grid), degree) (numpy's Legendre Vandermonde)."""
    return legendre.legvander(grid, degree - 1)


class FlowState(nn.Module):
    """Context (B, L) and scale s (B,) -> quantile forecasts (B, horizon, Q) for horizon = 48 / s steps.

    Instance normalisation by the context's mean and std; embedding Linear(1 -> W); encoder layers; the
    last position's state gives Legendre coefficients (degree x Q); the forecast at step j is the basis
    evaluated at model time j s (mapped from [0, 48] to [-1, 1]), so any horizon and rate come out of
    one set of coefficients.
    """

    def __init__(self, width: int, states: int, block: int, layers: int, degree: int, quantiles: int,
                 seed: int) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)
        torch.manual_seed(seed)
        self.degree, self.quantiles = degree, quantiles
        self.embed = nn.Linear(1, width)
        self.layers = nn.ModuleList(EncoderLayer(width, states, block, rng) for _ in range(layers))
        self.head = nn.Linear(width, degree * quantiles)

    def forward(self, context: torch.Tensor, s: float, horizon: int) -> torch.Tensor:
        mean, std = context.mean(1, keepdim=True), context.std(1, keepdim=True).clamp(min=1e-5)
        x = self.embed(((context - mean) / std)[..., None])
        scale = torch.full((len(context),), float(s))
        for layer in self.layers:
            x = layer(x, scale)
        coefficients = self.head(x[:, -1]).view(-1, self.degree, self.quantiles)
        grid = -1 + 2 * s * np.arange(1, horizon + 1) / DECODER_SPAN
        basis = torch.as_tensor(legendre_basis(self.degree, grid), dtype=torch.float32)
        return (basis @ coefficients) * std[..., None] + mean[..., None]


class MLP(nn.Module):
    """Fixed-rate baseline: normalised context (256) -> 48 steps, two hidden layers."""

    def __init__(self, context: int, horizon: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(context, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                                 nn.Linear(hidden, horizon))

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        mean, std = context.mean(1, keepdim=True), context.std(1, keepdim=True).clamp(min=1e-5)
        return self.net((context - mean) / std) * std + mean
