"""transform_once: the DCT against scipy, the variance-preserving scales by Monte Carlo, our spectral layers
against neuralop's, the Burgers and Darcy solvers against their identities, and the Navier-Stokes reader on a
file in the FNO release's format."""

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.fft
import torch
import torch.nn.functional as F

from repro.core.errors import DataUnavailableError
from repro.papers.transform_once.data import NS_FILE, navier_stokes
from repro.papers.transform_once.models import (
    FNO1d,
    FNO2d,
    SpectralConv1d,
    T1_1d,
    T1_2d,
    dct,
    dct2,
    fno_spectral_scale,
    grid_1d,
    grid_2d,
    idct,
    idct2,
    t1_channel_scale,
)
from repro.papers.transform_once.pde import (
    burgers_initial_conditions,
    burgers_solve,
    darcy_coefficients,
    darcy_solve,
)
from repro.papers.transform_once.task import relative_l2


@pytest.mark.parametrize("n", [7, 16, 128])
def test_dct_matches_scipy_and_preserves_norm(n: int) -> None:
    x = torch.randn(4, 3, n, dtype=torch.float64)
    coefficients = dct(x)
    assert np.allclose(coefficients.numpy(), scipy.fft.dct(x.numpy(), type=2, norm="ortho"), atol=1e-12)
    assert torch.allclose(coefficients.norm(dim=-1), x.norm(dim=-1), atol=1e-12)  # Parseval
    assert np.allclose(idct(coefficients).numpy(), scipy.fft.idct(coefficients.numpy(), type=2, norm="ortho"))
    image = torch.randn(2, 9, 12, dtype=torch.float64)
    assert np.allclose(dct2(image).numpy(), scipy.fft.dctn(image.numpy(), type=2, norm="ortho", axes=(-2, -1)))
    assert torch.allclose(idct2(dct2(image)), image, atol=1e-12)


def test_vp_scale_preserves_variance_of_one_layer_and_naive_does_not() -> None:
    """White N(0, 1) input, one spectral layer (transform, keep m modes, mix c channels, inverse): the
    output variance equals the input's at the VP scale (Monte Carlo over 1e4 samples, +-5%)."""
    generator = torch.Generator().manual_seed(0)
    samples, width, points, modes = 10_000, 8, 128, 16
    x = torch.randn(samples, width, points, generator=generator, dtype=torch.float64)

    def dct_layer(scale: float) -> float:
        weights = scale * torch.randn(width, width, modes, generator=generator, dtype=torch.float64)
        kept = torch.einsum("bix,iox->box", dct(x)[..., :modes], weights)
        return float(idct(F.pad(kept, (0, points - modes))).var())

    def rfft_layer(scale: float) -> float:
        layer = SpectralConv1d(width, modes, scale).double()
        with torch.no_grad():
            layer.weight.copy_(scale * torch.randn(layer.weight.shape, generator=generator, dtype=torch.float64))
            return float(layer(x).var())

    assert dct_layer(t1_channel_scale("vp", width, points, modes)) == pytest.approx(1.0, rel=0.05)
    assert rfft_layer(fno_spectral_scale("vp", width, points, modes)) == pytest.approx(1.0, rel=0.05)
    assert dct_layer(t1_channel_scale("naive", width, points, modes)) < 1e-3
    assert rfft_layer(fno_spectral_scale("naive", width, points, modes)) < 1e-3


def test_spectral_convolutions_match_neuralop() -> None:
    """neuralop's SpectralConv (orthonormal FFT, no bias) with our weights gives our layers' outputs.
    neuralop counts modes over the full spectrum: n_modes = 2(m - 1) keeps our m rfft modes in 1D; in 2D
    n_modes = (2 m1, 2 m2 - 2) keeps frequencies -m1..m1-1 along x (centred) and 0..m2-1 along y."""
    spectral_convolution = pytest.importorskip("neuralop.layers.spectral_convolution")
    torch.manual_seed(0)
    ours = SpectralConv1d(4, 9, 0.3)
    theirs = spectral_convolution.SpectralConv(4, 4, n_modes=(16,), bias=False, fft_norm="ortho")
    with torch.no_grad():
        theirs.weight.tensor.copy_(torch.view_as_complex(ours.weight))
    x = torch.randn(3, 4, 64)
    assert torch.allclose(ours(x), theirs(x), atol=1e-5)



