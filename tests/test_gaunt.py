"""Gaunt tensor products against independent oracles: sympy's Gaunt coefficients and 3j symbols, scipy's
complex harmonics, e3nn's harmonics, sphere grids and Wigner D matrices, brute-force convolution, pointwise
products on the sphere, exact quadrature of products of harmonics."""

import functools
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
from repro.papers.gaunt import benchmark, harmonics, operations, products
from repro.papers.gaunt.task import CONVOLUTIONS, MANY_BODY, units, validate

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


@functools.cache
def sympy_real_gaunt(lmax_in: int, lmax_out: int) -> np.ndarray:
    """The real Gaunt table from sympy's complex gaunt(l1, l2, l3, m1, m2, m3) (integral of three complex
    Y_l^m, Condon-Shortley phase) carried to e3nn's real basis by U: ((lmax_in+1)^2, (lmax_in+1)^2, (lmax_out+1)^2)."""
    xyz = random_points(200, 0)
    basis = [complex_to_e3nn(degree, xyz) for degree in range(max(lmax_in, lmax_out) + 1)]
    n_in, n_out = (lmax_in + 1) ** 2, (lmax_out + 1) ** 2
    table = np.zeros((n_in, n_in, n_out))
    for l1 in range(lmax_in + 1):
        for l2 in range(lmax_in + 1):
            for l3 in range(lmax_out + 1):
                exact = np.zeros((2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1))
                for m1 in range(-l1, l1 + 1):
                    for m2 in range(-l2, l2 + 1):
                        m3 = -m1 - m2
                        if abs(m3) <= l3:
                            exact[m1 + l1, m2 + l2, m3 + l3] = float(gaunt(l1, l2, l3, m1, m2, m3))
                real = np.einsum("ia,jb,kc,abc->ijk", basis[l1], basis[l2], basis[l3], exact)
                assert np.abs(real.imag).max() < 1e-12
                table[l1 * l1:(l1 + 1) ** 2, l2 * l2:(l2 + 1) ** 2, l3 * l3:(l3 + 1) ** 2] = real.real
    return table


def test_real_gaunt_equals_sympy_gaunt_up_to_degree_4() -> None:
    """Every real Gaunt coefficient with l1, l2, l3 <= 4 equals sympy's, carried to e3nn's real basis."""
    ours = harmonics.real_gaunt_table(4, 4).numpy()
    assert np.abs(ours - sympy_real_gaunt(4, 4)).max() < 1e-12


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


def unit_directions(n: int, seed: int) -> torch.Tensor:
    return random_points(n, seed)


@pytest.mark.parametrize("lmax", [1, 2])
def test_convolution_routes_equal_the_sympy_gaunt_contraction(lmax: int) -> None:
    """z_k = sum_ij G_ijk x_i Y_j(r) with G from sympy's Gaunt coefficients: every convolution route (e3nn CG,
    eSCN's SO(2) route, sphere grid, 2D Fourier) and the dense reference, for random features and directions
    (one of them on the polar axis, where the eSCN angles are degenerate)."""
    gen = torch.Generator().manual_seed(10 + lmax)
    x = torch.randn(6, 3, (lmax + 1) ** 2, generator=gen)
    directions = torch.cat([unit_directions(5, lmax), torch.tensor([[0.0, 1.0, 0.0]])])
    y = operations.edge_harmonics(lmax, directions)
    oracle = torch.einsum("eci,ijk,ej->eck", x, torch.tensor(sympy_real_gaunt(lmax, 2 * lmax)), y)
    routes = {name: cls(lmax) for name, cls in CONVOLUTIONS.items()}
    for name, route in routes.items():
        assert (route(x, directions) - oracle).abs().max() < 1e-12 * oracle.abs().max(), name
    assert (benchmark.convolution_reference(x, y, lmax) - oracle).abs().max() < 1e-12 * oracle.abs().max()


def test_escn_rotations_are_wigner_d() -> None:
    """The SO(2) route's closed-form rotation about the polar axis y and its fixed J give D(R_y(t)) and
    D(R_x(b)) = J D(R_y(b)) J^T, against D by exact quadrature of e3nn's harmonics at e3nn's matrices."""
    lmax = 3
    route = operations.ConvolutionSO2(lmax)
    eye = torch.eye((2 * lmax + 1) ** 2)[None]  # rows are basis vectors: row @ D^T = D's column
    for t in (0.3, -1.1):
        angle = torch.tensor([t])
        by_formula = route.rotate_y(eye, angle, "out")[0].T
        exact = harmonics.rotation_matrix_of_harmonics(2 * lmax, o3.matrix_y(torch.tensor(t)))
        assert (by_formula - exact).abs().max() < 1e-12
        about_x = route.apply_j(route.rotate_y(route.apply_j(eye, 2 * lmax, True), angle, "out"), 2 * lmax, False)[0].T
        exact_x = harmonics.rotation_matrix_of_harmonics(2 * lmax, o3.matrix_x(torch.tensor(t)))
        assert (about_x - exact_x).abs().max() < 1e-12


