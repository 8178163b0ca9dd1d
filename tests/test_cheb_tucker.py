"""ChebTuck against independent oracles: numpy.polynomial.chebyshev, exact ranks of separable functions,
the HOSVD error bound, and the sinc-quadrature Gaussian sum against 1/r."""

from pathlib import Path

import numpy as np
import pytest
from numpy.polynomial import chebyshev

from repro.papers.cheb_tucker.chebtuck import (
    ChebTucker,
    chebtuck_from_cp,
    chebtuck_full,
    chebyshev_points,
    coefficient_tensor,
    interpolation_error,
    reduce_cp,
    values_to_coefficients,
)
from repro.papers.cheb_tucker.kernel import (
    CPTensor,
    ball_particles,
    cp_to_full,
    long_range_mask,
    newton_gaussian_sum,
    potential_cp,
)
from repro.papers.cheb_tucker.task import cell_centred_grid
from repro.papers.cheb_tucker.tucker import hooi, hosvd, tucker_to_full


def test_gaussian_sum_reproduces_newton_kernel() -> None:
    kernel = newton_gaussian_sum(0.2, -110, 45)
    r = np.geomspace(1e-3, np.sqrt(3), 2000)
    assert kernel.weights.size == 156
    assert np.max(np.abs(kernel(r) * r - 1)) <= 1e-9
    assert long_range_mask(kernel, 0.25).sum() == 117


def test_coefficients_match_numpy_chebfit() -> None:
    m = 17
    points = chebyshev_points(m)
    values = np.exp(np.sin(3 * points)) + points**2
    ours = values_to_coefficients(values)
    assert np.allclose(ours, chebyshev.chebfit(points, values, m - 1), atol=1e-10)
    assert np.allclose(chebyshev.chebval(points, ours), values, atol=1e-13)
    # the points themselves are numpy's second-kind points (numpy lists them ascending)
    assert np.allclose(np.sort(points), chebyshev.chebpts2(m))


def test_interpolation_exact_for_polynomials() -> None:
    coefficients = np.random.default_rng(0).normal(size=12)
    x_fine = np.linspace(-1, 1, 501)
    assert interpolation_error(lambda x: chebyshev.chebval(x, coefficients), 11, x_fine) < 1e-12
    assert interpolation_error(lambda x: chebyshev.chebval(x, coefficients), 9, x_fine) > 1e-3


def test_untruncated_chebtuck_equals_chebval3d() -> None:
    m = 9
    points = chebyshev_points(m)
    x, y, z = np.meshgrid(points, points, points, indexing="ij")
    values = np.exp(-(x - 0.2) ** 2 - 2 * (y + 0.1) ** 2 - z**2 * x)
    coefficients = coefficient_tensor(values)
    grid = np.linspace(-1, 1, 7)
    gx, gy, gz = np.meshgrid(grid, grid, grid, indexing="ij")
    oracle = chebyshev.chebval3d(gx, gy, gz, coefficients)
    full = ChebTucker(coefficients, [np.eye(m)] * 3).on_grid(grid)
    assert np.allclose(full, oracle, atol=1e-13)
    assert np.allclose(chebtuck_full(values, 0.0).on_grid(grid), oracle, atol=1e-12)


def separable_cp(points: np.ndarray) -> CPTensor:
    """f(x, y, z) = sin(2x) + y^3 + exp(z): three rank-one terms, each mode spanned by {1, g_a}: ranks (2, 2, 2)."""
    one = np.ones_like(points)
    factors = [np.stack([np.sin(2 * points), one, one], 1), np.stack([one, points**3, one], 1),
               np.stack([one, one, np.exp(points)], 1)]
    return CPTensor(factors, np.ones(3))


