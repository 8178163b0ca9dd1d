"""ChebTuck against independent oracles: numpy.polynomial.chebyshev, exact ranks of separable functions,
the HOSVD error bound, and the sinc-quadrature Gaussian sum against 1/r."""

from pathlib import Path

import numpy as np
import pytest
from numpy.polynomial import chebyshev
from scipy.interpolate import make_interp_spline
from scipy.io import savemat

from repro.core.errors import DataUnavailableError
from repro.papers.cheb_tucker.chebtuck import (
    ChebTucker,
    chebtuck_full,
    chebyshev_points,
    coefficient_tensor,
    cp_at_chebyshev,
    interpolation_error,
    rhosvd,
    spline_to_chebyshev,
    values_to_coefficients,
)
from repro.papers.cheb_tucker.data import biomol_name, load_biomol, load_newton, newton_name, obtain
from repro.papers.cheb_tucker.kernel import (
    CPTensor,
    ball_particles,
    cp_to_full,
    lattice_particles,
    long_range_mask,
    newton_gaussian_sum,
    potential_cp,
)
from repro.papers.cheb_tucker.task import cell_centred_grid, middle, relative_max
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
    assert rhosvd(cp, 1e-12).ranks == (2, 2, 2)
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


def test_splines_from_the_grid_to_chebyshev_points() -> None:
    """Not-a-knot cubic splines (scipy's make_interp_spline as the oracle), extrapolated past the outer cell
    centres; a cubic is reproduced exactly everywhere, a Gaussian to the spline's O(h^4)."""
    grid = cell_centred_grid(64)
    cubic = np.stack([grid**3 - 2 * grid, np.exp(-4 * grid**2)], 1)
    ours = spline_to_chebyshev(grid, cubic, 33)
    points = chebyshev_points(33)
    assert np.allclose(ours, make_interp_spline(grid, cubic, k=3)(points), atol=1e-12)
    assert np.allclose(ours[:, 0], points**3 - 2 * points, atol=1e-12)             # includes x = +-1
    assert 1e-9 < np.abs(ours[:, 1] - np.exp(-4 * points**2)).max() < 1e-5


def test_rhosvd_truncates_unscaled_side_matrices_at_absolute_tol() -> None:
    """Alg. 4 (rhosvd.m): mode ranks are the number of singular values of D V_a (not scaled by lam) whose tail
    exceeds tol / 3; scaling lam leaves them unchanged, scaling V_a changes them (absolute threshold), whereas
    Alg. 3's relative tolerance is blind to both. Untruncated, Alg. 4 is the full Chebyshev interpolant."""
    kernel = newton_gaussian_sum(0.2, -110, 45)
    long_range = kernel.subset(long_range_mask(kernel, 0.25))
    positions, charges = ball_particles(6, 0.6, 0.03, np.random.default_rng(4))
    cp = potential_cp(chebyshev_points(17), positions, charges, long_range)
    tol = 1e-5
    expected = []
    for factor in cp.factors:
        values = np.linalg.svd(values_to_coefficients(factor), compute_uv=False)
        tails = np.sqrt(np.cumsum(values[::-1] ** 2))[::-1]
        expected.append(int(np.sum(tails > tol / 3)))
    alg4 = rhosvd(cp, tol)
    assert alg4.ranks == tuple(expected)
    assert rhosvd(CPTensor(cp.factors, 1e6 * cp.lam), tol).ranks == alg4.ranks
    shrunk = rhosvd(CPTensor([f * 1e-3 for f in cp.factors], cp.lam * 1e9), tol)
    assert sum(shrunk.ranks) < sum(alg4.ranks)
    values = cp_to_full(cp)
    assert chebtuck_full(values * 1e-6, tol).ranks == chebtuck_full(values, tol).ranks
    grid = np.linspace(-1, 1, 9)
    x, y, z = np.meshgrid(grid, grid, grid, indexing="ij")
    oracle = chebyshev.chebval3d(x, y, z, coefficient_tensor(values))
    assert np.allclose(rhosvd(cp, 0.0).on_grid(grid), oracle, atol=1e-9 * np.abs(oracle).max())


@pytest.mark.parametrize("tol", [1e-5, 1e-7])
def test_alg3_and_alg4_reach_tol_on_the_grid(tol: float) -> None:
    """From the CP tensor on a 256-point grid, both algorithms at m = 33 reproduce the grid potential's middle
    slice to within 10 tol (relative max error), with ranks below m."""
    kernel = newton_gaussian_sum(0.2, -110, 45)
    long_range = kernel.subset(long_range_mask(kernel, 0.25))
    positions, charges = ball_particles(8, 0.6, 0.03, np.random.default_rng(3))
    grid = cell_centred_grid(256)
    cp = potential_cp(grid, positions, charges, long_range)
    at_points = cp_at_chebyshev(cp, grid, 33)
    z = grid[127:128]
    exact = cp_to_full(CPTensor([*cp.factors[:2], cp.factors[2][127:128]], cp.lam))
    scale = np.abs(exact).max()
    for approx in (chebtuck_full(cp_to_full(at_points), tol), rhosvd(at_points, tol)):
        assert np.abs(approx.on_grid(grid, z) - exact).max() / scale < 10 * tol
        assert max(approx.ranks) < 33


