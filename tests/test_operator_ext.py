"""operator_ext: the kernel-resampling recipe against its continuum limit, the backbones at every grid, the
metric against neuralop's LpLoss, neuralop's finite-difference convolution as the reference of a layer defined
on functions, the FNO's spectral layer against neuralop's SpectralConv and across grids, the nested Darcy grids,
and the Navier-Stokes reader on files in neuralop's format."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from repro.core.errors import DataUnavailableError
from repro.papers.operator_ext.data import darcy, navier_stokes
from repro.papers.operator_ext.layers import (
    FNO2d,
    InputOutputInterpolation,
    InterpConv2d,
    InterpConvTranspose2d,
    Resolution,
    UNet,
    ViT,
    coordinates,
    grid_scale,
    resample,
)
from repro.papers.operator_ext.task import absolute_l2, relative_l2


def smooth_field(points: int, frequency: float) -> torch.Tensor:
    x = torch.linspace(0, 1, points, dtype=torch.float64)
    return (torch.sin(2 * math.pi * frequency * x)[:, None] * torch.cos(math.pi * frequency * x)[None, :])[None, None]


def test_resampled_kernel_sizes_padding_and_identity_at_scale_one() -> None:
    resolution = Resolution(base=33, kind="nodes")
    conv = InterpConv2d(resolution, 1, 1, 5, padding=2, bias=False)
    x = torch.randn(1, 1, 33, 33)
    assert torch.equal(conv(x), F.conv2d(x, conv.weight, padding=2))
    for points, taps, padding in ((65, 9, 4), (17, 3, 1), (129, 17, 8)):
        resolution.set(points)
        kernel, pad = conv.resampled()
        assert kernel.shape[-2:] == (taps, taps) and pad == (padding, padding)
        assert conv(torch.randn(1, 1, points, points)).shape[-1] == points


def test_resampled_convolution_approaches_the_base_output_on_a_finer_grid() -> None:
    """A box kernel (its sum is what the tap-count normalisation keeps exactly) applied at 65 x 65 with the
    resampled kernel matches the 33 x 33 output at the shared nodes, the better the smoother the function;
    the pixel kernel applied unchanged at 65 x 65 does not (it covers half the physical support)."""
    resolution = Resolution(base=33, kind="nodes")
    conv = InterpConv2d(resolution, 1, 1, 5, padding=2, bias=False).double()
    with torch.no_grad():
        conv.weight.fill_(1 / 25)
    errors, pixel_errors = [], []
    conv.weight.requires_grad_(False)
    for frequency in (1.0, 3.0):
        resolution.set(33)
        base = conv(smooth_field(33, frequency))[..., 4:-4, 4:-4]
        resolution.set(65)
        fine = conv(smooth_field(65, frequency))[..., ::2, ::2][..., 4:-4, 4:-4]
        pixel = F.conv2d(smooth_field(65, frequency), conv.weight, padding=2)[..., ::2, ::2][..., 4:-4, 4:-4]
        errors.append(float((fine - base).norm() / base.norm()))
        pixel_errors.append(float((pixel - base).norm() / base.norm()))
    assert errors[0] < errors[1] and errors[0] < 0.01
    assert pixel_errors[0] > 3 * errors[0] and pixel_errors[1] > 3 * errors[1]
    unnormalised = F.interpolate(conv.weight, size=(9, 9), mode="bilinear", align_corners=True)
    resolution.set(65)
    assert float(unnormalised.sum() / conv.resampled()[0].sum()) == pytest.approx(81 / 25)  # the s^2-like blow-up


def test_neuralop_finite_difference_convolution_is_resolution_consistent_like_ours() -> None:
    """neuralop's FiniteDifferenceConvolution (kernel scaled by the grid width) gives the same function on
    nested grids; the same kernel read in pixels (grid width 1) does not: its output halves with the spacing."""
    differential_conv = pytest.importorskip("neuralop.layers.differential_conv")
    torch.manual_seed(0)
    layer = differential_conv.FiniteDifferenceConvolution(1, 1, n_dim=2, kernel_size=3, padding="zeros").double()
    coarse = layer(smooth_field(33, 1.0), 1 / 32)[..., 2:-2:2, 2:-2:2]
    fine = layer(smooth_field(65, 1.0), 1 / 64)[..., 4:-4:4, 4:-4:4]
    assert float((fine - coarse).norm() / coarse.norm()) < 0.1
    pixel_coarse = layer(smooth_field(33, 1.0), 1.0)[..., 2:-2:2, 2:-2:2]
    pixel_fine = layer(smooth_field(65, 1.0), 1.0)[..., 4:-4:4, 4:-4:4]
    assert float((pixel_fine - pixel_coarse).norm() / pixel_coarse.norm()) > 0.3


@pytest.mark.parametrize("kind,points", [("nodes", (17, 33, 65)), ("periodic", (64, 128))])
def test_backbones_run_at_every_grid(kind: str, points: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    base = points[1]
    models = [UNet([4, 8], 5, 1, base, kind, interpolate=True), UNet([4, 8], 5, 1, base, kind, interpolate=False),
              ViT(4, 16, 1, 2, 32, kind), FNO2d(8, 4, 2, kind)]
    models.append(InputOutputInterpolation(models[1], base, kind))
    for model in models:
        for n in points:
            out = model(torch.randn(2, n, n))
            assert out.shape == (2, n, n) and torch.isfinite(out).all()


def test_kernel_interpolated_unet_equals_the_plain_one_at_the_training_grid() -> None:
    torch.manual_seed(0)
    plain = UNet([4, 8], 5, 1, 33, "nodes", interpolate=False)
    resampled = UNet([4, 8], 5, 1, 33, "nodes", interpolate=True)
    resampled.load_state_dict(plain.state_dict())
    a = torch.randn(2, 33, 33)
    assert torch.allclose(plain(a), resampled(a), atol=1e-6)
    assert not torch.allclose(plain(torch.randn(2, 65, 65)), resampled(torch.randn(2, 65, 65)))


def test_metrics_match_neuralop_lploss() -> None:
    losses = pytest.importorskip("neuralop.losses")
    loss = losses.LpLoss(d=2, p=2, reduction="mean")
    x, y = torch.randn(4, 17, 17), torch.randn(4, 17, 17)
    assert float(relative_l2(x, y).mean()) == pytest.approx(float(loss.rel(x, y)), rel=1e-5)
    assert float(absolute_l2(x, y).mean()) == pytest.approx(float(loss.abs(x, y)), rel=1e-5)


def test_darcy_grids_are_nested_and_normalised_at_the_training_resolution() -> None:
    cfg = OmegaConf.create({"resolutions": [9, 17], "train_points": 9, "train": 6, "val": 2, "test": 2})
    splits = darcy(cfg, seed=0, device="cpu")
    for split in splits.values():
        a_coarse, u_coarse = split[9]
        a_fine, u_fine = split[17]
        assert torch.equal(a_coarse, a_fine[:, ::2, ::2]) and torch.equal(u_coarse, u_fine[:, ::2, ::2])
    train_a, train_u = splits["train"][9]
    assert float(train_a.mean()) == pytest.approx(0.0, abs=1e-5)
    assert float(train_a.std()) == pytest.approx(1.0, rel=0.05)
    assert torch.all(splits["test"][17][1][:, 0, :] == 0)  # Dirichlet boundary


NS_FILES = {points: (f"nsforcing_{points}_train.pt", f"nsforcing_{points}_test.pt") for points in (64, 128, 256)}


def _write_ns(root: Path, samples: int, resolutions: tuple[int, ...]) -> None:
    """neuralop's layout: a dict with float tensors 'x' (forcing) and 'y' (vorticity), shape (N, 1, n, n)."""
    root.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(0)
    for points in resolutions:
        for name in NS_FILES[points]:
            torch.save({"x": torch.randn(samples, 1, points, points, generator=generator),
                        "y": torch.randn(samples, 1, points, points, generator=generator)}, root / name)