def iterated_grid_product(x: torch.Tensor, lmax: int, correlation: int) -> torch.Tensor:
    """sum_nu P_L(f^nu), each power by nu - 1 pointwise products on a fine e3nn S2 grid (not the grid sizes of
    the route under test), projected back to degrees <= L."""
    res = (2 * (correlation + 1) * lmax + 6, 2 * (correlation + 1) * lmax + 5)
    to_grid = o3.ToS2Grid(lmax, res, normalization="integral")
    from_grid = o3.FromS2Grid(res, lmax, normalization="integral")
    f = to_grid(x)
    power, projected = f, x.clone()
    for _ in range(2, correlation + 1):
        power = power * f
        projected = projected + from_grid(power)
    return projected


@pytest.mark.parametrize(("lmax", "correlation"), [(1, 5), (2, 3), (3, 2)])
def test_many_body_routes_equal_iterated_sphere_grid_products(lmax: int, correlation: int) -> None:
    """MACE's CG-built contraction, the sphere-grid route, the divide-and-conquer FFT route and the quadrature
    reference all give sum_nu P_L(f^nu) as iterated pointwise products on a fine e3nn grid."""
    gen = torch.Generator().manual_seed(20 + lmax)
    x = torch.randn(3, 2, (lmax + 1) ** 2, generator=gen)
    oracle = iterated_grid_product(x, lmax, correlation)
    for name, cls in MANY_BODY.items():
        z = cls(lmax, correlation)(x)
        assert (z - oracle).abs().max() < 1e-12 * oracle.abs().max(), name
    assert (benchmark.many_body_reference(x, lmax, correlation) - oracle).abs().max() < 1e-12 * oracle.abs().max()


def test_mace_coefficients_are_integrals_of_harmonics() -> None:
    """U_nu[k, i_1..i_nu] built by iterated CG couplings = int Y_k Y_i1 ... Y_inu by exact quadrature; U_2 is the
    sympy Gaunt table (degrees <= 2)."""
    lmax, correlation = 1, 3
    tensors = operations.generalized_gaunt(lmax, correlation, torch.float64)
    alpha, beta, weights = harmonics.sphere_quadrature((correlation + 1) * lmax)
    y = harmonics.real_harmonics(lmax, alpha, beta)
    exact = torch.einsum("q,qk,qa,qb,qc->kabc", weights, y, y, y, y)
    assert (tensors[2] - exact).abs().max() < 1e-13
    gaunt_table = torch.tensor(sympy_real_gaunt(2, 2))
    u2 = operations.generalized_gaunt(2, 2, torch.float64)[1]  # (k, i, j)
    assert (u2 - gaunt_table.permute(2, 0, 1)).abs().max() < 1e-12


def test_fourier_product_is_the_linear_convolution_of_spectra() -> None:
    """Padding two half spectra of different sizes to the product's torus gives the full 2D convolution."""
    gen = torch.Generator().manual_seed(4)
    a, b = (torch.randn(n, n, generator=gen) for n in (5, 9))  # real grid values: Hermitian spectra
    fa, fb = torch.fft.rfft2(a, norm="forward"), torch.fft.rfft2(b, norm="forward")
    product = products.fourier_product(fa, fb, 13)  # (13, 7)
    full = [torch.fft.fftshift(torch.fft.fft2(v, norm="forward")).numpy() for v in (a, b)]
    brute = signal.convolve2d(*full)  # u, v in -6..6
    ours = torch.fft.fftshift(product, dim=0).numpy()
    assert np.abs(ours - brute[:, 6:]).max() < 1e-12


def test_config_errors_name_the_fix() -> None:
    cfg = small_config()
    cfg.methods = ["dense", "fft", "nope"]
    with pytest.raises(ConfigError, match="unknown"):
        validate(cfg)
    cfg.methods = ["cg", "fft"]
    with pytest.raises(ConfigError, match="dense"):
        validate(cfg)
    cfg.methods = ["dense", "fft"]
    cfg.manybody.methods = ["mace", "grid"]
    with pytest.raises(ConfigError, match="fft"):
        validate(cfg)