def write_biomol(path: Path, n: int, rng: np.random.Generator, **change: object) -> CPTensor:
    """A CP tensor in the format of the authors' n<n>_Pn<N>.mat: LRed.{LAM1C, CU1, CU2, CU3} and Hunif."""
    kernel = newton_gaussian_sum(0.2, -110, 45)
    positions, charges = ball_particles(5, 0.6, 0.03, rng)
    cp = potential_cp(cell_centred_grid(n), positions, charges, kernel.subset(long_range_mask(kernel, 0.25)))
    step = 0.1953125
    structure = {"LAM1C": cp.lam * step**3, "CU1": cp.factors[0], "CU2": cp.factors[1], "CU3": cp.factors[2]}
    structure = {k: v for k, v in {**structure, **change.pop("LRed", {})}.items() if v is not None}
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(path, {"LRed": structure, "Hunif": step, **change})
    return cp


def write_newton(path: Path, n: int) -> np.ndarray:
    """A Newt_canon_<n>.mat: U1r (n, 26), broad terms first, scaled by h as in the authors' files."""
    kernel = newton_gaussian_sum(0.2, -110, 45)
    exponents = kernel.exponents[::6][:26]
    grid = cell_centred_grid(n)
    columns = np.exp(-exponents[None, :] * grid[:, None] ** 2) * (2 / n)
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(path, {"U1r": columns, "n1": float(n), "rCAN": 26.0})
    return columns