def test_neuralop_fno_is_an_independent_baseline_of_the_same_size_class() -> None:
    """neuralop's FNO (n_modes 16, hidden 32) runs on our Burgers inputs and has the same spectral
    parameter count per layer as ours with 9 rfft modes."""
    models = pytest.importorskip("neuralop.models")
    fno = models.FNO(n_modes=(16,), hidden_channels=32, in_channels=1, out_channels=1, n_layers=4)
    out = fno(torch.randn(2, 1, 128))
    assert out.shape == (2, 1, 128) and torch.isfinite(out).all()
    spectral = sum(p.numel() for n, p in fno.named_parameters() if "convs" in n and "weight" in n)
    assert spectral == 4 * 32 * 32 * 9  # complex weights, 9 rfft modes per layer


def test_t1_head_on_kept_modes_equals_head_on_the_padded_spectrum() -> None:
    """The official T1 applies the head to the whole spectrum; ours to the m kept modes then zero-fills."""
    torch.manual_seed(0)
    model = T1_1d(width=8, modes=6, layers=2, points=32)
    with torch.no_grad():
        model.head.first.normal_()
        model.head.second.normal_()
        a = torch.randn(5, 32)
        padded = F.pad(model.hidden(a)[-1], (0, 32 - 6))
        assert torch.allclose(model(a), idct(model.head(padded)), atol=1e-6)


def test_burgers_initial_condition_spectrum() -> None:
    u0 = burgers_initial_conditions(4000, 64, np.random.default_rng(0))
    assert abs(u0.mean(axis=1)).max() < 1e-12  # zero mean mode
    # E|c_k|^2 = sd_k^2 with c_k the coefficient of e^{2 pi i k x}: the variance of sqrt(2) Re, Im parts.
    coefficients = np.fft.rfft(u0, axis=1) / 64
    k = np.arange(1, 4)
    expected = (25.0 / (4 * math.pi ** 2 * k ** 2 + 25.0)) ** 2
    assert np.allclose((abs(coefficients[:, 1:4]) ** 2).mean(0), expected, rtol=0.1)


def test_burgers_energy_identity_and_self_convergence() -> None:
    """d/dt (1/2)||u||^2 = -nu ||u_x||^2, and the 256-point solve agrees with a 512-point, dt / 2 solve."""
    rng = np.random.default_rng(1)
    u0 = burgers_initial_conditions(3, 512, rng)
    nu, dt = 0.1, 5e-3
    path = burgers_solve(u0[:, ::2], nu, 0.2, dt / 4, snapshots=160)
    energy = 0.5 * (path ** 2).mean(-1)
    rate = (energy[2:] - energy[:-2]) / (2 * dt / 4)
    gradient = np.fft.irfft(2j * math.pi * np.fft.rfftfreq(256, 1 / 256) * np.fft.rfft(path[1:-1]), n=256)
    dissipation = -nu * (gradient ** 2).mean(-1)
    # From t = 0.05 on (the fastest initial modes have decayed; the centred difference is then accurate).
    assert np.allclose(rate[40:], dissipation[40:], rtol=1e-3)
    coarse = burgers_solve(u0[:, ::2], nu, 1.0, dt)[-1]
    fine = burgers_solve(u0, nu, 1.0, dt / 2)[-1][:, ::2]
    assert np.linalg.norm(coarse - fine) / np.linalg.norm(fine) < 1e-4


def test_darcy_solver_is_second_order_on_a_manufactured_solution() -> None:
    errors = []
    for n in (9, 17, 33):
        x = np.linspace(0, 1, n)
        exact = np.outer(np.sin(math.pi * x), np.sin(math.pi * x))
        errors.append(abs(darcy_solve(np.ones((n, n)), 2 * math.pi ** 2 * exact) - exact).max())
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    assert np.all((ratios > 3.5) & (ratios < 4.5))


def test_darcy_flux_is_conserved_with_a_two_valued_coefficient() -> None:
    """Total boundary outflow equals the integrated source (f = 1 over the unit square), coefficient jumps
    included; the coefficient takes only the two values."""
    a = darcy_coefficients(1, 33, np.random.default_rng(2))[0]
    assert set(np.unique(a)) == {3.0, 12.0}
    u = darcy_solve(a)
    h = 1 / 32
    face = lambda p, q: 2 * p * q / (p + q)  # noqa: E731
    outflow = (face(a[1, 1:-1], a[0, 1:-1]) * u[1, 1:-1]).sum() + (face(a[-2, 1:-1], a[-1, 1:-1]) * u[-2, 1:-1]).sum()
    outflow += (face(a[1:-1, 1], a[1:-1, 0]) * u[1:-1, 1]).sum() + (face(a[1:-1, -2], a[1:-1, -1]) * u[1:-1, -2]).sum()
    assert outflow / h * h == pytest.approx(31 * 31 * h * h, rel=1e-9)


