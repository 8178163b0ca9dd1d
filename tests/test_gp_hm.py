"""gp_hm: kernel second derivatives against sympy and autodiff, the Toeplitz and Kronecker constructions
against direct evaluation and the dense covariance, the manufactured sources against finite differences of
the solutions, the Wiener-Khinchin spectrum of the SE x cosine kernel, and the baselines' building blocks."""

import logging
import math
from pathlib import Path

import numpy as np
import pytest
import sympy
import torch
from omegaconf import OmegaConf
from scipy import stats

from repro.core.context import RunContext
from repro.core.units import Unit
from repro.papers.gp_hm.baselines import (
    finite_difference_poisson_1d,
    finite_difference_poisson_2d,
    laplacian,
    pinn_loss,
)
from repro.papers.gp_hm.gp import GPSolver1D, GPSolver2D, grid_matrices
from repro.papers.gp_hm.kernels import KERNELS, kernel_and_second_derivative
from repro.papers.gp_hm.problems import make_problem
from repro.papers.gp_hm.task import build_gp, kronecker_timing, relative_l2, spectrum_summary
from tests.helpers import compose_config

PARAMS = {"log_w": torch.tensor([-0.3, -1.2], dtype=torch.float64),
          "log_ls": torch.tensor([0.4, -0.8], dtype=torch.float64),
          "freq": torch.tensor([1.7, 0.45], dtype=torch.float64)}


def sympy_kernel(kind: str, side: int) -> tuple[sympy.Symbol, sympy.Symbol, sympy.Expr]:
    """The kernel on the half-line sign(x - xp) = side, where |x - xp| = side (x - xp) is smooth."""
    x, xp = sympy.symbols("x xp", real=True)
    total = 0
    for q in range(2):
        w, ls, f = (float(PARAMS[k][q]) for k in ("log_w", "log_ls", "freq"))
        d = side * (x - xp)
        if kind.startswith("se"):
            g = sympy.exp(-d ** 2 * math.exp(ls))
        else:
            c = math.sqrt(5) * math.exp(ls)
            g = (1 + c * d + c ** 2 * d ** 2 / 3) * sympy.exp(-c * d)
        cos = sympy.cos(2 * sympy.pi * f * (x - xp)) if kind.endswith("_cos") else 1
        total += math.exp(w) * g * cos
    return x, xp, total


@pytest.mark.parametrize("kind", KERNELS)
def test_kernel_second_derivative_matches_sympy_and_autodiff(kind: str) -> None:
    pairs = [(0.3, 1.1), (2.0, 0.4), (1.5, 1.5 - 1e-3), (0.7, 0.7 + 2.5)]
    values, seconds = [], []
    for a, b in pairs:
        x, xp, expr = sympy_kernel(kind, 1 if a > b else -1)
        values.append(float(expr.subs({x: a, xp: b})))
        seconds.append(float(sympy.diff(expr, x, 2).subs({x: a, xp: b})))
    r = torch.tensor([a - b for a, b in pairs], dtype=torch.float64, requires_grad=True)
    k, kxx = kernel_and_second_derivative(kind, r, PARAMS)
    np.testing.assert_allclose(k.detach().numpy(), values, rtol=1e-10)
    np.testing.assert_allclose(kxx.detach().numpy(), seconds, rtol=1e-7, atol=1e-9)
    (first,) = torch.autograd.grad(k.sum(), r, create_graph=True)
    (autodiff,) = torch.autograd.grad(first.sum(), r)
    np.testing.assert_allclose(autodiff.numpy(), kxx.detach().numpy(), rtol=1e-7, atol=1e-9)
    # At r = 0 the closed form is the limit (Matern-5/2 is twice differentiable there).
    x, xp, expr = sympy_kernel(kind, 1)
    limit = float(sympy.diff(expr, x, 2).subs({x: 0, xp: 0}))
    at_zero = kernel_and_second_derivative(kind, torch.zeros(1, dtype=torch.float64), PARAMS)[1]
    assert float(at_zero) == pytest.approx(limit, rel=1e-9)


