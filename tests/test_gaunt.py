"""Gaunt tensor products against independent oracles: sympy's Gaunt coefficients and 3j symbols, scipy's
complex harmonics, e3nn's harmonics and Wigner D matrices, brute-force convolution, pointwise products."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from e3nn import o3
from omegaconf import OmegaConf
from scipy import integrate, signal
from scipy.special import sph_harm_y
from sympy.physics.wigner import gaunt, wigner_3j

from repro.core.errors import ConfigError
from repro.papers.gaunt import benchmark, harmonics, products
from repro.papers.gaunt.task import units, validate

METHODS = {"dense": products.DenseGaunt, "cg": products.CGGaunt, "grid": products.SphereGridGaunt,
           "fft": products.FourierGaunt}


@pytest.fixture(autouse=True)
def float64():
    """e3nn builds its constants in the default dtype."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


def random_points(n: int, seed: int) -> torch.Tensor:
    xyz = torch.randn(n, 3, generator=torch.Generator().manual_seed(seed))
    return xyz / xyz.norm(dim=1, keepdim=True)


def complex_to_e3nn(degree: int, xyz: torch.Tensor) -> np.ndarray:
    """U with Y_real(s) = U Y_complex(s): e3nn's real harmonics (y-polar) against scipy's complex ones (z-polar),
    fitted by least squares on random points (the fit must be exact and U unitary)."""
    x, y, z = xyz.numpy().T
    theta, phi = np.arccos(z), np.arctan2(y, x)
    y_complex = np.stack([sph_harm_y(degree, m, theta, phi) for m in range(-degree, degree + 1)], -1)
    y_real = o3.spherical_harmonics(degree, xyz, normalize=True, normalization="integral").numpy()
    u_t, *_ = np.linalg.lstsq(y_complex, y_real.astype(complex), rcond=None)
    assert np.abs(y_complex @ u_t - y_real).max() < 1e-12, "e3nn's Y_l is not in the span of scipy's Y_l^m"
    assert np.abs(u_t.conj().T @ u_t - np.eye(2 * degree + 1)).max() < 1e-12, "basis change is not unitary"
    return u_t.T


def test_real_gaunt_equals_sympy_gaunt_up_to_degree_4() -> None:
    """Every real Gaunt coefficient with l1, l2, l3 <= 4 equals sympy's complex gaunt(l1, l2, l3, m1, m2, m3)
    (integral of three complex Y_l^m, Condon-Shortley phase) carried to e3nn's real basis by U."""
    lmax = 4
    table = harmonics.real_gaunt_table(lmax, lmax)
    xyz = random_points(200, 0)
    basis = [complex_to_e3nn(degree, xyz) for degree in range(lmax + 1)]
    for l1 in range(lmax + 1):
        for l2 in range(lmax + 1):
            for l3 in range(lmax + 1):
                exact = np.zeros((2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1))
                for m1 in range(-l1, l1 + 1):
                    for m2 in range(-l2, l2 + 1):
                        m3 = -m1 - m2
                        if abs(m3) <= l3:
                            exact[m1 + l1, m2 + l2, m3 + l3] = float(gaunt(l1, l2, l3, m1, m2, m3))
                real = np.einsum("ia,jb,kc,abc->ijk", basis[l1], basis[l2], basis[l3], exact)
                assert np.abs(real.imag).max() < 1e-12
                ours = harmonics.gaunt_block(table, l1, l2, l3).numpy()
                assert np.abs(ours - real.real).max() < 1e-12, (l1, l2, l3)


def test_real_harmonics_are_e3nns() -> None:
    xyz = random_points(100, 1)
    alpha, beta = o3.xyz_to_angles(xyz)
    ours = harmonics.real_harmonics(12, alpha, beta)
    e3nn = o3.spherical_harmonics(list(range(13)), xyz, normalize=True, normalization="integral")
    assert (ours - e3nn).abs().max() < 1e-12
    # beyond e3nn's l = 12 limit: its arbitrary-degree (symbolic) harmonics, for one degree
    degree = 14
    high = o3.spherical_harmonics_alpha_beta([degree], alpha, beta, normalization="integral")
    assert (harmonics.real_harmonics(degree, alpha, beta)[:, degree**2:] - high).abs().max() < 1e-10