def _write_ns_file(path: Path, samples: int, points: int = 64, steps: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """A MATLAB v7.3 file as HDF5 with the FNO release's layout: 'a' (x, y, N) and 'u' (T, y, x, N) stored
    transposed, as MATLAB writes column-major arrays. Returns a (N, x, y) and u (N, x, y, T)."""
    import h5py

    rng = np.random.default_rng(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    a = rng.standard_normal((samples, points, points))
    u = rng.standard_normal((samples, points, points, steps))
    with h5py.File(path, "w") as f:
        f["a"] = a.transpose(2, 1, 0)
        f["u"] = u.transpose(3, 2, 1, 0)
    return a, u


def write_dry_data(data_dir: Path) -> None:
    """FNO's Navier-Stokes file (14 samples) where scale=dry reads it."""
    _write_ns_file(data_dir / "navier_stokes" / NS_FILE, samples=14)


def test_navier_stokes_reader(tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"train": 3, "val": 1, "test": 2, "target_time": 50})
    a, u = _write_ns_file(tmp_path / "navier_stokes" / NS_FILE, samples=9, points=8, steps=50)
    splits = navier_stokes(cfg, tmp_path, "cpu")
    assert splits["train"][0].shape == (3, 8, 8) and splits["test"][1].shape == (2, 8, 8)
    # train and validation from the start, test from the end of the file; target = the last time step (t = 50)
    assert np.allclose(splits["val"][0].numpy(), a[3:4]) and np.allclose(splits["test"][0].numpy(), a[-2:])
    assert np.allclose(splits["test"][1].numpy(), u[-2:, ..., 49])
    cfg.train = 10
    with pytest.raises(DataUnavailableError, match="samples"):
        navier_stokes(cfg, tmp_path, "cpu")
    with pytest.raises(DataUnavailableError, match=NS_FILE):
        navier_stokes(cfg, tmp_path / "missing", "cpu")


def test_burgers_solver_matches_the_cole_hopf_solution() -> None:
    """Cole-Hopf: u = -2 nu phi_x / phi solves u_t + u u_x = nu u_xx when phi_t = nu phi_xx. With
    phi = 2 + cos(2 pi x) exp(-4 pi^2 nu t), u = 4 pi nu sin(2 pi x) e / (2 + cos(2 pi x) e), e = exp(-4 pi^2 nu t)."""
    nu, points = 0.1, 256
    x = np.arange(points) / points

    def exact(t: float) -> np.ndarray:
        e = math.exp(-4 * math.pi ** 2 * nu * t)
        return 4 * math.pi * nu * np.sin(2 * math.pi * x) * e / (2 + np.cos(2 * math.pi * x) * e)

    path = burgers_solve(exact(0.0)[None], nu, 0.2, 1e-3, snapshots=2)
    assert abs(path[0, 0] - exact(0.1)).max() < 1e-8 * abs(exact(0.1)).max()
    assert abs(path[1, 0] - exact(0.2)).max() < 1e-8 * abs(exact(0.2)).max()


def test_t1_layer_is_the_residual_of_mode_mixing_after_channel_mixing() -> None:
    """One T1 layer against explicit sums:
    out[b, c, y] = z[b, c, y] + sum_x S[x, y, c] gelu(sum_i z[b, i, x] C[i, c, x])."""
    torch.manual_seed(0)
    layer = T1_1d(width=3, modes=5, layers=1, points=16).layers[0].double()
    z = torch.randn(2, 3, 5, dtype=torch.float64)
    C, S = layer.channel_mixing.detach().numpy(), layer.mode_mixing.detach().numpy()
    zn = z.numpy()
    mixed = np.zeros((2, 3, 5))
    for b, c, x in np.ndindex(2, 3, 5):
        mixed[b, c, x] = sum(zn[b, i, x] * C[i, c, x] for i in range(3))
    mixed = F.gelu(torch.from_numpy(mixed)).numpy()
    expected = zn.copy()
    for b, c, y in np.ndindex(2, 3, 5):
        expected[b, c, y] += sum(S[x, y, c] * mixed[b, c, x] for x in range(5))
    assert np.allclose(layer(z).detach().numpy(), expected, atol=1e-12)


def test_t1_keeps_the_lowest_dct_modes_and_inverts_once() -> None:
    """With zero channel mixing every layer is the identity (gelu(0) = 0), so the last hidden state is the m
    lowest modes (0..m-1) of scipy's orthonormal DCT of the lift, and the output is scipy's inverse DCT of the
    head's output placed on those modes with zeros above."""
    torch.manual_seed(0)
    points, modes = 32, 6
    model = T1_1d(width=4, modes=modes, layers=2, points=points).double()
    with torch.no_grad():
        for layer in model.layers:
            layer.channel_mixing.zero_()
        model.head.first.normal_()
        model.head.second.normal_()
        a = torch.randn(3, points, dtype=torch.float64)
        lifted = model.hidden(a)[0].numpy()
        kept = scipy.fft.dct(lifted, type=2, norm="ortho")[..., :modes]
        assert np.allclose(model.hidden(a)[-1].numpy(), kept, atol=1e-12)
        head = model.head(torch.from_numpy(kept)).numpy()
        spectrum = np.concatenate([head, np.zeros((3, points - modes))], axis=-1)
        assert np.allclose(model(a).numpy(), scipy.fft.idct(spectrum, type=2, norm="ortho"), atol=1e-12)


def test_2d_vp_scale_preserves_variance() -> None:
    """The 2D T1 layer's channel mixing at the VP scale: white N(0, 1) input through dct2, keep m x m modes,
    mix channels, inverse: output variance 1 (Monte Carlo; the weight draw adds about 2% spread, tolerance 10%)."""
    generator = torch.Generator().manual_seed(0)
    width, points, modes = 8, 16, 8
    torch.manual_seed(0)
    weights = T1_2d(width, modes, 1, points).layers[0].channel_mixing.detach().double()
    x = torch.randn(150, width, points, points, generator=generator, dtype=torch.float64)
    kept = torch.einsum("bixy,ioxy->boxy", dct2(x)[..., :modes, :modes], weights)
    assert float(idct2(F.pad(kept, (0, points - modes, 0, points - modes))).var()) == pytest.approx(1.0, rel=0.1)


def test_relative_l2_is_per_sample_over_the_grid() -> None:
    rng = np.random.default_rng(0)
    prediction, target = rng.standard_normal((4, 3, 5)), rng.standard_normal((4, 3, 5))
    expected = [np.linalg.norm(p - t) / np.linalg.norm(t) for p, t in zip(prediction, target)]
    got = relative_l2(torch.from_numpy(prediction), torch.from_numpy(target))
    assert np.allclose(got.numpy(), expected, atol=1e-12)


def test_burgers_nonlinear_term_follows_the_two_thirds_rule() -> None:
    """One tiny inviscid step from u0 = cos 6 pi x + cos 8 pi x + cos(20 pi x) / 2 on 24 points: the tendency
    (u(dt) - u0) / dt is -P(u u_x), the nonlinear term of the modes |k| < 24 / 3 = 8 projected on those modes.
    Mode 10 is left out of the product; of -(u^2 / 2)_x of the two low modes (modes 1, 6, 7, 8 by product to sum)
    mode 8 is cut: closed form pi sin 2 pi x + 3 pi sin 12 pi x + 7 pi sin 14 pi x. The 1/2 rule would cut modes 6
    and 7; no truncation would keep mode 8 and let mode 10 in (its products with modes 4 and 10, at 14 and 20,
    alias onto 10 and 4 on this grid)."""
    x = np.arange(24) / 24
    u0 = np.cos(6 * np.pi * x) + np.cos(8 * np.pi * x) + 0.5 * np.cos(20 * np.pi * x)
    dt = 1e-7
    tendency = (burgers_solve(u0[None], nu=0.0, t_final=dt, dt=dt)[-1, 0] - u0) / dt
    expected = np.pi * np.sin(2 * np.pi * x) + 3 * np.pi * np.sin(12 * np.pi * x) + 7 * np.pi * np.sin(14 * np.pi * x)
    np.testing.assert_allclose(tendency, expected, atol=1e-3)


@pytest.mark.parametrize("dims", [1, 2])
def test_fno_block_is_the_official_residual_form(dims: int) -> None:
    """kairos' NeuralOperator1d/2d layer is act(K u + u + W u): with K = 0 and W = 0 every layer is u -> GELU(u),
    so the model equals the head applied to GELU iterated on the lift."""
    torch.manual_seed(0)
    model = (FNO1d(width=5, modes=4, layers=3, points=16) if dims == 1 else FNO2d(width=5, modes=3, layers=3)).double()
    with torch.no_grad():
        for spectral, pointwise in zip(model.spectral, model.pointwise):
            for weight in spectral.parameters():
                weight.zero_()
            pointwise.weight.zero_()
            pointwise.bias.zero_()
        a = torch.randn((2, 16) if dims == 1 else (2, 8, 8), dtype=torch.float64)
        grid = grid_1d(2, 16, "cpu") if dims == 1 else grid_2d(2, 8, 8, "cpu")
        u = model.lift(torch.cat([a.unsqueeze(-1), grid.double()], -1))
        for _ in range(3):
            u = F.gelu(u)
        assert torch.allclose(model(a), model.head(u).squeeze(-1), atol=1e-12)
