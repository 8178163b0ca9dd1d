"""pac_invariant: the closed-form environment covariance against simulation (numpy.cov), DAG validity
(networkx), exact invariance of the causal predictor (sklearn OLS per environment), the invariance residual's
zero set, the learners' optimality/feasibility (the invariant learner against a brute-force grid), the generator's
laws (degrees, weight ranges, target, sites, intervention ranges) and the evaluation metrics on closed forms."""

from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from sklearn.linear_model import LinearRegression

from repro.papers.pac_invariant.learn import invariant_learner, pooled_erm, residuals, risks
from repro.papers.pac_invariant.sem import LinearSEM, random_sem
from repro.papers.pac_invariant.task import causal_predictor, evaluate


def write_dry_data(data_dir: Path) -> None:
    """Nothing to write: the paper scale generates its data (random linear SEMs, sampled interventions, exact
    population covariances) and reads no file; scale=dry runs that generator and every learner with lengths shrunk
    (conf/paper_scale/pac_invariant/dry.yaml)."""


@pytest.fixture
def sem() -> LinearSEM:
    return random_sem(7, 2, 2, np.random.default_rng(0))


def simulate(weights: np.ndarray, variances: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Ancestral sampling x_j = sum_i B[j, i] x_i + sqrt(D_j) e_j, (n, d)."""
    x = np.zeros((n, len(weights)))
    for j in range(len(weights)):
        x[:, j] = x @ weights[j] + np.sqrt(variances[j]) * rng.standard_normal(n)
    return x


def test_random_sem_is_a_valid_dag_with_informative_sites(sem: LinearSEM) -> None:
    graph = nx.from_numpy_array(sem.weights.T, create_using=nx.DiGraph)  # edge i -> j where B[j, i] != 0
    assert nx.is_directed_acyclic_graph(graph)
    assert all(graph.in_degree(j) == min(j, 2) for j in range(7))
    assert sem.target == 3 and sem.target not in sem.sites
    assert any(s in graph.successors(sem.target) for s in sem.sites)


def test_environment_covariance_matches_simulation(sem: LinearSEM) -> None:
    rng = np.random.default_rng(1)
    (environment,) = sem.sample_interventions(1, rng)
    sxx, sxy, syy = sem.covariances([environment])
    x = simulate(*environment, 400_000, rng)
    empirical = np.cov(x.T)
    cov = sem.covariates
    np.testing.assert_allclose(sxx[0], empirical[np.ix_(cov, cov)], atol=0.05 * np.abs(sxx[0]).max())
    np.testing.assert_allclose(sxy[0], empirical[cov, sem.target], atol=0.05 * np.abs(sxx[0]).max())
    assert syy[0] == pytest.approx(empirical[sem.target, sem.target], rel=0.02)


def test_chunked_covariances_equal_the_whole_batch(sem: LinearSEM) -> None:
    """intervention_covariances (built a chunk at a time, for paper-scale memory) draws the same interventions
    from the generator and gives bit-identical covariances, across chunk boundaries."""
    whole = sem.covariances(sem.sample_interventions(23, np.random.default_rng(7)))
    rng = np.random.default_rng(7)
    chunked = sem.intervention_covariances(23, rng, chunk=5)
    for a, b in zip(whole, chunked, strict=True):
        np.testing.assert_array_equal(a, b)
    fresh = np.random.default_rng(7)
    sem.sample_interventions(23, fresh)
    assert rng.random() == fresh.random()   # the generator is left where the whole batch leaves it


def test_interventions_change_only_the_sites(sem: LinearSEM) -> None:
    environments = sem.sample_interventions(5, np.random.default_rng(2))
    untouched = [j for j in range(7) if j not in sem.sites]
    for weights, variances in environments:
        np.testing.assert_array_equal(weights[untouched], sem.weights[untouched])
        np.testing.assert_array_equal(variances[untouched], 1.0)
        assert all(0.25 <= variances[s] <= 4.0 for s in sem.sites)


def test_causal_predictor_is_exactly_invariant_and_is_per_environment_ols(sem: LinearSEM) -> None:
    rng = np.random.default_rng(3)
    environments = sem.sample_interventions(50, rng)
    sxx, sxy, _ = sem.covariances(environments)
    causal = causal_predictor(sem)
    assert np.abs(residuals(causal, sxx, sxy)).max() < 1e-10
    x = simulate(*environments[0], 100_000, rng)
    parents = sem.parents(sem.target)
    fitted = LinearRegression(fit_intercept=False).fit(x[:, parents], x[:, sem.target]).coef_
    np.testing.assert_allclose(fitted, sem.weights[sem.target, parents], atol=0.02)


def test_residual_vanishes_at_best_scaling_along_a_direction(sem: LinearSEM) -> None:
    sxx, sxy, syy = sem.covariances(sem.sample_interventions(1, np.random.default_rng(4)))
    u = np.random.default_rng(5).normal(size=6)
    best = minimize_scalar(lambda c: risks(c * u, sxx, sxy, syy)[0], options={"xtol": 1e-12}).x
    assert residuals(best * u, sxx, sxy)[0] == pytest.approx(0.0, abs=1e-6)
    assert abs(residuals(2 * best * u, sxx, sxy)[0]) > 1e-3


def test_learners(sem: LinearSEM) -> None:
    sxx, sxy, syy = sem.covariances(sem.sample_interventions(16, np.random.default_rng(6)))
    erm = pooled_erm(sxx, sxy)
    perturbed = erm + 1e-3 * np.random.default_rng(7).normal(size=6)
    assert risks(erm, sxx, sxy, syy).mean() < risks(perturbed, sxx, sxy, syy).mean()
    causal = causal_predictor(sem)
    w = invariant_learner(sxx, sxy, syy, 0.05, [causal, erm, (causal + erm) / 2])
    assert np.abs(residuals(w, sxx, sxy)).max() <= 0.05 + 1e-7
    assert risks(erm, sxx, sxy, syy).mean() <= risks(w, sxx, sxy, syy).mean() <= risks(causal, sxx, sxy, syy).mean()


def test_generator_laws_over_many_draws() -> None:
    """Edge magnitudes in [0.5, 1.5], Y = node floor(d/2) (even d too), Y never a site, one site a child of Y."""
    magnitudes = []
    for seed in range(40):
        d = 6 + seed % 3
        sem = random_sem(d, 2, 3, np.random.default_rng(100 + seed))
        edges = np.abs(sem.weights[sem.weights != 0])
        assert edges.min() >= 0.5 and edges.max() <= 1.5
        assert sem.target == d // 2
        assert sem.target not in sem.sites and len(set(sem.sites)) == 3
        assert any(sem.weights[s, sem.target] != 0 for s in sem.sites)
        magnitudes.append(edges)
    magnitudes = np.concatenate(magnitudes)
    assert magnitudes.min() < 0.6 and magnitudes.max() > 1.4   # U([0.5, 1.5]) magnitudes fill the interval


def test_intervention_parameters_fill_their_ranges(sem: LinearSEM) -> None:
    """New incoming weights ~ U[-2, 2] and noise std log-uniform on [0.5, 2]: log variance ~ U[log 1/4, log 4]."""
    environments = sem.sample_interventions(800, np.random.default_rng(8))
    site = next(s for s in sem.sites if len(sem.parents(s)))
    weights = np.array([b[site, sem.parents(site)] for b, _ in environments]).ravel()
    assert weights.min() < -1.9 and weights.max() > 1.9 and np.abs(weights).max() <= 2
    log_variance = np.log([v[site] for _, v in environments])
    assert log_variance.min() < np.log(0.3) and log_variance.max() > np.log(3.5)
    assert log_variance.mean() == pytest.approx(0.0, abs=0.1)
    assert log_variance.std() == pytest.approx(2 * np.log(4) / np.sqrt(12), rel=0.05)


def test_evaluate_counts_both_signs_and_takes_the_worst_risk() -> None:
    """One covariate, Sigma_XX = s, Sigma_XY = c, w = 1: g = s - c and R = Sigma_YY - 2 c + s, per environment."""
    sxx = np.array([1.0, 1.0, 1.0, 1.0])[:, None, None]
    sxy = np.array([[1.0], [0.9], [1.3], [0.95]])
    syy = np.array([2.0, 2.0, 5.0, 2.0])
    scores = evaluate(np.array([1.0]), (sxx, sxy, syy), 0.08)
    assert scores["violation_rate"] == 0.5                     # |g| = 0, 0.1, 0.3, 0.05 against eps = 0.08
    assert scores["violation_rate_2eps"] == 0.25
    assert scores["max_abs_residual"] == pytest.approx(0.3)
    risk = syy - 2 * sxy[:, 0] + 1
    assert scores["ood_risk_worst"] == pytest.approx(risk.max())
    assert scores["ood_risk_mean"] == pytest.approx(risk.mean())


def test_invariant_learner_matches_a_brute_force_grid() -> None:
    """Two covariates: the learner's risk is the lowest over every eps-invariant point of a fine grid of w (the
    grid's best feasible point bounds the constrained minimum from above), and it is eps-invariant itself."""
    sem = random_sem(3, 2, 1, np.random.default_rng(3))
    sxx, sxy, syy = sem.covariances(sem.sample_interventions(6, np.random.default_rng(4)))
    erm = pooled_erm(sxx, sxy)
    w = invariant_learner(sxx, sxy, syy, 0.05, [np.zeros(2), erm, erm / 2])   # w = 0 is exactly invariant
    axis = np.linspace(-2, 2, 801)
    w1, w2 = (a.ravel()[:, None] for a in np.meshgrid(axis, axis))
    quadratic = w1**2 * sxx[:, 0, 0] + 2 * w1 * w2 * sxx[:, 0, 1] + w2**2 * sxx[:, 1, 1]
    g = quadratic - w1 * sxy[:, 0] - w2 * sxy[:, 1]
    risk = np.mean(syy - 2 * (w1 * sxy[:, 0] + w2 * sxy[:, 1]) + quadratic, axis=1)
    grid_best = risk[np.abs(g).max(axis=1) <= 0.05].min()
    assert np.abs(residuals(erm, sxx, sxy)).max() > 0.05      # the constraint binds: pooled ERM is not invariant
    learned = risks(w, sxx, sxy, syy).mean()
    assert np.abs(residuals(w, sxx, sxy)).max() <= 0.05 + 1e-7
    assert grid_best - 0.01 <= learned <= grid_best + 1e-6


def test_invariant_learner_returns_pooled_erm_when_it_is_invariant() -> None:
    """When pooled ERM (the unconstrained minimiser of the pooled risk) is itself eps-invariant, it solves the
    constrained problem: the learner's pooled risk equals ERM's, whatever the starts."""
    sem = random_sem(4, 2, 1, np.random.default_rng(3))
    sxx, sxy, syy = sem.covariances(sem.sample_interventions(2, np.random.default_rng(4)))
    erm = pooled_erm(sxx, sxy)
    assert np.abs(residuals(erm, sxx, sxy)).max() <= 0.05
    w = invariant_learner(sxx, sxy, syy, 0.05, [np.zeros(3), erm, erm / 2])
    assert risks(w, sxx, sxy, syy).mean() == pytest.approx(risks(erm, sxx, sxy, syy).mean(), rel=1e-9)
