"""hier_poly: Hermite conventions against numpy/scipy and Gaussian quadrature, the target's closed forms (k = 2 as
x^T A x - tr A, k = 3 from scipy's He_3), the bottom layer spanning the degree-k Hermite space, the closed-form GD
iterate against the explicit loop and its limit against sklearn's ridge, the weight-decay selection and refit against
ridge on all rows, stage 1 against the population projection of h on explicit degree-2 Hermite features, the stage-2
head against the closed-form link and its invariance to affine maps of z, the random-features scale against its
second moment, kernel ridge against the normal equations, the normalised MSE's definition, and the n*
interpolation."""

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from numpy.polynomial import hermite_e
from omegaconf import OmegaConf
from scipy.special import eval_hermitenorm
from sklearn.linear_model import Ridge

from repro.core.units import Unit
from repro.papers.hier_poly import learners, task
from repro.papers.hier_poly.learners import Bottleneck, BottomLayer, gradient_descent, second_moments
from repro.papers.hier_poly.target import Feature, hermite, link
from repro.papers.hier_poly.task import crossing


def write_dry_data(data_dir: Path) -> None:
    """Nothing to write: the paper scale generates its data (Gaussian inputs, a random p, h = g(p)) and reads no
    file; scale=dry runs that generator and every learner with lengths shrunk (conf/paper_scale/hier_poly/dry.yaml)."""


def test_link_is_he1_plus_he3_and_satisfies_stein() -> None:
    z = np.linspace(-3, 3, 13)
    np.testing.assert_allclose(link(z), eval_hermitenorm(1, z) + eval_hermitenorm(3, z) / np.sqrt(6), atol=1e-12)
    nodes, weights = hermite_e.hermegauss(20)
    weights = weights / weights.sum()
    assert weights @ (link(nodes) * nodes) == pytest.approx(1.0)          # E[g(Z) Z] = E[g'(Z)] = 1
    assert weights @ link(nodes) ** 2 == pytest.approx(2.0)               # Var h = 1 + 3!/6 for Gaussian p


def test_hermite_is_orthonormal_he() -> None:
    z = np.linspace(-3, 3, 7)
    nodes, weights = hermite_e.hermegauss(30)
    weights = weights / weights.sum()
    for k in range(5):
        np.testing.assert_allclose(hermite(k, z) * np.sqrt(float(np.prod(np.arange(1, k + 1)))),
                                   eval_hermitenorm(k, z), atol=1e-10)
        for j in range(5):
            assert weights @ (hermite(j, nodes) * hermite(k, nodes)) == pytest.approx(float(j == k), abs=1e-10)


def test_feature_closed_forms_and_moments() -> None:
    rng = np.random.default_rng(1)
    d = 12
    x = rng.standard_normal((200_000, d))
    quadratic = Feature.random(2, d, rng)
    a = (quadratic.directions * (quadratic.signs / np.sqrt(2 * d))) @ quadratic.directions.T
    np.testing.assert_allclose(quadratic(x[:100]), np.einsum("ni,ij,nj->n", x[:100], a, x[:100]) - np.trace(a),
                               atol=1e-10)
    cubic = Feature.random(3, d, rng)
    z = x[:100] @ cubic.directions
    np.testing.assert_allclose(cubic(x[:100]), eval_hermitenorm(3, z) @ cubic.signs / np.sqrt(6 * d), atol=1e-10)
    for feature in (quadratic, cubic):
        p = feature(x)
        assert p.mean() == pytest.approx(0.0, abs=0.02)
        assert p.var() == pytest.approx(1.0, rel=0.05)


def degree_two_features(x: np.ndarray) -> np.ndarray:
    """Orthonormal degree-2 Hermite features, written out: (x_i^2 - 1)/sqrt(2) and x_i x_j (i < j)."""
    i, j = np.triu_indices(x.shape[1], k=1)
    return np.concatenate([(x**2 - 1) / np.sqrt(2), x[:, i] * x[:, j]], axis=1)


