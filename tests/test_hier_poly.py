"""hier_poly: Hermite conventions against numpy/scipy and Gaussian quadrature, orthonormality of the degree-2
features, the target's closed-form moments, stage 1 as one autograd gradient step from W = 0, its population
limit (the projection of h on degree 2 is E[g'(Z)] p), ridge against sklearn, the n* interpolation."""

from pathlib import Path

import numpy as np
import pytest
import torch
from numpy.polynomial import hermite_e
from scipy.special import eval_hermitenorm
from sklearn.linear_model import Ridge

from repro.papers.hier_poly.learners import ridge_fit, stage_one_direction
from repro.papers.hier_poly.target import feature_coefficients, hermite_features, link, quadratic, random_quadratic
from repro.papers.hier_poly.task import crossing


def write_dry_data(data_dir: Path) -> None:
    """Nothing to write: the paper scale generates its data (Gaussian inputs, a random quadratic p, h = g(p)) and
    reads no file; scale=dry runs that generator and every learner with lengths shrunk
    (conf/paper_scale/hier_poly/dry.yaml)."""


def test_link_is_he1_plus_he3_and_satisfies_stein() -> None:
    z = np.linspace(-3, 3, 13)
    np.testing.assert_allclose(link(z), hermite_e.hermeval(z, [0, 1, 0, 1 / np.sqrt(6)]), atol=1e-12)
    np.testing.assert_allclose(link(z), eval_hermitenorm(1, z) + eval_hermitenorm(3, z) / np.sqrt(6), atol=1e-12)
    nodes, weights = hermite_e.hermegauss(20)
    weights = weights / weights.sum()
    assert weights @ (link(nodes) * nodes) == pytest.approx(1.0)          # E[g(Z) Z] = E[g'(Z)] = 1
    assert weights @ link(nodes) ** 2 == pytest.approx(2.0)               # Var h = 1 + 3!/6


def test_degree_two_features_are_orthonormal() -> None:
    x = np.random.default_rng(0).standard_normal((200_000, 5))
    phi = hermite_features(x)
    assert phi.shape == (200_000, 15)
    np.testing.assert_allclose(phi.T @ phi / len(x), np.eye(15), atol=0.02)
    np.testing.assert_allclose(phi.mean(0), 0, atol=0.01)


def test_quadratic_target_moments_and_feature_coordinates() -> None:
    rng = np.random.default_rng(1)
    d = 16
    a = random_quadratic(d, rng)
    np.testing.assert_allclose(np.abs(np.linalg.eigvalsh(a)), 1 / np.sqrt(2 * d), rtol=1e-10)
    x = rng.standard_normal((100_000, d))
    p = quadratic(x, a)
    np.testing.assert_allclose(hermite_features(x) @ feature_coefficients(a), p, atol=1e-10)
    assert 2 * np.sum(a**2) == pytest.approx(1.0)
    assert p.mean() == pytest.approx(0.0, abs=0.02)
    assert p.var() == pytest.approx(1.0, rel=0.03)


def test_stage_one_is_one_gradient_step_from_zero() -> None:
    """Square loss, W = 0, a_i = +-1/m, biases in [0.5, 1.5] (ReLUs active): grad of row i = -2 a_i h_hat (+ a
    term along mean phi, which vanishes in the population), so one step moves every row along +-h_hat."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((300, 4))
    phi = hermite_features(x)
    y = link(quadratic(x, random_quadratic(4, rng)))
    m = 6
    outer = torch.tensor(rng.choice([-1.0, 1.0], m) / m)
    biases = torch.tensor(rng.uniform(0.5, 1.5, m))
    middle = torch.zeros(m, phi.shape[1], dtype=torch.float64, requires_grad=True)
    features, target = torch.tensor(phi), torch.tensor(y)
    prediction = torch.relu(features @ middle.T + biases) @ outer
    ((prediction - target) ** 2).mean().backward()
    # f(x) at W = 0 is the constant sum_i a_i b_i; its part of the gradient multiplies mean phi, not h_hat
    constant = float(outer @ biases)
    expected = -2 * outer.numpy()[:, None] * (stage_one_direction(phi, y) - constant * phi.mean(0))[None]
    np.testing.assert_allclose(middle.grad.numpy(), expected, atol=1e-12)


def test_stage_one_direction_recovers_p_in_the_population() -> None:
    rng = np.random.default_rng(3)
    d = 10
    a = random_quadratic(d, rng)
    x = rng.standard_normal((200_000, d))
    direction = stage_one_direction(hermite_features(x), link(quadratic(x, a)))
    truth = feature_coefficients(a)
    cosine = direction @ truth / np.linalg.norm(direction) / np.linalg.norm(truth)
    assert cosine > 0.9


def test_ridge_matches_sklearn() -> None:
    rng = np.random.default_rng(4)
    features, y = rng.standard_normal((50, 7)), rng.standard_normal(50)
    lam = 0.3
    expected = Ridge(alpha=lam * 50, fit_intercept=False).fit(features, y).coef_
    np.testing.assert_allclose(ridge_fit(features, y, lam), expected, rtol=1e-8)


def test_crossing_interpolates_in_log_n() -> None:
    n = np.array([100.0, 200.0, 400.0])
    assert crossing(n, np.array([0.5, 0.8, 1.0]), 0.9) == pytest.approx(np.exp((np.log(200) + np.log(400)) / 2))
    assert crossing(n, np.array([0.95, 0.97, 0.99]), 0.9) == 100.0
    assert np.isnan(crossing(n, np.array([0.5, 0.6, 0.7]), 0.9))