def test_time_products_times_every_route_on_the_same_inputs() -> None:
    from repro.core.context import Stopwatch

    x, y = (torch.randn(2, 2, 4, dtype=torch.float64) for _ in range(2))
    built = {name: cls(1) for name, cls in METHODS.items()}
    seconds = benchmark.time_products(built, (x, y), repeats=2, min_time_s=1e-4, stopwatch=lambda: Stopwatch("cpu"))
    assert set(seconds) == set(METHODS)
    assert all(0 < t < 1 for t in seconds.values())


def small_config() -> OmegaConf:
    return OmegaConf.create({
        "methods": ["dense", "cg", "grid", "fft"], "benchmark": {"dtype": "float64", "lmax": [1, 2, 3]},
        "convolution": {"lmax": [1, 2, 3], "methods": ["cg", "escn", "grid", "fft"]},
        "manybody": {"lmax": [1, 2, 3], "correlation": 3, "correlations": [2, 3, 4], "correlation_lmax": 1,
                     "methods": ["mace", "grid", "fft"]}})


def test_grid_has_units_per_degree_and_two_many_body_sweeps() -> None:
    grid = units(small_config())
    assert [(u.experiment, u.settings["lmax"], u.settings.get("correlation"), u.stochastic) for u in grid] == [
        ("identity", 1, None, False), ("identity", 2, None, False), ("identity", 3, None, False),
        ("products", 1, None, True), ("products", 2, None, True), ("products", 3, None, True),
        ("convolution", 1, None, True), ("convolution", 2, None, True), ("convolution", 3, None, True),
        ("manybody", 1, 3, True), ("manybody", 2, 3, True), ("manybody", 3, 3, True),  # L sweep at nu = 3
        ("manybody", 1, 2, True), ("manybody", 1, 4, True)]  # nu sweep at L = 1; (1, 3) once


def write_dry_data(data_dir: Path) -> None:
    """The paper scale reads no file: its inputs are random harmonics drawn per unit and its constants (Gaunt
    tables, the 2D Fourier conversion) are built by quadrature in the run. Nothing to write; scale=dry runs the
    paper scale's own products and dtype at small L and batch."""
    data_dir.mkdir(parents=True, exist_ok=True)


def test_identity_errors_vanish_on_the_gaunt_table_and_see_a_rescaled_block() -> None:
    """On the exact table every residual is round-off; scaling one parity-even block by 1.1 leaves G = 1.1 c W there,
    so the residual ||G - c W|| / ||G|| is 0.1 / 1.1; an entry planted on an odd path is reported as it is."""
    table = harmonics.real_gaunt_table(2, 4)
    errors = benchmark.identity_errors(table, 2)
    assert max(errors.values()) < 1e-12
    table[harmonics.degree_slice(1), harmonics.degree_slice(2), harmonics.degree_slice(3)] *= 1.1
    table[harmonics.degree_slice(1), harmonics.degree_slice(1), harmonics.degree_slice(1)][0, 2, 1] = 0.25  # 1 x 1 -> 1
    errors = benchmark.identity_errors(table, 2)
    assert errors["identity_residual"] == pytest.approx(0.1 / 1.1, rel=1e-10)
    assert errors["odd_path_max"] == 0.25
    assert errors["factor_error"] < 1e-12


def test_equivariance_error_uses_the_wigner_d_of_the_rotation() -> None:
    """harmonic_rotations gives e3nn's D(R) on degrees <= L and <= 2L; the Fourier product's measured equivariance
    error with it is round-off, and a non-equivariant map (the products' first input, padded) is flagged."""
    lmax = 2
    torch.manual_seed(5)
    rotation = o3.rand_matrix()
    d_in, d_out = benchmark.harmonic_rotations(lmax, rotation)
    assert (d_in - harmonics.sphere_irreps(lmax).D_from_matrix(rotation)).abs().max() < 1e-9
    assert (d_out - harmonics.sphere_irreps(2 * lmax).D_from_matrix(rotation)).abs().max() < 1e-9
    gen = torch.Generator().manual_seed(6)
    x, y = (torch.randn(4, (lmax + 1) ** 2, generator=gen) for _ in range(2))
    rotated = (x @ d_in.T, y @ d_in.T)
    assert benchmark.equivariance_error(products.FourierGaunt(lmax), (x, y), rotated, d_out) < 1e-12

    def padded_first(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.pad(x, (0, (2 * lmax + 1) ** 2 - x.shape[-1])) + 1.0

    assert benchmark.equivariance_error(padded_first, (x, y), rotated, d_out) > 0.1