@pytest.mark.parametrize("k, d, dimension", [(2, 6, 21), (3, 5, 35)])
def test_bottom_layer_spans_exactly_the_degree_k_space(k: int, d: int, dimension: int) -> None:
    """He_k(v . x) over many v spans the degree-k Hermite space: C(d+k-1, k) dimensions, not more, not less."""
    rng = np.random.default_rng(2)
    features = BottomLayer(k, d, 3 * dimension, rng)(rng.standard_normal((2000, d)))
    singular = np.linalg.svd(features, compute_uv=False)
    assert np.sum(singular > 1e-8 * singular[0]) == dimension


def test_gradient_descent_closed_form_matches_the_loop_and_ridge() -> None:
    rng = np.random.default_rng(3)
    features, y = rng.standard_normal((80, 6)), rng.standard_normal(80)
    gram, moment = features.T @ features / 80, features.T @ y / 80
    decay = 0.05
    beta = 2 * (np.linalg.eigvalsh(gram)[-1] + decay)
    weights = np.zeros(6)
    for _ in range(37):   # the loop: w <- w - grad L / beta, L = mean (F w - y)^2 + decay |w|^2
        weights -= (2 * features.T @ (features @ weights - y) / 80 + 2 * decay * weights) / beta
    np.testing.assert_allclose(gradient_descent(gram, moment, decay, 37)[0], weights, rtol=1e-10)
    limit = Ridge(alpha=decay * 80, fit_intercept=False).fit(features, y).coef_
    np.testing.assert_allclose(gradient_descent(gram, moment, decay, 100_000)[0], limit, rtol=1e-8)


def test_second_moments_accumulate_over_chunks() -> None:
    x, y = np.random.default_rng(4).standard_normal((40_000, 3)), np.arange(40_000.0)
    gram, moment = second_moments(lambda rows: rows**2, x, y)
    np.testing.assert_allclose(gram, (x**2).T @ x**2 / 40_000)
    np.testing.assert_allclose(moment, (x**2).T @ y / 40_000)


def test_stage_one_matches_the_population_projection() -> None:
    """With many samples the trained bottleneck is the projection of h on the degree-2 space: its correlation with p
    equals that of the population projection E[h phi] . phi (phi orthonormal, so E[h phi] are its coefficients,
    estimated here on separate samples), and both are close to 1 (p nearly Gaussian: the projection ~ E[g'(p)] p)."""
    rng = np.random.default_rng(5)
    d = 6
    feature = Feature.random(2, d, rng)
    bottleneck = Bottleneck(BottomLayer(2, d, 42, rng))
    x = rng.standard_normal((100_000, d))
    bottleneck.fit(x, link(feature(x)), 1e-6, 2000, 0.1)
    reference = rng.standard_normal((200_000, d))
    coefficients = degree_two_features(reference).T @ link(feature(reference)) / len(reference)
    x_test = rng.standard_normal((50_000, d))
    p_test = feature(x_test)
    learned = np.corrcoef(bottleneck(x_test), p_test)[0, 1]
    population = np.corrcoef(degree_two_features(x_test) @ coefficients, p_test)[0, 1]
    assert learned == pytest.approx(population, abs=0.01)
    assert population > 0.97


def test_crossing_interpolates_in_log_n() -> None:
    n = np.array([100.0, 200.0, 400.0])
    assert crossing(n, np.array([0.5, 0.8, 1.0]), 0.9) == pytest.approx(np.exp((np.log(200) + np.log(400)) / 2))
    assert crossing(n, np.array([0.95, 0.97, 0.99]), 0.9) == 100.0
    assert np.isnan(crossing(n, np.array([0.5, 0.6, 0.7]), 0.9))


def test_train_layer_picks_the_best_decay_and_refits_on_all_rows() -> None:
    """Clean linear data: the tiny weight decay wins on the held-out rows by far, and the refit on every row is
    ridge (sklearn, alpha = decay n) on all of them."""
    rng = np.random.default_rng(6)
    features = rng.standard_normal((400, 5))
    y = features @ rng.standard_normal(5) + 0.1 * rng.standard_normal(400)
    weights, _ = learners.train_layer(lambda rows: rows, features, y, [1e-8, 10.0], 10**12, 0.2)
    limit = Ridge(alpha=1e-8 * 400, fit_intercept=False).fit(features, y).coef_
    np.testing.assert_allclose(weights, limit, rtol=1e-6)