def write_dry_data(data_dir: Path) -> None:
    """The Zenodo files scale=dry reads (8 samples at 64 and 128 points)."""
    _write_ns(data_dir / "operator_ext", samples=8, resolutions=(64, 128))


def test_navier_stokes_reader(tmp_path: Path) -> None:
    _write_ns(tmp_path / "operator_ext", samples=5, resolutions=(64, 128))
    cfg = OmegaConf.create({"train_points": 128, "multires_points": [64, 128], "resolutions": [64, 128],
                            "test_files": ["nsforcing_64_test.pt", "nsforcing_128_test.pt"],
                            "train": 3, "val": 1, "test": 2})
    splits = navier_stokes(cfg, tmp_path, "cpu")
    assert splits["train"][64][0].shape == (3, 64, 64) and splits["test"][128][1].shape == (2, 128, 128)
    assert float(splits["train"][128][0].mean()) == pytest.approx(0.0, abs=1e-5)
    (tmp_path / "operator_ext" / "nsforcing_64_test.pt").write_bytes(b"not a tensor file")
    with pytest.raises(DataUnavailableError, match="nsforcing_64_test.pt"):
        navier_stokes(cfg, tmp_path, "cpu")
    cfg.train = 10
    with pytest.raises(DataUnavailableError, match="fewer than"):
        navier_stokes(cfg, tmp_path, "cpu")


