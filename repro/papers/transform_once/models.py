"""FNO and T1 in 1D and 2D, and the orthonormal DCT they use.

FNO (Li et al., as the official Transform Once code builds its baseline): a pointwise lift, layers
u -> act(K u + u + W u) where K multiplies the lowest rfft modes by learned complex weights and transforms back
every layer, and a pointwise projection head.
T1 (Transform Once): a pointwise lift, ONE orthonormal DCT-II, then layers that act on the kept m modes
only (channel mixing per mode, activation, mode mixing per channel, residual), the pointwise head applied
to the spectrum, and one inverse DCT at the end.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from repro.core.spectral import SpectralConv2d

INITS = ("naive", "vp")


# --- the orthonormal DCT-II and its inverse (DCT-III), along the last axis, through one complex FFT ---

def dct(x: torch.Tensor) -> torch.Tensor:
    """Orthonormal DCT-II along the last axis (scipy.fft.dct(x, type=2, norm='ortho')).

    Makhoul's reordering v = (x_0, x_2, ..., x_3, x_1) turns it into one FFT:
    X_k = 2 Re(exp(-i pi k / 2N) V_k), then scaled by sqrt(1/4N) for k = 0 and sqrt(1/2N) otherwise.
    """
    n = x.shape[-1]
    v = torch.cat([x[..., ::2], x[..., 1::2].flip(-1)], dim=-1)
    k = torch.arange(n, device=x.device, dtype=x.dtype)
    twiddle = torch.polar(torch.ones_like(k), -math.pi * k / (2 * n))
    out = 2 * (torch.fft.fft(v) * twiddle).real
    scale = torch.full_like(k, math.sqrt(1 / (2 * n)))
    scale[0] = math.sqrt(1 / (4 * n))
    return out * scale


def idct(y: torch.Tensor) -> torch.Tensor:
    """Inverse of ``dct`` (orthonormal DCT-III): V_k = (Y_k - i Y_{N-k}) exp(i pi k / 2N) / 2, v = ifft(V)."""
    n = y.shape[-1]
    k = torch.arange(n, device=y.device, dtype=y.dtype)
    scale = torch.full_like(k, math.sqrt(2 * n))
    scale[0] = math.sqrt(4 * n)
    unnormalised = y * scale
    mirrored = torch.cat([torch.zeros_like(unnormalised[..., :1]), unnormalised[..., 1:].flip(-1)], dim=-1)
    spectrum = torch.complex(unnormalised, -mirrored) * torch.polar(torch.ones_like(k), math.pi * k / (2 * n)) / 2
    v = torch.fft.ifft(spectrum).real
    x = torch.empty_like(v)
    half = (n + 1) // 2
    x[..., ::2] = v[..., :half]
    x[..., 1::2] = v[..., half:].flip(-1)
    return x


def dct2(x: torch.Tensor) -> torch.Tensor:
    """Orthonormal 2D DCT-II over the last two axes."""
    return dct(dct(x).transpose(-1, -2)).transpose(-1, -2)


def idct2(y: torch.Tensor) -> torch.Tensor:
    return idct(idct(y).transpose(-1, -2)).transpose(-1, -2)


# --- initial scales ---

def t1_channel_scale(init: str, width: int, points: int, modes: int) -> float:
    """Standard deviation of T1's per-mode channel-mixing weights.

    naive: 1 / (c_in c_out), the FNO default. vp: sqrt(N / (c_in m)). With an orthonormal DCT, white input of
    variance s has DCT coefficients of variance s; mixing c_in channels gives c_in sigma^2 s per kept mode, and
    m such modes among N carry a physical variance of (m / N) c_in sigma^2 s, which equals s at the VP scale.
    """
    if init == "naive":
        return 1.0 / (width * width)
    if init == "vp":
        return math.sqrt(points / (width * modes))
    raise ValueError(f"init must be one of {INITS}, got {init!r}")


def fno_spectral_scale(init: str, width: int, points: int, modes: int) -> float:
    """Standard deviation of the real and imaginary parts of FNO's complex weights (1D, orthonormal rfft).

    naive: 1 / (c_in c_out). vp: white input of variance s gives rfft coefficients with E|X_k|^2 = s (k >= 1;
    the mean mode is real); after mixing, E|Y_k|^2 = 2 c_in sigma^2 s, and the inverse rfft of modes 0..m-1
    has variance c_in sigma^2 s (4m - 3) / N, so sigma^2 = N / (c_in (4m - 3)).
    """
    if init == "naive":
        return 1.0 / (width * width)
    if init == "vp":
        return math.sqrt(points / (width * (4 * modes - 3)))
    raise ValueError(f"init must be one of {INITS}, got {init!r}")


def grid_1d(batch: int, points: int, device: torch.device | str) -> torch.Tensor:
    """Physical coordinates in [0, 1], shape (batch, points, 1)."""
    return torch.linspace(0, 1, points, device=device).expand(batch, points).unsqueeze(-1)


def grid_2d(batch: int, rows: int, cols: int, device: torch.device | str) -> torch.Tensor:
    """Physical coordinates (x, y) in [0, 1]^2, shape (batch, rows, cols, 2)."""
    x = torch.linspace(0, 1, rows, device=device)
    y = torch.linspace(0, 1, cols, device=device)
    return torch.stack(torch.meshgrid(x, y, indexing="ij"), dim=-1).expand(batch, rows, cols, 2)


# --- FNO ---

class SpectralConv1d(nn.Module):
    """u -> irfft(W_k rfft(u)_k for k < m, 0 above), orthonormal transforms; complex weights stored as real
    pairs so that Adam treats real and imaginary parts as separate parameters."""

    def __init__(self, width: int, modes: int, scale: float) -> None:
        super().__init__()
        self.modes = modes
        self.weight = nn.Parameter(scale * torch.randn(width, width, modes, 2))

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        spectrum = torch.fft.rfft(u, norm="ortho")
        out = torch.zeros_like(spectrum)
        out[..., :self.modes] = torch.einsum("bix,iox->box", spectrum[..., :self.modes],
                                             torch.view_as_complex(self.weight))
        return torch.fft.irfft(out, n=u.shape[-1], norm="ortho")


class FNO1d(nn.Module):
    """The FNO baseline of the official code (kairos `NeuralOperator1d`, its defaults residual=True and
    conv_residual=True): lift (value, x) -> width; layers u -> GELU(K u + u + W u), the activation after every
    layer including the last; head width -> 128 -> 1."""

    def __init__(self, width: int, modes: int, layers: int, points: int, init: str = "naive") -> None:
        super().__init__()
        scale = fno_spectral_scale(init, width, points, modes)
        self.lift = nn.Linear(2, width)
        self.spectral = nn.ModuleList(SpectralConv1d(width, modes, scale) for _ in range(layers))
        self.pointwise = nn.ModuleList(nn.Conv1d(width, width, 1) for _ in range(layers))
        self.head = nn.Sequential(nn.Linear(width, 128), nn.GELU(), nn.Linear(128, 1))

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        u = self.lift(torch.cat([a.unsqueeze(-1), grid_1d(*a.shape, a.device)], -1)).transpose(1, 2)
        for spectral, pointwise in zip(self.spectral, self.pointwise):
            u = F.gelu(spectral(u) + u + pointwise(u))
        return self.head(u.transpose(1, 2)).squeeze(-1)


class FNO2d(nn.Module):
    """FNO-2D on an (n x n) grid (kairos `NeuralOperator2d`): lift (value, x, y) -> width, layers
    u -> GELU(K u + u + W u), head width -> 128 -> out."""

    def __init__(self, width: int, modes: int, layers: int, in_channels: int = 1) -> None:
        super().__init__()
        scale = 1.0 / (width * width)  # the FNO default
        self.lift = nn.Linear(in_channels + 2, width)
        self.spectral = nn.ModuleList(SpectralConv2d(width, (modes, modes), scale) for _ in range(layers))
        self.pointwise = nn.ModuleList(nn.Conv2d(width, width, 1) for _ in range(layers))
        self.head = nn.Sequential(nn.Linear(width, 128), nn.GELU(), nn.Linear(128, 1))

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        """a: (batch, n, n) or (batch, channels, n, n) -> (batch, n, n)."""
        a = a.unsqueeze(1) if a.dim() == 3 else a
        batch, _, rows, cols = a.shape
        u = self.lift(torch.cat([a.permute(0, 2, 3, 1), grid_2d(batch, rows, cols, a.device)], -1)).permute(0, 3, 1, 2)
        for spectral, pointwise in zip(self.spectral, self.pointwise):
            u = F.gelu(spectral(u) + u + pointwise(u))
        return self.head(u.permute(0, 2, 3, 1)).squeeze(-1)


# --- T1 ---

class T1Layer1d(nn.Module):
    """On the kept spectrum z (batch, width, m): z + S(act(C z)), C mixing channels per mode, S mixing modes
    per channel."""

    def __init__(self, width: int, modes: int, points: int, init: str) -> None:
        super().__init__()
        self.channel_mixing = nn.Parameter(t1_channel_scale(init, width, points, modes) * torch.randn(width, width,
                                                                                                       modes))
        self.mode_mixing = nn.Parameter(math.sqrt(1 / modes) * torch.randn(modes, modes, width))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        mixed = F.gelu(torch.einsum("bix,iox->box", z, self.channel_mixing))
        return z + torch.einsum("bcx,xyc->bcy", mixed, self.mode_mixing)


class T1Layer2d(nn.Module):
    """2D: channel mixing per mode (m1 x m2), activation, then mode mixing along each axis per channel."""

    def __init__(self, width: int, modes: int, points: int, init: str) -> None:
        super().__init__()
        self.channel_mixing = nn.Parameter(t1_channel_scale(init, width, points * points, modes * modes)
                                           * torch.randn(width, width, modes, modes))
        self.mode_mixing_x = nn.Parameter(math.sqrt(1 / modes) * torch.randn(modes, modes, width))
        self.mode_mixing_y = nn.Parameter(math.sqrt(1 / modes) * torch.randn(modes, modes, width))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        mixed = F.gelu(torch.einsum("bixy,ioxy->boxy", z, self.channel_mixing))
        mixed = torch.einsum("bcxy,xvc->bcvy", mixed, self.mode_mixing_x)
        return z + torch.einsum("bcxy,yvc->bcxv", mixed, self.mode_mixing_y)


class SpectralHead(nn.Module):
    """The pointwise head on the spectrum, width -> 128 -> 1 with a sine between, initialised at 1e-8 (so the
    model starts near zero). It maps zero to zero, so applying it to the kept modes only and zero-filling the
    rest equals applying it to the whole zero-padded spectrum."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.first = nn.Parameter(1e-8 * torch.randn(width, 128))
        self.second = nn.Parameter(1e-8 * torch.randn(128, 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z: (batch, width, *modes) -> (batch, *modes)."""
        hidden = torch.sin(torch.einsum("bc...,co->bo...", z, self.first))
        return torch.einsum("bo...,oc->bc...", hidden, self.second).squeeze(1)


class T1_1d(nn.Module):
    """Lift (value, x) -> width, one DCT, layers on the m lowest modes, head on the spectrum, one inverse DCT."""

    def __init__(self, width: int, modes: int, layers: int, points: int, init: str = "vp") -> None:
        super().__init__()
        self.modes = modes
        self.lift = nn.Linear(2, width)
        self.layers = nn.ModuleList(T1Layer1d(width, modes, points, init) for _ in range(layers))
        self.head = SpectralHead(width)

    def hidden(self, a: torch.Tensor) -> list[torch.Tensor]:
        """The lifted input (physical space) and each layer's kept spectrum (batch, width, m)."""
        lifted = self.lift(torch.cat([a.unsqueeze(-1), grid_1d(*a.shape, a.device)], -1)).transpose(1, 2)
        states = [lifted, dct(lifted)[..., :self.modes]]
        for layer in self.layers:
            states.append(layer(states[-1]))
        return states

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        spectrum = self.head(self.hidden(a)[-1])
        return idct(F.pad(spectrum, (0, a.shape[-1] - self.modes)))


class T1_2d(nn.Module):
    """2D T1 on an (n x n) grid: lift (value, x, y), one 2D DCT, layers on m x m modes, head, one inverse."""

    def __init__(self, width: int, modes: int, layers: int, points: int, init: str = "vp",
                 in_channels: int = 1) -> None:
        super().__init__()
        self.modes = modes
        self.lift = nn.Linear(in_channels + 2, width)
        self.layers = nn.ModuleList(T1Layer2d(width, modes, points, init) for _ in range(layers))
        self.head = SpectralHead(width)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        a = a.unsqueeze(1) if a.dim() == 3 else a
        batch, _, rows, cols = a.shape
        lifted = self.lift(torch.cat([a.permute(0, 2, 3, 1), grid_2d(batch, rows, cols, a.device)], -1))
        z = dct2(lifted.permute(0, 3, 1, 2))[..., :self.modes, :self.modes]
        for layer in self.layers:
            z = layer(z)
        spectrum = self.head(z)
        return idct2(F.pad(spectrum, (0, cols - self.modes, 0, rows - self.modes)))