def test_scalar_head_fits_the_link_and_ignores_affine_maps_of_z() -> None:
    """Stage 2 on z = p ~ N(0, 1) learns g (closed form) to a small error, tails included (the kinks cover the
    range of z); standardising z makes the fit the same for 3 z + 1."""
    rng = np.random.default_rng(7)
    z, z_test = rng.standard_normal(2000), rng.standard_normal(10_000)
    head = learners.ScalarHead(48, np.random.default_rng(8))
    head.fit(z, link(z), [1e-6], 10**10, 0.1)
    assert np.mean((head.predict(z_test) - link(z_test)) ** 2) / link(z_test).var() < 0.01
    shifted = learners.ScalarHead(48, np.random.default_rng(8))
    shifted.fit(3 * z + 1, link(z), [1e-6], 10**10, 0.1)
    np.testing.assert_allclose(shifted.predict(3 * z_test + 1), head.predict(z_test), atol=1e-6)


def test_random_features_preactivations_have_unit_variance() -> None:
    """w ~ N(0, I/m2): E_x (w . sigma2(V x))^2 = w^T K w with K_ij = (v_i . v_j)^k, whose mean over w is
    tr K / m2 = 1."""
    rng = np.random.default_rng(9)
    bottom = BottomLayer(2, 6, 32, rng)
    model = learners.RandomFeatures(bottom, 256, rng)
    preactivations = bottom(rng.standard_normal((5000, 6))) @ model.middle
    assert np.mean(preactivations**2) == pytest.approx(1.0, abs=0.15)


def test_kernel_ridge_solves_the_normal_equations_on_all_samples() -> None:
    """One grid point: the prediction is k(x*, X) (K + alpha I)^{-1} y with k = exp(-c |x - x'|^2 / (2 d)), fit
    on every sample."""
    rng = np.random.default_rng(10)
    x, y, x_test = rng.standard_normal((60, 4)), rng.standard_normal(60), rng.standard_normal((7, 4))

    def kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.exp(-2.0 * ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1) / (2 * 4))

    expected = kernel(x_test, x) @ np.linalg.solve(kernel(x, x) + 0.1 * np.eye(60), y)
    np.testing.assert_allclose(learners.kernel_ridge(x, y, x_test, [2.0], [0.1], 0.2), expected, rtol=1e-8)


class FakeContext:
    """The few RunContext services run_unit uses, with fixed seeds (mutation copies cannot compose the config)."""

    log = logging.getLogger("test")

    def data_seed(self, *names: object) -> int:
        return 11

    def child_seed(self, *names: object) -> int:
        return 12

    def shared(self, name: str, build: Callable[[], object]) -> object:
        return build()

    def record_convergence(self, converged: bool) -> None:
        pass


def test_normalised_mse_is_divided_by_the_variance_of_h(monkeypatch: pytest.MonkeyPatch) -> None:
    """A prediction off by 1 everywhere has normalised MSE 1 / Var h on the unit's test points."""
    cfg = OmegaConf.load(Path(__file__).parents[1] / "conf" / "paper" / "hier_poly.yaml")
    cfg.problems = [{"k": 2, "ds": [4], "ratios": [32], "max_n": 4608, "krr_ds": []}]
    cfg.test_points, cfg.width = 500, 16
    monkeypatch.setattr(learners.ScalarHead, "predict", lambda self, z: link(z) + 1.0)
    [row] = task.run_unit(cfg, FakeContext(), Unit("fit", "oracle", (("k", 2), ("d", 4))))
    feature, _, x_test = task.setup(cfg, FakeContext(), 2, 4)
    assert row["nmse"] == pytest.approx(1 / link(feature(x_test)).var(), rel=1e-9)
