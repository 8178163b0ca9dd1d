"""rae_score: the mixtures' scores and the exact DAE optimum against scipy (finite differences, quadrature),
the heat-equation small-sigma expansion, the RCAE Euler-Lagrange optimum against the Gaussian closed form and the
score, the spiral and ninja-star densities, the batched networks, their forward-mode Jacobian and the RCAE loss
(autograd), the Metropolis-Hastings pieces, and the score rows' metrics against scipy's smoothed mixture."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from scipy import integrate, stats

from repro.core.errors import ConfigError
from repro.papers.rae_score.densities import GaussianMixture, NinjaStar, make_density, rcae_optimum, spiral
from repro.papers.rae_score.models import (
    BatchedMLP,
    criterion_losses,
    forward_with_jacobian,
    reconstruct,
    train_autoencoders,
)
from repro.papers.rae_score.sampling import (
    exact_difference,
    first_order_difference,
    histogram_kl,
    metropolis,
    trapezoid_difference,
)
from repro.papers.rae_score.task import relative_score_error, score_rows


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


def test_rcae_optimum_is_linear_shrinkage_for_a_gaussian() -> None:
    """p = N(0, s^2): r(x) = a x solves p (r - x) = sigma^2 (p r')' on the whole line iff a - 1 = -sigma^2 a / s^2,
    i.e. a = s^2 / (s^2 + sigma^2); the truncated problem agrees away from its boundary layers."""
    s, sigma = 0.5, 0.3
    p = GaussianMixture(np.array([[0.0]]), s, np.array([1.0]))
    x = np.linspace(-1.0, 1.0, 21)
    np.testing.assert_allclose(rcae_optimum(p, sigma, 3.0)(x), s**2 / (s**2 + sigma**2) * x, atol=1e-5)


def test_rcae_euler_lagrange_optimum_approaches_score() -> None:
    """(r - x)/sigma^2 -> d log p/dx with an o(sigma^2) bias: halving sigma cuts the squared error several-fold
    (by 16 in the limit; near the antimode the score bends on a scale ~0.1, so sigma = 0.1 is not yet there)."""
    p = make_density("mixture1d")
    inner = np.linspace(-1.4, 1.4, 57)
    errors = [relative_score_error(((rcae_optimum(p, sigma, 2.2)(inner) - inner) / sigma**2)[:, None],
                                   p.score(inner[:, None])) for sigma in (0.1, 0.05)]
    assert errors[1] < errors[0] / 3


def test_dae_and_rcae_optima_agree_to_leading_order() -> None:
    """The DAE (Tweedie) and RCAE optima share the leading term sigma^2 grad log p: their relative distance in
    r - x vanishes as sigma -> 0 (where p is not negligible: points drawn from p inside [-2.2, 2.2])."""
    p = make_density("mixture1d")
    x = p.sample(2000, np.random.default_rng(7))[:, 0]
    x = x[np.abs(x) < 2.2]

    def distance(sigma: float) -> float:
        dae = p.dae_optimum(x[:, None], sigma)[:, 0] - x
        return float(((rcae_optimum(p, sigma, 2.2)(x) - x - dae) ** 2).sum() / (dae**2).sum())

    assert distance(0.025) < distance(0.1) / 4 and distance(0.2) < 0.01


def test_ninja_star_score_and_samples() -> None:
    star = NinjaStar()
    rng = np.random.default_rng(4)
    x = rng.uniform(-3, 3, (40, 2))
    step = 1e-6
    numeric = np.stack([(star.log_prob(x + step * e) - star.log_prob(x - step * e)) / (2 * step)
                        for e in np.eye(2)], 1)
    np.testing.assert_allclose(star.score(x), numeric, rtol=1e-5, atol=1e-6)
    # second moments of the samples against quadrature of exp(-E) on another grid (midpoint rule on [-5.5, 5.5]^2)
    axis = np.arange(-5.5, 5.5, 0.008) + 0.004
    grid = np.stack(np.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)
    weights = np.exp(star.log_prob(grid))
    moments = (grid**2 * weights[:, None]).sum(0) / weights.sum()
    samples = star.sample(200000, rng)
    np.testing.assert_allclose((samples**2).mean(0), moments, rtol=0.02)
    assert np.abs(np.abs(samples[:, 0]) - np.abs(samples[:, 1])).mean() < 0.3  # the arms lie on the diagonals


def test_spiral_midpoint_rule_is_fine_enough() -> None:
    """800 nodes along the curve give the log-density of 8000 nodes within 0.04 at points drawn from p."""
    coarse, fine = spiral(), spiral(components=8000)
    x = coarse.sample(500, np.random.default_rng(5))
    np.testing.assert_allclose(coarse.log_prob(x), fine.log_prob(x), atol=0.04)
    t = np.array([3.0, 9.0, 15.0])
    ends = 0.04 * t[:, None] * np.stack([np.sin(t), np.cos(t)], 1)
    assert np.abs(fine.log_prob(ends[1:2]) - np.log(1 / 12 / (0.04 * 9) / np.sqrt(2 * np.pi * 0.02**2))) < 0.05


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
    r, penalty = forward_with_jacobian(model, x.clone())
    torch.testing.assert_close(r, model(x))
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


def test_trapezoid_chain_is_the_exact_chain_for_a_gaussian() -> None:
    """With a Gaussian's (linear) score the trapezoid rule is exact, so with the same random numbers the chain that
    caches scores of its current states makes the same moves as the chain that caches log p."""
    p = GaussianMixture(np.array([[0.3, 0.2]]), 0.6, np.array([1.0]))
    start = np.random.default_rng(8).normal(size=(30, 2))
    exact = metropolis(start, 200, 0.5, np.random.default_rng(9), exact_difference(p.log_prob))
    estimated = metropolis(start, 200, 0.5, np.random.default_rng(9), trapezoid_difference(p.score))
    np.testing.assert_allclose(estimated, exact)
    assert 0.2 < (np.abs(np.diff(exact, axis=0)).sum(-1) > 0).mean() < 0.9


def test_first_order_difference_misses_the_curvature_term() -> None:
    """For a Gaussian, E(y) - E(x) = grad E(x) . (y - x) + |y - x|^2 / (2 s^2) exactly."""
    p = GaussianMixture(np.array([[0.5, -1.0]]), 0.7, np.array([1.0]))
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(20, 2)), rng.normal(size=(20, 2))
    curvature = ((y - x) ** 2).sum(-1) / (2 * 0.7**2)
    np.testing.assert_allclose(first_order_difference(p.score)(x, y) + curvature,
                               exact_difference(p.log_prob)(x, y), atol=1e-12)


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
    with pytest.raises(ConfigError, match="mixture1d, ring2d, spiral or ninja_star"):
        make_density("moons")


def write_dry_data(data_dir: Path) -> None:
    """Nothing to write: the paper scale draws its data from the closed-form densities (no files to read)."""
    data_dir.mkdir(parents=True, exist_ok=True)


def test_rcae_loss_is_reconstruction_plus_sigma_squared_jacobian_norm() -> None:
    """L_m = mean ||r(x) - x||^2 + sigma_m^2 mean ||dr/dx||_F^2, the Jacobian by torch.autograd."""
    torch.manual_seed(2)
    model = BatchedMLP(2, 2, 6)
    x, sigma = torch.randn(2, 5, 2), torch.tensor([0.3, 0.7]).view(2, 1, 1)
    losses = criterion_losses("rcae", model, x, sigma, None)
    for m in range(2):
        def single(z: torch.Tensor, m: int = m) -> torch.Tensor:
            return model(torch.stack([z[None]] * 2))[m, 0]
        jacobians = [torch.autograd.functional.jacobian(single, x[m, i]) for i in range(5)]
        penalty = torch.stack([(j**2).sum() for j in jacobians]).mean()
        expected = ((model(x)[m] - x[m]) ** 2).sum(-1).mean() + sigma.view(-1)[m] ** 2 * penalty
        assert losses[m].item() == pytest.approx(expected.item(), rel=1e-5)


def test_relative_score_error_closed_form() -> None:
    truth = np.array([[1.0, 0.0], [0.0, 2.0]])             # E ||truth||^2 = 2.5
    estimate = truth + np.array([[0.5, 0.0], [0.0, -1.0]])  # E ||error||^2 = 0.625
    assert relative_score_error(estimate, truth) == pytest.approx(0.25)


def test_ring_components_are_equally_spaced_on_the_circle() -> None:
    means = make_density("ring2d").means
    np.testing.assert_allclose(np.linalg.norm(means, axis=1), 2.0)
    np.testing.assert_allclose(np.linalg.norm(means - np.roll(means, 1, axis=0), axis=1), 4 * np.sin(np.pi / 8))


def test_score_rows_of_the_exact_optimum_against_scipy() -> None:
    """Method `optimum` on the ring: (r* - x)/sigma^2 is the score of p_sigma = p * N(0, sigma^2 I) (scipy mixture
    with variance s^2 + sigma^2, central differences), so score_err is its relative error against p's score and
    the mode reconstruction error is sigma^4 |grad log p_sigma(mu_k)|^2; the antimode 0 is a stationary point."""
    p, sigma = make_density("ring2d"), 0.3
    cfg = OmegaConf.create({"eval": {"test_points": 400, "rcae_half_width": 2.2, "curve_range": [-1, 1],
                                     "curve_points": 3}})
    ctx = SimpleNamespace(data_seed=lambda *names: 17, unit=SimpleNamespace(replicate=0))
    (row,) = score_rows(cfg, ctx, "ring2d", "optimum", sigma)

    def fd_score(x: np.ndarray, variance: float) -> np.ndarray:
        def log_p(z: np.ndarray) -> np.ndarray:
            return np.log(sum(w * stats.multivariate_normal(mu, variance).pdf(z) for w, mu in zip(p.weights, p.means)))
        return np.stack([(log_p(x + 1e-5 * e) - log_p(x - 1e-5 * e)) / 2e-5 for e in np.eye(2)], -1)

    x = p.sample(400, np.random.default_rng(17))
    smoothed, plain = fd_score(x, 0.25**2 + sigma**2), fd_score(x, 0.25**2)
    expected = ((smoothed - plain) ** 2).sum(-1).mean() / (plain**2).sum(-1).mean()
    assert row["score_err"] == pytest.approx(expected, rel=1e-4)
    at_modes = sigma**4 * (fd_score(p.means, 0.25**2 + sigma**2) ** 2).sum(-1).mean()
    assert row["recon_modes"] == pytest.approx(at_modes, rel=1e-4)
    assert row["recon_antimode"] < 1e-20 and row["dist_to_optimum"] == 0.0


def test_histogram_kl_is_kl_of_the_histogram_to_the_grid_density() -> None:
    """Samples at cell centres with chosen counts: KL(q || p) = sum q log(q / p) (scipy's rel_entr), q the
    histogram and p the density normalised over the same 4 x 4 cells."""
    from scipy.special import rel_entr

    centres = np.array([-1.5, -0.5, 0.5, 1.5])
    cells = np.stack(np.meshgrid(centres, centres, indexing="ij"), -1).reshape(-1, 2)
    counts = np.arange(1, 17)
    samples = np.repeat(cells, counts, axis=0)
    p = make_density("ring2d")
    density = np.exp(p.log_prob(cells))
    expected = rel_entr(counts / counts.sum(), density / density.sum()).sum()
    assert histogram_kl(samples, p.log_prob, 2.0, 4) == pytest.approx(expected, rel=1e-10)
