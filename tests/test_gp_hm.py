"""gp_hm: kernel second derivatives against sympy and autodiff, the Toeplitz and Kronecker constructions
against direct evaluation and the dense covariance, the manufactured sources against finite differences of
the solutions, the Wiener-Khinchin spectrum of the SE x cosine kernel, and the baselines' building blocks."""

import math
from pathlib import Path

import numpy as np
import pytest
import sympy
import torch
from omegaconf import OmegaConf

from repro.papers.gp_hm.baselines import finite_difference_poisson_1d, finite_difference_poisson_2d, laplacian
from repro.papers.gp_hm.gp import grid_matrices
from repro.papers.gp_hm.kernels import KERNELS, kernel_and_second_derivative
from repro.papers.gp_hm.problems import make_problem
from repro.papers.gp_hm.task import build_gp, spectrum_summary

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
        model.kernel.values["log_w"].copy_(torch.log(torch.tensor([0.6, 0.395, 0.004, 0.001], dtype=torch.float64)))
        model.kernel.values["freq"].copy_(torch.tensor([15.2, 3.0, 16.9, 40.0], dtype=torch.float64))
    summary = spectrum_summary(model, problem, active_fraction=0.01, window=1.0)
    assert summary["active_components"] == 2
    assert summary["weight_near_true"] == pytest.approx(0.604)


def write_dry_data(data_dir: Path) -> None:
    """Nothing to write: every problem is manufactured (the solution chosen, the source derived by sympy)."""
    Path(data_dir).mkdir(parents=True, exist_ok=True)