@pytest.mark.parametrize("kind,points,base", [("nodes", 65, 33), ("nodes", 17, 33), ("nodes", 50, 33),
                                              ("periodic", 128, 64), ("periodic", 96, 64)])
def test_grid_scale_is_the_ratio_of_spacings_of_the_physical_coordinates(kind: str, points: int, base: int) -> None:
    """Node grids: numpy.linspace(0, 1, n) (both ends); periodic grids: n cells, numpy.linspace(0, 1, n,
    endpoint=False). The scale is h_base / h."""
    axis = {"nodes": lambda n: np.linspace(0, 1, n), "periodic": lambda n: np.linspace(0, 1, n, endpoint=False)}[kind]
    for n in (points, base):
        xy = coordinates(2, n, kind, "cpu").double().numpy()
        x, y = np.meshgrid(axis(n), axis(n), indexing="ij")
        assert np.allclose(xy[1, 0], x, atol=1e-6) and np.allclose(xy[1, 1], y, atol=1e-6)
    h, h_base = np.diff(axis(points))[0], np.diff(axis(base))[0]
    assert grid_scale(points, base, kind) == pytest.approx(h_base / h)


def test_resampled_kernel_is_the_kernel_function_on_finer_taps_over_the_area_ratio() -> None:
    """A kernel that is a bilinear function f of the physical offset on [-1, 1]^2 is resampled exactly by
    bilinear interpolation through its end taps: at scale 2 the 9 x 9 kernel is f on numpy.linspace(-1, 1, 9)
    divided by the ratio of tap counts 81 / 25 (the quadrature weight h^2 shrinks by that much)."""
    f = lambda u, v: 1 + 2 * u - 3 * v + u * v  # noqa: E731
    resolution = Resolution(base=33, kind="nodes")
    conv = InterpConv2d(resolution, 1, 1, 5, padding=2, bias=False).double()
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(f(*np.meshgrid(np.linspace(-1, 1, 5), np.linspace(-1, 1, 5),
                                                          indexing="ij"))))
    resolution.set(65)
    expected = f(*np.meshgrid(np.linspace(-1, 1, 9), np.linspace(-1, 1, 9), indexing="ij")) * 25 / 81
    assert np.allclose(conv.resampled()[0].detach().numpy()[0, 0], expected, atol=1e-12)


def test_node_grid_resampling_is_exact_for_bilinear_fields() -> None:
    f = lambda x, y: 1 + x + 2 * y + x * y  # noqa: E731
    coarse = torch.from_numpy(f(*np.meshgrid(np.linspace(0, 1, 17), np.linspace(0, 1, 17), indexing="ij")))
    fine = f(*np.meshgrid(np.linspace(0, 1, 33), np.linspace(0, 1, 33), indexing="ij"))
    assert np.allclose(resample(coarse[None, None], 33, "nodes").numpy()[0, 0], fine, atol=1e-12)


def test_transposed_convolution_runs_at_its_training_grid_and_resamples_back() -> None:
    """A 17-node input at scale 2 is the bilinear refinement of a 9-node field: the wrapped layer must apply
    the pixel transposed convolution to that 9-node field (17 nodes out) and refine its output to 33 nodes."""
    torch.manual_seed(0)
    resolution = Resolution(base=33, kind="nodes")
    layer = InterpConvTranspose2d(resolution, 2, 3, 3, stride=2, padding=1).double()
    coarse = torch.randn(1, 2, 9, 9, dtype=torch.float64)
    fine = F.interpolate(coarse, size=(17, 17), mode="bilinear", align_corners=True)
    resolution.set(65)
    with torch.no_grad():
        expected = F.interpolate(F.conv_transpose2d(coarse, layer.weight, layer.bias, stride=2, padding=1),
                                 size=(33, 33), mode="bilinear", align_corners=True)
        assert torch.allclose(layer(fine), expected, atol=1e-12)


def test_vit_decoder_puts_each_token_on_its_own_patch() -> None:
    """Without the encoder, output pixel (i, j) is entry (i mod p) p + (j mod p) of the decoded token of patch
    (i // p, j // p)."""
    torch.manual_seed(0)
    patch, points = 4, 10
    model = ViT(patch, 8, 1, 2, 16, "nodes").double()
    model.encoder = torch.nn.Identity()
    a = torch.randn(1, points, points, dtype=torch.float64)
    with torch.no_grad():
        x = F.pad(torch.cat([a[:, None], coordinates(1, points, "nodes", "cpu").double()], 1), (0, 2, 0, 2))
        tokens = model.decode(model.embed(x)[0].permute(1, 2, 0)).numpy()
        out = model(a)[0].numpy()
    for i, j in np.ndindex(points, points):
        assert out[i, j] == pytest.approx(tokens[i // patch, j // patch, (i % patch) * patch + j % patch], abs=1e-12)