def test_exact_ranks_of_separable_functions() -> None:
    points = chebyshev_points(33)
    x, y, z = np.meshgrid(points, points, points, indexing="ij")
    assert chebtuck_full(np.sin(x) * np.cos(2 * y) * np.exp(z), 1e-12).ranks == (1, 1, 1)
    values = np.sin(2 * x) + y**3 + np.exp(z)
    assert chebtuck_full(values, 1e-12).ranks == (2, 2, 2)
    cp = separable_cp(points)
    assert np.allclose(cp_to_full(cp), values)
    assert chebtuck_from_cp(reduce_cp(cp, 1e-13), 1e-12).ranks == (2, 2, 2)
    # two genuinely different functions of x in a product with y: rank 2 in modes x, y; 1 in z
    assert chebtuck_full(np.sin(x) * np.cos(y) + np.exp(x) * y**2, 1e-12).ranks == (2, 2, 1)


def test_hosvd_error_bound_and_hooi_not_worse() -> None:
    rng = np.random.default_rng(1)
    tensor = np.einsum("ia,jb,kc,abc->ijk", *(rng.normal(size=(12, 4)) for _ in range(3)), rng.normal(size=(4, 4, 4)))
    tensor += 1e-3 * rng.normal(size=tensor.shape)
    for tol in (1e-1, 1e-2, 1e-4):
        core, factors = hosvd(tensor, tol)
        error = np.linalg.norm(tensor - tucker_to_full(core, factors))
        assert error <= tol * np.linalg.norm(tensor) * (1 + 1e-12)
        core_hooi, factors_hooi = hooi(tensor, factors, 5)
        assert core_hooi.shape == core.shape
        assert np.linalg.norm(tensor - tucker_to_full(core_hooi, factors_hooi)) <= error * (1 + 1e-10)
    assert hosvd(tensor, 1e-2)[0].shape == (4, 4, 4)


def test_cp_to_full_matches_einsum() -> None:
    rng = np.random.default_rng(2)
    cp = CPTensor([rng.normal(size=(5, 37)), rng.normal(size=(6, 37)), rng.normal(size=(4, 37))], rng.normal(size=37))
    assert np.allclose(cp_to_full(cp, chunk=8), np.einsum("r,ir,jr,kr->ijk", cp.lam, *cp.factors))


@pytest.mark.parametrize("tol", [1e-5, 1e-7])
def test_alg4_agrees_with_alg3_and_grid(tol: float) -> None:
    kernel = newton_gaussian_sum(0.2, -110, 45)
    long_range = kernel.subset(long_range_mask(kernel, 0.25))
    positions, charges = ball_particles(15, 0.6, 0.03, np.random.default_rng(3))
    points = chebyshev_points(33)
    cp = potential_cp(points, positions, charges, long_range)
    alg3 = chebtuck_full(cp_to_full(cp), tol)
    alg4 = chebtuck_from_cp(reduce_cp(cp, 1e-13), tol)
    assert abs(max(alg3.ranks) - max(alg4.ranks)) <= 1
    grid = cell_centred_grid(16)
    exact = cp_to_full(potential_cp(grid, positions, charges, long_range))
    scale = np.abs(exact).max()
    assert np.abs(alg3.on_grid(grid) - exact).max() / scale < 10 * tol
    assert np.abs(alg4.on_grid(grid) - exact).max() / scale < 10 * tol


def test_grid_runs_the_degree_study_once_and_every_cloud_per_replicate() -> None:
    from omegaconf import OmegaConf

    from repro.papers.cheb_tucker.task import units

    cfg = OmegaConf.create({"geometries": ["ball", "lattice"], "ball": {"counts": [10, 20]}, "lattice": {"side": 3},
                            "full_kernel": {"count": 10}})
    grid = [(u.experiment, u.settings.get("geometry"), u.settings.get("N"), u.settings.get("kernel"), u.stochastic)
            for u in units(cfg)]
    assert grid == [("degree", None, None, None, False), ("cloud", "ball", 10, "long", True),
                    ("cloud", "ball", 20, "long", True), ("cloud", "lattice", 27, "long", True),
                    ("cloud", "ball", 10, "full", True)]


def write_dry_data(data_dir: Path) -> None:
    """The paper scale reads no file: its particle clouds are drawn per replicate (ball) or built (lattice) and
    the Newton kernel is a sinc-quadrature Gaussian sum computed in the run. Nothing to write; scale=dry runs the
    paper scale's kernel, tolerances and algorithms on small clouds and grids."""
    data_dir.mkdir(parents=True, exist_ok=True)
