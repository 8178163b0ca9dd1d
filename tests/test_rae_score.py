"""rae_score: the mixtures' scores and the exact DAE optimum against scipy (finite differences, quadrature),
the heat-equation small-sigma expansion, the RCAE Euler-Lagrange optimum (scipy solve_bvp), the batched
networks, and the Metropolis-Hastings pieces."""

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from repro.core.errors import ConfigError
from repro.papers.rae_score.densities import GaussianMixture, make_density
from repro.papers.rae_score.models import BatchedMLP, jacobian_sq_norm, reconstruct, train_autoencoders
from repro.papers.rae_score.sampling import exact_difference, histogram_kl, metropolis, trapezoid_difference
from repro.papers.rae_score.task import relative_score_error


def scipy_log_prob(p: GaussianMixture, x: np.ndarray) -> np.ndarray:
    densities = sum(w * stats.multivariate_normal(mu, p.std**2).pdf(x) for w, mu in zip(p.weights, p.means))
    return np.log(densities)


@pytest.mark.parametrize("name", ["mixture1d", "ring2d"])
def test_log_prob_and_score_match_scipy(name: str) -> None:
    p = make_density(name)
    x = p.sample(50, np.random.default_rng(0))
    np.testing.assert_allclose(p.log_prob(x), scipy_log_prob(p, x).reshape(-1), rtol=1e-10)
    step = 1e-5
    numeric = np.stack([(scipy_log_prob(p, x + step * e) - scipy_log_prob(p, x - step * e)).reshape(-1) / (2 * step)
                        for e in np.eye(p.dim)], 1)
    np.testing.assert_allclose(p.score(x), numeric, rtol=1e-5, atol=1e-5)


def test_dae_optimum_is_posterior_mean_by_quadrature() -> None:
    """r*(x~) = E[x | x~] = int x p(x) N(x~; x, sigma^2) dx / int p(x) N(x~; x, sigma^2) dx."""
    p, sigma = make_density("mixture1d"), 0.2
    for noisy in (-1.3, -0.2, 0.0, 0.7, 1.6):
        def weight(x: float, noisy: float = noisy) -> float:
            return np.exp(p.log_prob(np.array([[x]]))[0]) * stats.norm.pdf(noisy, x, sigma)
        numerator = integrate.quad(lambda x: x * weight(x), -6, 6, points=[-1, 1, noisy])[0]
        denominator = integrate.quad(weight, -6, 6, points=[-1, 1, noisy])[0]
        assert p.dae_optimum(np.array([[noisy]]), sigma)[0, 0] == pytest.approx(numerator / denominator, abs=1e-8)


def test_smoothed_score_follows_heat_expansion() -> None:
    """grad log p_sigma = grad log p + (sigma^2/2) grad(lap log p + |grad log p|^2) + O(sigma^4) (1-D)."""
    p = make_density("mixture1d")
    x = np.linspace(-1.5, 1.5, 31)[:, None]
    h = 1e-3

    def s(z: np.ndarray) -> np.ndarray:
        return p.score(z)[:, 0]

    def g(z: np.ndarray) -> np.ndarray:  # lap log p + |grad log p|^2
        return (s(z + h) - s(z - h)) / (2 * h) + s(z) ** 2

    correction = (g(x + h) - g(x - h)) / (2 * h)
    residuals = [np.abs(p.smoothed(sig).score(x)[:, 0] - s(x) - sig**2 / 2 * correction).max()
                 for sig in (0.04, 0.02)]
    assert residuals[0] / residuals[1] == pytest.approx(16, rel=0.15)  # O(sigma^4)


def test_rcae_euler_lagrange_optimum_approaches_score() -> None:
    """1-D RCAE optimum: p (r - x) = sigma^2 (p r')', natural boundary r' = 0; (r - x)/sigma^2 -> d log p/dx."""
    p = make_density("mixture1d")
    grid = np.linspace(-2.2, 2.2, 801)

    def rhs(x: np.ndarray, y: np.ndarray, sigma: float) -> np.ndarray:
        log_p_prime = p.score(x[:, None])[:, 0]
        return np.vstack([y[1], (y[0] - x) / sigma**2 - log_p_prime * y[1]])

    errors = []
    for sigma in (0.1, 0.05):
        solution = integrate.solve_bvp(lambda x, y, s=sigma: rhs(x, y, s), lambda a, b: np.array([a[1], b[1]]),
                                       grid, np.vstack([grid, np.ones_like(grid)]), tol=1e-6, max_nodes=200000)
        assert solution.success
        inner = np.linspace(-1.4, 1.4, 57)
        estimate = (solution.sol(inner)[0] - inner) / sigma**2
        errors.append(relative_score_error(estimate[:, None], p.score(inner[:, None])))
    assert errors[1] < errors[0] / 3  # o(sigma^2) bias: halving sigma cuts the squared error by ~16


