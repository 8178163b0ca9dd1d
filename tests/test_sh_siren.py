"""SH-Siren: real spherical harmonics against scipy.special.sph_harm_y and by quadrature, the checkerboard
against scikit-learn's haversine BallTree, the Fibonacci lattice, the encodings' feature counts and the Siren
initialisation."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.special import sph_harm_y
from sklearn.neighbors import BallTree

from repro.papers.sh_siren.data import (
    bandlimited_coefficients,
    bandlimited_values,
    checkerboard_labels,
    fibonacci_lattice,
    uniform_sphere,
)
from repro.papers.sh_siren.encodings import encode, real_spherical_harmonics
from repro.papers.sh_siren.models import FCNet, Siren


def write_dry_data(data_dir: Path) -> None:
    """The paper-scale checkerboard is generated in code: no files to write."""
    data_dir.mkdir(parents=True, exist_ok=True)


def lattice(n: int) -> np.ndarray:
    lon, lat, _ = fibonacci_lattice(n)
    return np.stack([lon, lat], 1)


@pytest.mark.parametrize("legendre", [6, 40])
def test_real_harmonics_match_scipy(legendre: int) -> None:
    points = uniform_sphere(50, seed=3)
    ours = real_spherical_harmonics(torch.from_numpy(points), legendre).numpy()
    # the official convention, mapped explicitly: polar angle from the SOUTH pole, azimuth lon + 180;
    # sph_harm_y(n, m, theta, phi) takes the degree first and the polar angle before the azimuth
    theta, phi = np.radians(points[:, 1] + 90), np.radians(points[:, 0] + 180)
    column = 0
    for degree in range(legendre):
        for m in range(-degree, degree + 1):
            y = sph_harm_y(degree, abs(m), theta, phi)
            expected = y.real if m == 0 else math.sqrt(2) * (y.real if m > 0 else y.imag)
            np.testing.assert_allclose(ours[:, column], expected, atol=1e-9, err_msg=f"l={degree}, m={m}")
            column += 1
    assert ours.shape == (50, legendre**2)


def test_harmonics_are_orthonormal_by_quadrature() -> None:
    n = 10000
    harmonics = real_spherical_harmonics(torch.from_numpy(lattice(n)), 10).numpy()
    gram = harmonics.T @ harmonics * 4 * math.pi / n
    assert np.abs(gram - np.eye(100)).max() < 5e-3


def test_known_values_at_the_poles() -> None:
    """At the north pole (theta = pi from the south pole) only m = 0 survives: Y_l0 = (-1)^l sqrt((2l+1)/4pi)."""
    y = real_spherical_harmonics(torch.tensor([[37.0, 90.0]], dtype=torch.float64), 5)[0].numpy()
    expected = np.zeros(25)
    for degree in range(5):
        expected[degree * degree + degree] = (-1) ** degree * math.sqrt((2 * degree + 1) / (4 * math.pi))
    np.testing.assert_allclose(y, expected, atol=1e-12)


def test_fibonacci_lattice_follows_the_official_formula() -> None:
    lon, lat, i = fibonacci_lattice(200)
    assert i[0] == -100 and i[-1] == 99
    assert lat[0] == pytest.approx(math.degrees(math.asin(-200 / 201)))
    phi = (1 + math.sqrt(5)) / 2
    expected = (-100 % phi) * 360 / phi
    assert lon[0] == pytest.approx(expected - 360 if expected > 180 else expected)
    assert np.all(np.abs(lon) <= 180)
    # equal area: sin(lat) is evenly spaced
    assert np.allclose(np.diff(np.sin(np.radians(lat))), 2 / 201)


def test_uniform_points_are_uniform_in_sin_latitude() -> None:
    z = np.sin(np.radians(uniform_sphere(20000, seed=0)[:, 1]))
    histogram, _ = np.histogram(z, bins=10, range=(-1, 1))
    assert np.abs(histogram / 2000 - 1).max() < 0.1


def test_checkerboard_labels_match_a_haversine_ball_tree() -> None:
    points = uniform_sphere(3000, seed=1)
    lon, lat, i = fibonacci_lattice(200)
    tree = BallTree(np.radians(np.stack([lat, lon], 1)), metric="haversine")
    _, nearest = tree.query(np.radians(points[:, ::-1]), k=1)
    assert np.array_equal(checkerboard_labels(points, 200, 16), np.mod(i, 16)[nearest[:, 0]])


def test_encoding_feature_counts_and_grid_values() -> None:
    points = torch.tensor([[30.0, -45.0], [-120.0, 80.0]])
    counts = {"direct": 2, "cartesian3d": 3, "wrap": 4, "grid": 64, "spherec": 96, "spherecplus": 192,
              "sphericalharmonics": 144}
    for name, count in counts.items():
        assert encode(points, name, legendre=12, frequency_num=16).shape == (2, count), name
    grid = encode(points, "grid", frequency_num=2, min_radius=10.0, max_radius=360.0)
    # two scales, 10 and 360 degrees: sin(lon / 10) etc.
    np.testing.assert_allclose(grid[0, 0].item(), math.sin(30 / 10), atol=1e-6)
    np.testing.assert_allclose(grid[0, 7].item(), math.cos(-45 / 360), atol=1e-6)
    np.testing.assert_allclose(encode(points, "cartesian3d").norm(dim=1).numpy(), 1.0, atol=1e-6)


def test_bandlimited_function_needs_degree_sixteen() -> None:
    """A degree-15 function is a combination of the first 16^2 harmonics and not of the first 15^2."""
    points = lattice(1000)
    coefficients = bandlimited_coefficients(15, seed=0)
    values = bandlimited_values(points, coefficients)
    for legendre, exact in ((16, True), (15, False)):
        basis = real_spherical_harmonics(torch.from_numpy(points), legendre).numpy()
        fitted, *_ = np.linalg.lstsq(basis, values, rcond=None)
        residual = np.mean((basis @ fitted - values) ** 2) / values.var()
        assert (residual < 1e-12) == exact, (legendre, residual)


def test_siren_initialisation_ranges() -> None:
    torch.manual_seed(0)
    net = Siren(dim_in=225, hidden=128, dim_out=16, layers=2)
    first, second = net.hidden[0], net.hidden[1]
    assert first.w0 == 30.0 and second.w0 == 1.0
    assert first.linear.weight.abs().max() <= 1 / 225
    assert second.linear.weight.abs().max() <= math.sqrt(6 / 128)
    assert second.linear.weight.abs().max() > 0.9 * math.sqrt(6 / 128)


def test_bandlimited_coefficients_have_variance_one_over_l_plus_one_squared() -> None:
    """a_lm ~ N(0, (l + 1)^-2): the sample variance per degree over 400 draws of the 16^2 coefficients."""
    draws = np.stack([bandlimited_coefficients(15, seed) for seed in range(400)])
    for degree in (1, 5, 15):
        block = draws[:, degree * degree:(degree + 1) ** 2]
        assert block.var() == pytest.approx((degree + 1) ** -2.0, rel=0.15)


def test_spherec_at_one_radian_scale_is_the_unit_vector() -> None:
    """With the scale 180 / pi degrees (frequency 1 per radian), sphereC's three features are the point's
    Cartesian coordinates (z, x, y) = (sin lat, cos lat cos lon, cos lat sin lon), each kept twice."""
    points = uniform_sphere(20, seed=5)
    features = encode(torch.from_numpy(points), "spherec", frequency_num=2, min_radius=180 / math.pi,
                      max_radius=360.0).numpy()
    lon, lat = np.radians(points[:, 0]), np.radians(points[:, 1])
    unit = np.stack([np.sin(lat), np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon)], 1)
    np.testing.assert_allclose(features[:, 0:6:2], unit, atol=1e-6)
    np.testing.assert_allclose(features[:, 1:6:2], unit, atol=1e-6)


def test_siren_forward_is_sin_of_w0_times_the_affine_map() -> None:
    """Siren (lucidrains): h1 = sin(30 (W1 x + b1)), h2 = sin(1 (W2 h1 + b2)), out = W3 h2 + b3."""
    torch.manual_seed(0)
    net = Siren(dim_in=5, hidden=7, dim_out=3, layers=2).double()
    x = torch.randn(4, 5, dtype=torch.float64)
    W = [(layer.linear.weight.detach().numpy(), layer.linear.bias.detach().numpy())
         for layer in (*net.hidden, net.out)]
    h = np.sin(30 * (x.numpy() @ W[0][0].T + W[0][1]))
    h = np.sin(h @ W[1][0].T + W[1][1])
    np.testing.assert_allclose(net(x).detach().numpy(), h @ W[2][0].T + W[2][1], atol=1e-12)


def test_fcnet_is_residual() -> None:
    """FCNet (Mac Aodha et al. 2019) in eval mode: h0 = relu(A x), h_{k+1} = h_k + relu(B_k relu(C_k h_k)),
    out = E h4 (no bias)."""
    torch.manual_seed(0)
    net = FCNet(dim_in=4, hidden=6, dim_out=3).double().eval()
    x = torch.randn(5, 4, dtype=torch.float64)
    relu = lambda v: np.maximum(v, 0)  # noqa: E731
    first = net.features[0]
    h = relu(x.numpy() @ first.weight.detach().numpy().T + first.bias.detach().numpy())
    for block in net.features[2:]:
        inner, outer = block.block[0], block.block[3]
        g = relu(h @ inner.weight.detach().numpy().T + inner.bias.detach().numpy())
        h = h + relu(g @ outer.weight.detach().numpy().T + outer.bias.detach().numpy())
    np.testing.assert_allclose(net(x).detach().numpy(), h @ net.out.weight.detach().numpy().T, atol=1e-12)