def test_toeplitz_grid_matrices_equal_pairwise_evaluation() -> None:
    x = torch.linspace(0, 3, 17, dtype=torch.float64)
    k, kxx = grid_matrices("matern_cos", PARAMS, x, jitter=1e-6)
    direct, direct_xx = kernel_and_second_derivative("matern_cos", x[:, None] - x[None, :], PARAMS)
    np.testing.assert_allclose(k.numpy(), direct.numpy() + 1e-6 * np.eye(17), atol=1e-14)
    np.testing.assert_allclose(kxx.numpy(), direct_xx.numpy(), atol=1e-12)


def wiener_khinchin_peak(freq: float, ls: float) -> float:
    params = {"log_w": torch.zeros(1, dtype=torch.float64), "log_ls": torch.tensor([ls], dtype=torch.float64),
              "freq": torch.tensor([freq], dtype=torch.float64)}
    step, n = 0.01, 2 ** 14
    r = (torch.arange(n, dtype=torch.float64) - n // 2) * step
    k, _ = kernel_and_second_derivative("se_cos", r, params)
    power = np.abs(np.fft.rfft(np.fft.ifftshift(k.numpy())))
    return float(np.fft.rfftfreq(n, step)[np.argmax(power)])


def test_wiener_khinchin_se_cos_spectrum_peaks_at_its_frequency() -> None:
    # The SE x cos kernel is the Fourier transform of a Gaussian pair at +-f (narrow for a long length scale).
    for freq in (2.0, 7.5):
        assert wiener_khinchin_peak(freq, ls=-2.0) == pytest.approx(freq, abs=0.01)


CFG = OmegaConf.create({"gp": {"jitter": 1e-6, "boundary_weight": 200.0}})


def test_kronecker_objective_equals_dense_and_so_do_gradients() -> None:
    spec = OmegaConf.create({"components": 3, "freq_scale": 5})
    model = build_gp(CFG, spec, make_problem("poisson_2d-sin_sin20"), "matern_cos", 7, "cpu")
    with torch.no_grad():
        model.u.copy_(torch.randn(7, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))
        model.kernel_x.values["log_ls"].fill_(1.0)
    kron = model.negative_log_joint()
    grads = torch.autograd.grad(kron, list(model.parameters()))
    dense = model.negative_log_joint_dense()
    dense_grads = torch.autograd.grad(dense, list(model.parameters()))
    assert float(kron.detach()) == pytest.approx(float(dense.detach()), rel=1e-9)
    for a, b in zip(grads, dense_grads):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-8)


def test_kronecker_identities_in_row_major_layout() -> None:
    rng = np.random.default_rng(1)
    a, b, u = rng.normal(size=(4, 4)), rng.normal(size=(3, 3)), rng.normal(size=(4, 3))
    np.testing.assert_allclose(np.kron(a, b) @ u.reshape(-1), (a @ u @ b.T).reshape(-1), atol=1e-12)
    spd_a, spd_b = a @ a.T + np.eye(4), b @ b.T + np.eye(3)
    inverse = np.kron(np.linalg.inv(spd_a), np.linalg.inv(spd_b))
    np.testing.assert_allclose(np.linalg.inv(np.kron(spd_a, spd_b)), inverse, atol=1e-10)
    assert np.linalg.slogdet(np.kron(spd_a, spd_b))[1] == pytest.approx(
        3 * np.linalg.slogdet(spd_a)[1] + 4 * np.linalg.slogdet(spd_b)[1])


def test_gp_conditional_mean_interpolates_the_collocation_values() -> None:
    spec = OmegaConf.create({"components": 4, "freq_scale": 3})
    model = build_gp(CFG, spec, make_problem("poisson_1d-sin20"), "se_cos", 40, "cpu")
    with torch.no_grad():
        model.u.copy_(torch.sin(model.x))
        model.kernel.values["log_ls"].fill_(-1.0)
        np.testing.assert_allclose(model.predict(model.x).numpy(), np.sin(model.x.numpy()), atol=1e-5)


