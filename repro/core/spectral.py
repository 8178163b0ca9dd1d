"""Fourier layers shared by the operator-learning papers."""

import torch
from torch import nn


class SpectralConv2d(nn.Module):
    """FNO's K u on an (n1 x n2) grid: the m1 lowest positive and m1 lowest negative frequencies along the first
    axis and the m2 lowest along the second (orthonormal rfft2), each mixed across channels by learned complex
    weights; the other frequencies are dropped. Weights are drawn as scale * N(0, 1) (FNO's default scale is
    1 / width^2)."""

    def __init__(self, width: int, modes: tuple[int, int], scale: float) -> None:
        super().__init__()
        self.modes = tuple(modes)
        self.weight_pos = nn.Parameter(scale * torch.randn(width, width, *self.modes, 2))
        self.weight_neg = nn.Parameter(scale * torch.randn(width, width, *self.modes, 2))

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        m1, m2 = self.modes
        spectrum = torch.fft.rfft2(u, norm="ortho")
        out = torch.zeros_like(spectrum)
        out[..., :m1, :m2] = torch.einsum("bixy,ioxy->boxy", spectrum[..., :m1, :m2],
                                          torch.view_as_complex(self.weight_pos))
        out[..., -m1:, :m2] = torch.einsum("bixy,ioxy->boxy", spectrum[..., -m1:, :m2],
                                           torch.view_as_complex(self.weight_neg))
        return torch.fft.irfft2(out, s=u.shape[-2:], norm="ortho")