def test_quadrature_is_exact() -> None:
    """Orthonormality of degrees <= 8 needs exactness at degree 16."""
    alpha, beta, weights = harmonics.sphere_quadrature(16)
    y = harmonics.real_harmonics(8, alpha, beta)
    assert (y.T @ (weights[:, None] * y) - torch.eye(81)).abs().max() < 1e-13


def test_rotation_matrix_matches_e3nn_wigner_d() -> None:
    torch.manual_seed(3)
    for _ in range(3):
        rotation = o3.rand_matrix()
        ours = harmonics.rotation_matrix_of_harmonics(6, rotation)
        theirs = harmonics.sphere_irreps(6).D_from_matrix(rotation)
        assert (ours - theirs).abs().max() < 1e-9  # e3nn's matrix_exp route is good to ~1e-10
        assert (ours @ ours.T - torch.eye(49)).abs().max() < 1e-13


def test_3j_zero_and_factor_against_sympy() -> None:
    for l1 in range(6):
        for l2 in range(6):
            for l3 in range(12):
                assert harmonics.wigner_3j_zero(l1, l2, l3) == pytest.approx(float(wigner_3j(l1, l2, l3, 0, 0, 0)),
                                                                             abs=1e-14)
    table = harmonics.real_gaunt_table(3, 6)
    for l1, l2, l3 in [(1, 1, 2), (2, 3, 3), (3, 3, 6), (2, 2, 0)]:
        block = harmonics.gaunt_block(table, l1, l2, l3)
        c = harmonics.gaunt_path_factor(l1, l2, l3)
        assert float(block.norm()) == pytest.approx(harmonics.gaunt_scale_closed_form(l1, l2, l3), rel=1e-12)
        assert (block - c * o3.wigner_3j(l1, l2, l3)).abs().max() < 1e-13


def test_half_sine_integral_against_quadrature() -> None:
    k = torch.arange(-6, 7)
    ours = products.half_sine_integral(k)
    for kk, value in zip(k.tolist(), ours):
        re = integrate.quad(lambda b, kk=kk: math.sin(b) * math.cos(kk * b), 0, math.pi)[0]
        im = integrate.quad(lambda b, kk=kk: math.sin(b) * math.sin(kk * b), 0, math.pi)[0]
        assert complex(value) == pytest.approx(complex(re, im), abs=1e-12)


@pytest.mark.parametrize("lmax", [1, 2])
def test_products_agree_and_are_equivariant(lmax: int) -> None:
    """All four routes give one product, and G(D x, D y) = D G(x, y) with e3nn's own D for a random rotation."""
    gen = torch.Generator().manual_seed(lmax)
    x, y = (torch.randn(5, 3, (lmax + 1) ** 2, generator=gen) for _ in range(2))
    built = {name: cls(lmax) for name, cls in METHODS.items()}
    reference = built["dense"](x, y)
    torch.manual_seed(lmax)
    rotation = o3.rand_matrix()
    d_in = harmonics.sphere_irreps(lmax).D_from_matrix(rotation)
    d_out = harmonics.sphere_irreps(2 * lmax).D_from_matrix(rotation)
    for name, product in built.items():
        z = product(x, y)
        assert z.shape == (5, 3, (2 * lmax + 1) ** 2)
        assert (z - reference).abs().max() < 1e-12 * reference.abs().max(), name
        rotated = product(x @ d_in.T, y @ d_in.T)
        assert (rotated - z @ d_out.T).abs().max() < 1e-9 * z.abs().max(), name


def test_fft_product_is_the_pointwise_product_on_the_sphere() -> None:
    """sum_k z_k Y_k(s) = f_x(s) f_y(s) at random points s (no Gaunt table involved)."""
    lmax = 5
    gen = torch.Generator().manual_seed(0)
    x, y = (torch.randn((lmax + 1) ** 2, generator=gen) for _ in range(2))
    z = products.FourierGaunt(lmax)(x, y)
    alpha, beta = o3.xyz_to_angles(random_points(50, 2))
    y_out = harmonics.real_harmonics(2 * lmax, alpha, beta)
    y_in = y_out[:, : (lmax + 1) ** 2]
    assert (y_out @ z - (y_in @ x) * (y_in @ y)).abs().max() < 1e-12