@pytest.mark.parametrize("name", ["poisson_1d-sin_cos", "allencahn_1d-sin_cos", "allencahn_2d-mix-sincos"])
def test_manufactured_source_matches_finite_differences_of_the_solution(name: str) -> None:
    problem = make_problem(name)
    h = 1e-4
    points = np.array([0.37, 1.21, 0.83])
    if problem.dimension == 1:
        u = problem.solution
        second = (u(points + h) - 2 * u(points) + u(points - h)) / h ** 2
        expected = second + (u(points) * (u(points) ** 2 - 1) if problem.allen_cahn else 0)
        np.testing.assert_allclose(problem.source(points), expected, rtol=1e-4, atol=1e-2)
    else:
        u, y = problem.solution, points[::-1]
        lap = ((u(points + h, y) - 2 * u(points, y) + u(points - h, y))
               + (u(points, y + h) - 2 * u(points, y) + u(points, y - h))) / h ** 2
        expected = lap + u(points, y) * (u(points, y) ** 2 - 1)
        np.testing.assert_allclose(problem.source(points, y), expected, rtol=1e-4, atol=1e-2)


def test_finite_differences_converge_at_second_order_on_manufactured_solutions() -> None:
    problem = make_problem("poisson_1d-sin20")
    errors = []
    for n in (401, 801):
        x = np.linspace(0, problem.length, n)
        u = finite_difference_poisson_1d(x, problem.source(x), *problem.solution(np.array([x[0], x[-1]])))
        errors.append(np.abs(u - problem.solution(x)).max())
    assert errors[0] / errors[1] == pytest.approx(4.0, rel=0.1)
    problem = make_problem("poisson_2d-sin_sin20")
    errors = []
    for n in (161, 321):
        x = np.linspace(0, problem.length, n)
        mx, my = np.meshgrid(x, x, indexing="ij")
        truth = problem.solution(mx, my)
        errors.append(np.abs(finite_difference_poisson_2d(x, x, problem.source(mx, my), truth) - truth).max())
    assert errors[0] / errors[1] == pytest.approx(4.0, rel=0.15)


