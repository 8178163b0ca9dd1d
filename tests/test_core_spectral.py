import math

import pytest
import torch

from repro.core.spectral import SpectralConv2d


@pytest.mark.parametrize("modes", [(4, 4), (4, 5)])
def test_spectral_convolution_matches_neuralop(modes: tuple[int, int]) -> None:
    """neuralop's SpectralConv (orthonormal FFT, no bias) with our weights gives our layer's output: its
    n_modes = (2 m1, 2 m2 - 2) keeps frequencies -m1..m1-1 along x and 0..m2-1 along y, as ours."""
    spectral_convolution = pytest.importorskip("neuralop.layers.spectral_convolution")
    torch.manual_seed(0)
    ours = SpectralConv2d(3, modes, 0.3)
    theirs = spectral_convolution.SpectralConv(3, 3, n_modes=(2 * modes[0], 2 * modes[1] - 2), bias=False,
                                               fft_norm="ortho")
    with torch.no_grad():
        negative, positive = torch.view_as_complex(ours.weight_neg), torch.view_as_complex(ours.weight_pos)
        theirs.weight.tensor.copy_(torch.cat([negative, positive], dim=2))
        image = torch.randn(2, 3, 20, 20)
        assert torch.allclose(ours(image), theirs(image), atol=1e-5)


def test_spectral_convolution_acts_on_functions_not_grids() -> None:
    """On periodic grids a band-limited field sampled at 16 and at 32 points per axis is mapped to the same
    function (the orthonormal FFT keeps the layer's gain independent of the grid)."""
    torch.manual_seed(0)
    layer = SpectralConv2d(3, (4, 4), 0.3)

    def field(points: int) -> torch.Tensor:
        x = torch.arange(points) / points
        xx, yy = torch.meshgrid(x, x, indexing="ij")
        return torch.stack([torch.cos(2 * math.pi * (xx + 2 * yy)), torch.sin(2 * math.pi * 3 * xx),
                            torch.cos(2 * math.pi * (-2 * xx + yy)) + 0.5])[None]

    with torch.no_grad():
        torch.testing.assert_close(layer(field(32))[..., ::2, ::2], layer(field(16)), atol=1e-5, rtol=1e-5)