def test_shipped_file_loaders(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    cp = write_biomol(tmp_path / "b.mat", 32, rng)
    loaded = load_biomol(tmp_path / "b.mat", 32)
    assert np.allclose(loaded.lam, cp.lam) and all(np.array_equal(a, b) for a, b in zip(loaded.factors, cp.factors))
    columns = write_newton(tmp_path / "n.mat", 32)
    full, long = load_newton(tmp_path / "n.mat", 32, False), load_newton(tmp_path / "n.mat", 32, True)
    assert np.allclose(full.factors[2], columns * 16) and np.array_equal(full.lam, np.ones(26))
    assert long.rank == 10 and np.array_equal(long.factors[0], full.factors[0][:, :10])   # ceil(26 / 2) - 3


@pytest.mark.parametrize("change, message", [
    ({"LRed": {"CU2": None}}, "fields LAM1C, CU1, CU2, CU3"),
    ({"Hunif": -1.0}, "positive scalar Hunif"),
    ({"LRed": {"CU3": np.zeros((31, 585))}}, r"LRed.CU3 should be an \(32, 585\)"),
    ({"LRed": {"CU1": np.full((32, 585), np.nan)}}, "18720 non-finite"),
])
def test_shipped_files_are_validated(tmp_path: Path, change: dict, message: str) -> None:
    write_biomol(tmp_path / "b.mat", 32, np.random.default_rng(6), **change)
    with pytest.raises(DataUnavailableError, match=message) as error:
        load_biomol(tmp_path / "b.mat", 32)
    assert str(tmp_path / "b.mat") in str(error.value)


def test_shipped_files_checked_against_the_pinned_blob_ids(tmp_path: Path) -> None:
    name = biomol_name(256, 500)
    (tmp_path / "cheb_tucker" / name).parent.mkdir(parents=True)
    (tmp_path / "cheb_tucker" / name).write_bytes(b"MATLAB 5.0 but not the authors' file")
    with pytest.raises(DataUnavailableError, match="git blob id"):
        obtain(tmp_path, name)
    (tmp_path / "x.mat").write_text("not a mat file")
    with pytest.raises(DataUnavailableError, match="not a readable MATLAB"):
        load_biomol(tmp_path / "x.mat", 32)


def test_grid_runs_the_degree_study_once_and_every_cloud_per_replicate() -> None:
    from omegaconf import OmegaConf

    from repro.papers.cheb_tucker.task import units

    cfg = OmegaConf.create({"geometries": ["ball", "lattice"], "ball": {"counts": [10, 20]}, "lattice": {"side": 3},
                            "full_kernel": {"count": 10}, "biomol": {"grids": [256], "count": 500},
                            "newton": {"grids": [512]}})
    grid = [(u.experiment, u.settings.get("geometry"), u.settings.get("N"), u.settings.get("kernel"), u.stochastic)
            for u in units(cfg)]
    assert grid == [("degree", None, None, None, False), ("cloud", "ball", 10, "long", True),
                    ("cloud", "ball", 20, "long", True), ("cloud", "lattice", 27, "long", True),
                    ("cloud", "ball", 10, "full", True), ("biomol", None, 500, None, False),
                    ("newton", None, None, "long", False), ("newton", None, None, "full", False)]


def write_dry_data(data_dir: Path) -> None:
    """The shipped-file path of scale=paper on small files in the authors' format: a 32-point biomolecule-style
    CP tensor (5 particles) and a 32-point Newton CP tensor (26 terms), at the names the run reads (unpinned
    names, so no blob id applies). The clouds and the lattice are generated in the run."""
    write_biomol(data_dir / "cheb_tucker" / biomol_name(32, 5), 32, np.random.default_rng(7))
    write_newton(data_dir / "cheb_tucker" / newton_name(32), 32)


def test_potential_cp_is_the_direct_coulomb_sum() -> None:
    """The CP tensor of a cloud equals sum_j q_j / |x - x_j| at every grid point (the full Gaussian sum reproduces
    1/r to 1e-9, away from the particles), and its long-range part equals sum_j q_j G_long(|x - x_j|) point by
    point (GaussianSum evaluated on distances, not per coordinate)."""
    kernel = newton_gaussian_sum(0.2, -110, 45)
    positions, charges = ball_particles(5, 0.6, 0.03, np.random.default_rng(11))
    grid = cell_centred_grid(6)
    points = np.stack(np.meshgrid(grid, grid, grid, indexing="ij"), -1)                  # (6, 6, 6, 3)
    distances = np.linalg.norm(points[..., None, :] - positions, axis=-1)                # (6, 6, 6, N)
    assert distances.min() > 1e-3
    coulomb = (charges / distances).sum(-1)
    np.testing.assert_allclose(cp_to_full(potential_cp(grid, positions, charges, kernel)), coulomb,
                               rtol=1e-8, atol=1e-8 * np.abs(coulomb).max())
    long_range = kernel.subset(long_range_mask(kernel, 0.25))
    np.testing.assert_allclose(cp_to_full(potential_cp(grid, positions, charges, long_range)),
                               (charges * long_range(distances)).sum(-1), rtol=1e-12, atol=1e-12)


def test_cell_centred_grid_and_its_middle_slice() -> None:
    """x_i = -1 + (i - 1/2) h (i = 1..n, h = 2 / n): the centres of n equal cells of [-1, 1]; the authors' middle
    slice is MATLAB index floor(n / 2): x = -h / 2 for n = 64, x = -1 + 2.5 h = -2/7 for n = 7."""
    np.testing.assert_allclose(cell_centred_grid(4), [-0.75, -0.25, 0.25, 0.75])
    assert cell_centred_grid(64)[middle(64)] == pytest.approx(-1 / 64)
    assert cell_centred_grid(7)[middle(7)] == pytest.approx(-2 / 7)


def test_lattice_is_centred_with_alternating_charges() -> None:
    """side^3 points spaced by `spacing` around the origin; nearest neighbours carry opposite charges."""
    positions, charges = lattice_particles(3, 0.18)
    np.testing.assert_allclose(positions.mean(0), 0.0, atol=1e-15)
    np.testing.assert_allclose(np.unique(positions[:, 0]), [-0.18, 0.0, 0.18])
    gaps = np.linalg.norm(positions[:, None] - positions[None], axis=-1)
    neighbours = np.isclose(gaps, 0.18)
    assert neighbours.sum() == 2 * 3 * 3 * 3 * 2                   # 54 nearest-neighbour pairs, both orders
    assert np.all((charges[:, None] * charges[None])[neighbours] == -1)


def test_relative_max_error() -> None:
    """max |approx - exact| / max |exact|."""
    exact = np.array([1.0, -4.0, 2.0])
    assert relative_max(exact + np.array([0.1, 0.0, -0.2]), exact) == pytest.approx(0.05)


def test_hosvd_mode_ranks_are_the_smallest_with_tail_below_tol_over_sqrt_d() -> None:
    """Per mode, r is the smallest rank whose discarded singular values of the unfolding (numpy SVD of tensorly's
    unfolding) have norm <= tol ||T||_F / sqrt(3)."""
    import tensorly as tl

    rng = np.random.default_rng(12)
    tensor = np.einsum("ia,jb,kc,abc->ijk", *(rng.normal(size=(10, 6)) for _ in range(3)),
                       rng.normal(size=(6, 6, 6)) * np.geomspace(1, 1e-3, 6)[:, None, None])
    for tol in (1e-1, 3e-2, 1e-2):
        core, _ = hosvd(tensor, tol)
        budget = tol * np.linalg.norm(tensor) / np.sqrt(3)
        for mode in range(3):
            values = np.linalg.svd(tl.unfold(tensor, mode), compute_uv=False)
            rank = core.shape[mode]
            assert np.linalg.norm(values[rank:]) <= budget < np.linalg.norm(values[rank - 1:])