def test_pinn_laplacian_of_a_known_function() -> None:
    class Wave(torch.nn.Module):
        def forward(self, p: torch.Tensor) -> torch.Tensor:
            return torch.sin(3 * p[:, 0]) * torch.cos(2 * p[:, 1])

    points = torch.rand(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    u, lap = laplacian(Wave(), points.clone())
    np.testing.assert_allclose(lap.detach().numpy(), -13 * u.detach().numpy(), atol=1e-10)


def test_spectrum_summary_counts_surviving_components() -> None:
    spec = OmegaConf.create({"components": 4, "freq_scale": 20})
    problem = make_problem("poisson_1d-sin_cos")
    model = build_gp(CFG, spec, problem, "matern_cos", 10, "cpu")
    with torch.no_grad():
        # Unnormalised weights (sum 10): a component is active by its share of the total, not its raw weight.
        model.kernel.values["log_w"].copy_(torch.log(torch.tensor([6.0, 3.95, 0.04, 0.01], dtype=torch.float64)))
        model.kernel.values["freq"].copy_(torch.tensor([15.2, 3.0, 16.9, 40.0], dtype=torch.float64))
    summary = spectrum_summary(model, problem, active_fraction=0.01, window=1.0)
    assert summary["active_components"] == 2
    assert summary["weight_near_true"] == pytest.approx(0.604)


def numpy_params(rng: np.random.Generator, q: int) -> dict[str, torch.Tensor]:
    return {"log_w": torch.tensor(rng.normal(-0.5, 0.3, q)), "log_ls": torch.tensor(rng.normal(0.0, 0.3, q)),
            "freq": torch.tensor(rng.uniform(0.1, 0.6, q))}


def test_1d_objective_equals_scipy_negative_log_densities() -> None:
    # -log p(u, data) = -log N(u | 0, K) - 200 sum log N(u_b | g_b, 1/tau) - sum log N(r_c | 0, 1/v) up to the
    # 2 pi constants, with the Allen-Cahn residual r = K_xx K^-1 u + u (u^2 - 1) - f.
    rng = np.random.default_rng(3)
    x = torch.linspace(0.0, 1.3, 9, dtype=torch.float64)
    source, boundary = torch.tensor(rng.normal(size=9)), torch.tensor([0.4, -0.7], dtype=torch.float64)
    model = GPSolver1D("matern_cos", x, source, boundary, allen_cahn=True, components=2, freq_scale=1.0,
                       jitter=1e-6, boundary_weight=200.0)
    params = numpy_params(rng, 2)
    u = rng.normal(size=9)
    with torch.no_grad():
        for name, value in params.items():
            model.kernel.values[name].copy_(value)
        model.u.copy_(torch.tensor(u))
        model.log_tau.fill_(0.8)
        model.log_v.fill_(-0.6)
        value = float(model.negative_log_joint())
    k, kxx = (m.numpy() for m in grid_matrices("matern_cos", params, x, 1e-6))
    residual = kxx @ np.linalg.solve(k, u) + u * (u ** 2 - 1) - source.numpy()
    expected = (-stats.multivariate_normal(np.zeros(9), k).logpdf(u)
                - 200 * stats.norm(boundary.numpy(), math.exp(-0.8 / 2)).logpdf(u[[0, -1]]).sum()
                - stats.norm(0, math.exp(0.6 / 2)).logpdf(residual).sum()
                - (9 + 200 * 2 + 9) / 2 * math.log(2 * math.pi))
    assert value == pytest.approx(expected, rel=1e-9)


def test_2d_objective_and_prediction_on_a_non_square_grid_equal_the_dense_gaussian() -> None:
    # A 5 x 4 grid with different kernels per axis: the prior is N(vec U | 0, K1 (x) K2) (row-major vec), the
    # Laplacian is (K1xx (x) K2 + K1 (x) K2yy) K^-1 vec U, and the prediction is (k1* (x) k2*) K^-1 vec U.
    rng = np.random.default_rng(4)
    x, y = torch.linspace(0.0, 1.2, 5, dtype=torch.float64), torch.linspace(0.3, 2.0, 4, dtype=torch.float64)
    source, boundary = torch.tensor(rng.normal(size=(5, 4))), torch.tensor(rng.normal(size=2 * 4 + 2 * 5))
    model = GPSolver2D("se_cos", x, y, source, boundary, allen_cahn=False, components=2, freq_scale=1.0,
                       jitter=1e-6, boundary_weight=200.0)
    px, py = numpy_params(rng, 2), numpy_params(rng, 2)
    u = rng.normal(size=(5, 4))
    with torch.no_grad():
        for name in px:
            model.kernel_x.values[name].copy_(px[name])
            model.kernel_y.values[name].copy_(py[name])
        model.u.copy_(torch.tensor(u))
        model.log_tau.fill_(0.5)
        model.log_v.fill_(-0.3)
        value = float(model.negative_log_joint())
        x_test, y_test = torch.tensor([0.1, 0.77, 1.05]), torch.tensor([0.5, 1.9])
        prediction = model.predict(x_test.double(), y_test.double()).numpy()
    k1, k1xx = (m.numpy() for m in grid_matrices("se_cos", px, x, 1e-6))
    k2, k2yy = (m.numpy() for m in grid_matrices("se_cos", py, y, 1e-6))
    dense = np.kron(k1, k2)
    lap = ((np.kron(k1xx, k2) + np.kron(k1, k2yy)) @ np.linalg.solve(dense, u.reshape(-1))).reshape(5, 4)
    edges = np.concatenate([u[0, :], u[-1, :], u[:, 0], u[:, -1]])
    expected = (-stats.multivariate_normal(np.zeros(20), dense).logpdf(u.reshape(-1))
                - 200 * stats.norm(boundary.numpy(), math.exp(-0.5 / 2)).logpdf(edges).sum()
                - stats.norm(0, math.exp(0.3 / 2)).logpdf(lap - source.numpy()).sum()
                - (20 + 200 * 18 + 20) / 2 * math.log(2 * math.pi))
    assert value == pytest.approx(expected, rel=1e-9)
    cross_x = kernel_and_second_derivative("se_cos", x_test.double()[:, None] - x[None, :], px)[0].numpy()
    cross_y = kernel_and_second_derivative("se_cos", y_test.double()[:, None] - y[None, :], py)[0].numpy()
    dense_mean = np.kron(cross_x, cross_y) @ np.linalg.solve(dense, u.reshape(-1))
    np.testing.assert_allclose(prediction.reshape(-1), dense_mean, rtol=1e-7, atol=1e-10)


def test_finite_differences_are_exact_for_cubics_with_nonzero_boundary_values() -> None:
    # The central second difference of a cubic is exact, so the solution is exact at the grid points, here
    # with non-zero Dirichlet values and (2-D) unequal steps along x and y.
    x = np.linspace(0.2, 1.7, 12)
    u = x ** 3 - 2 * x + 1.5
    np.testing.assert_allclose(finite_difference_poisson_1d(x, 6 * x, u[0], u[-1]), u, atol=1e-10)
    x, y = np.linspace(0.0, 1.0, 7), np.linspace(-0.5, 2.0, 11)
    mx, my = np.meshgrid(x, y, indexing="ij")
    truth = mx ** 2 + my ** 3 + mx * my + 1.0
    np.testing.assert_allclose(finite_difference_poisson_2d(x, y, 2 + 6 * my, truth), truth, atol=1e-10)


def test_pinn_loss_of_a_known_function() -> None:
    # u = sin(3x): u'' = -9u, Allen-Cahn residual -9u + u (u^2 - 1) - f; boundary weight 100 on the mean gap^2.
    class Wave(torch.nn.Module):
        def forward(self, p: torch.Tensor) -> torch.Tensor:
            return torch.sin(3 * p[:, 0])

    interior = torch.tensor([[0.2], [0.9], [1.4]], dtype=torch.float64)
    source = torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64)
    ends, values = torch.tensor([[0.0], [2.0]], dtype=torch.float64), torch.tensor([0.5, -0.2], dtype=torch.float64)
    loss = pinn_loss(Wave(), interior, source, ends, values, allen_cahn=True, boundary_weight=100.0).item()
    u = np.sin(3 * interior.numpy()[:, 0])
    residual = -9 * u + u * (u ** 2 - 1) - source.numpy()
    gaps = np.sin(3 * ends.numpy()[:, 0]) - values.numpy()
    assert loss == pytest.approx(np.mean(residual ** 2) + 100 * np.mean(gaps ** 2), rel=1e-10)