def test_fft_convolution_equals_brute_force() -> None:
    """The zero-padded FFT product returns the full 2D linear convolution of the Fourier coefficients."""
    lmax = 2
    module = products.FourierGaunt(lmax)
    gen = torch.Generator().manual_seed(1)
    x, y = (torch.randn((lmax + 1) ** 2, generator=gen) for _ in range(2))
    coeffs = products.torus_fourier_coefficients(lmax, 2 * lmax + 1)  # exact, FFT order
    centred = [torch.fft.fftshift(torch.einsum("i,iuv->uv", v.to(coeffs.dtype), coeffs)).numpy() for v in (x, y)]
    brute = signal.convolve2d(*centred)  # u, v in -2L..2L
    n = module.size
    f_x, f_y = (torch.fft.irfft2(module.to_fourier(v), s=(n, n), norm="forward") for v in (x, y))
    h = torch.fft.fftshift(torch.fft.rfft2(f_x * f_y, norm="forward"), dim=0).numpy()  # u centred, v >= 0
    assert np.abs(h - brute[:, 2 * lmax:]).max() < 1e-12


def test_gaunt_drops_the_cross_product() -> None:
    """1 x 1 -> 1 is an odd path: the CG product holds the cross product there, the Gaunt product nothing."""
    x, y = torch.zeros(4), torch.zeros(4)
    x[1:], y[1:] = torch.tensor([1.0, 2.0, 0.5]), torch.tensor([-0.3, 0.4, 2.0])
    z = products.CGGaunt(1)(x, y)
    assert z[1:4].abs().max() < 1e-15
    cross = o3.FullTensorProduct("1o", "1o", irrep_normalization="none", path_normalization="none")
    assert cross(x[1:], y[1:])[1:4].abs().max() > 0.1  # the 1x1->1 path of the full CG product
    assert harmonics.gaunt_path_factor(1, 1, 1) == pytest.approx(0.0, abs=1e-15)


def test_config_errors_name_the_fix() -> None:
    cfg = OmegaConf.create({"methods": ["dense", "fft", "nope"], "benchmark": {"dtype": "float64", "lmax": [1, 2, 3]}})
    with pytest.raises(ConfigError, match="unknown"):
        validate(cfg)
    cfg.methods = ["cg", "fft"]
    with pytest.raises(ConfigError, match="dense"):
        validate(cfg)


def test_time_products_times_every_route_on_the_same_inputs() -> None:
    from repro.core.context import Stopwatch

    x, y = (torch.randn(2, 2, 4, dtype=torch.float64) for _ in range(2))
    built = {name: cls(1) for name, cls in METHODS.items()}
    seconds = benchmark.time_products(built, x, y, repeats=2, min_time_s=1e-4, stopwatch=lambda: Stopwatch("cpu"))
    assert set(seconds) == set(METHODS)
    assert all(0 < t < 1 for t in seconds.values())


def test_grid_has_a_deterministic_identity_unit_and_a_products_unit_per_degree() -> None:
    cfg = OmegaConf.create({"methods": ["dense", "cg", "grid", "fft"],
                            "benchmark": {"dtype": "float64", "lmax": [1, 2, 3]}})
    grid = units(cfg)
    assert [(u.experiment, u.settings["lmax"], u.stochastic) for u in grid] == [
        ("identity", 1, False), ("identity", 2, False), ("identity", 3, False),
        ("products", 1, True), ("products", 2, True), ("products", 3, True)]


def write_dry_data(data_dir: Path) -> None:
    """The paper scale reads no file: its inputs are random harmonics drawn per unit and its constants (Gaunt
    tables, the 2D Fourier conversion) are built by quadrature in the run. Nothing to write; scale=dry runs the
    paper scale's own products and dtype at small L and batch."""
    data_dir.mkdir(parents=True, exist_ok=True)