def test_batched_networks_are_independent_and_match_formula() -> None:
    torch.manual_seed(0)
    model = BatchedMLP(3, 2, 8)
    x = torch.randn(3, 5, 2)
    w, b = model.weights, model.biases
    for m in range(3):
        h = torch.tanh(x[m] @ w[0][m] + b[0][m])
        h = torch.tanh(h @ w[1][m] + b[1][m])
        torch.testing.assert_close(model(x)[m], h @ w[2][m] + b[2][m])
    before = model(x)[0].detach().clone()
    with torch.no_grad():
        w[1][1] += 1.0
    torch.testing.assert_close(model(x)[0], before)


def test_jacobian_penalty_matches_autograd_jacobian() -> None:
    torch.manual_seed(1)
    model = BatchedMLP(2, 2, 8)
    x = torch.randn(2, 4, 2)
    penalty = jacobian_sq_norm(model, x.clone())
    for m in range(2):
        for i in range(4):
            jac = torch.autograd.functional.jacobian(
                lambda z, m=m: model(torch.stack([z[None]] * 2))[m, 0], x[m, i])
            assert penalty[m, i].item() == pytest.approx((jac**2).sum().item(), rel=1e-5)


def test_trained_dae_approaches_optimum() -> None:
    p = make_density("mixture1d")
    train = p.sample(4000, np.random.default_rng(0))
    val = p.sample(500, np.random.default_rng(2))
    result = train_autoencoders("dae", train, val, [0.3], hidden=32, steps=400, batch_size=256, lr=3e-3, seed=0)
    test = p.sample(1000, np.random.default_rng(1))
    r = reconstruct(result.model, test)[0]
    optimum = p.dae_optimum(test, 0.3)
    assert relative_score_error(r - test, optimum - test) < 0.2
    assert result.val_losses.shape == (20, 1) and result.val_losses[-1, 0] < result.val_losses[0, 0]
    with pytest.raises(ConfigError, match="dae or rcae"):
        train_autoencoders("vae", train, val, [0.3], 4, 1, 4, 1e-3, 0)


def test_rcae_training_runs_and_is_reproducible() -> None:
    p = make_density("ring2d")
    train, val = p.sample(500, np.random.default_rng(0)), p.sample(100, np.random.default_rng(1))
    first = train_autoencoders("rcae", train, val, [0.2, 0.1], hidden=8, steps=40, batch_size=32, lr=1e-3, seed=3)
    again = train_autoencoders("rcae", train, val, [0.2, 0.1], hidden=8, steps=40, batch_size=32, lr=1e-3, seed=3)
    np.testing.assert_array_equal(first.val_losses, again.val_losses)
    assert first.val_losses.shape == (20, 2) and np.isfinite(first.val_losses).all()


@pytest.mark.parametrize("name", ["mixture1d", "ring2d"])
def test_optimum_bias_falls_like_sigma4(name: str) -> None:
    """Main theorem for the exact DAE optimum (formerly the claims optimum_bias_order_sigma2[_ring]): the relative
    squared error of (r*(x) - x)/sigma^2 against grad log p falls like sigma^4 (log-log slope 4 as sigma -> 0)."""
    p = make_density(name)
    x = p.sample(20000, np.random.default_rng(0))
    sigmas = np.array([0.1, 0.05, 0.025])
    errors = [relative_score_error((p.dae_optimum(x, s) - x) / s**2, p.score(x)) for s in sigmas]
    slope = np.polyfit(np.log10(sigmas), np.log10(errors), 1)[0]
    assert 3.5 <= slope <= 4.5
    local = np.diff(np.log10(errors)) / np.diff(np.log10(sigmas))
    assert local[1] > local[0] - 0.05           # the local slope approaches 4 from below


def test_trapezoid_energy_difference_is_exact_for_gaussian_and_antisymmetric() -> None:
    """A Gaussian's score is linear, so the trapezoid rule integrates it exactly."""
    p = GaussianMixture(np.array([[0.5, -1.0]]), 0.7, np.array([1.0]))
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(20, 2)), rng.normal(size=(20, 2))
    np.testing.assert_allclose(trapezoid_difference(p.score)(x, y), exact_difference(p.log_prob)(x, y), atol=1e-12)
    ring = make_density("ring2d")
    forward, backward = trapezoid_difference(ring.score)(x, y), trapezoid_difference(ring.score)(y, x)
    np.testing.assert_allclose(forward, -backward)


def test_exact_mh_samples_a_gaussian_and_kl_separates() -> None:
    p = GaussianMixture(np.array([[1.0, -0.5]]), 0.8, np.array([1.0]))
    rng = np.random.default_rng(3)
    states = metropolis(rng.normal(size=(100, 2)), 600, 0.8, rng, exact_difference(p.log_prob))[200:]
    samples = states.reshape(-1, 2)
    np.testing.assert_allclose(samples.mean(0), [1.0, -0.5], atol=0.08)
    np.testing.assert_allclose(samples.std(0), [0.8, 0.8], atol=0.08)
    good = histogram_kl(samples, p.log_prob, 3.5, 30)
    shifted = histogram_kl(samples + 1.0, p.log_prob, 3.5, 30)
    assert good < 0.05 < shifted


def test_unknown_density_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="mixture1d or ring2d"):
        make_density("moons")


def write_dry_data(data_dir: Path) -> None:
    """Nothing to write: the paper scale draws its data from the closed-form densities (no files to read)."""
    data_dir.mkdir(parents=True, exist_ok=True)