def test_relative_l2_is_normalised_by_the_truth() -> None:
    truth = np.array([3.0, -4.0])
    assert relative_l2(2 * truth, truth) == pytest.approx(1.0)
    assert relative_l2(truth + np.array([0.0, 0.5]), truth) == pytest.approx(0.1)


def write_dry_data(data_dir: Path) -> None:
    """Nothing to write: every problem is manufactured (the solution chosen, the source derived by sympy)."""
    Path(data_dir).mkdir(parents=True, exist_ok=True)


def test_kronecker_timing_reads_the_speedup_on_process_cpu_seconds_on_the_cpu(tmp_path: Path) -> None:
    """On the CPU the claimed speed-up is the ratio of the process's CPU seconds (robust to other jobs on the
    machine), the wall ratio is kept beside it, and both objectives agree."""
    root = compose_config(["paper=gp_hm", "scale=smoke", f"data_dir={tmp_path}"])
    ctx = RunContext(root, tmp_path, "cpu", Unit("kron_speed", "-", (("n", 8),)), logging.getLogger("t"))
    row = kronecker_timing(root.paper, ctx, 8)
    assert row["speedup"] == row["dense_cpu_time_s"] / row["kron_cpu_time_s"]
    assert row["wall_speedup"] == row["dense_time_s"] / row["kron_time_s"]
    assert min(row["kron_cpu_time_s"], row["dense_cpu_time_s"]) > 0 and row["objective_rel_gap"] < 1e-8
