"""pac_invariant: the closed-form environment covariance against simulation (numpy.cov), DAG validity
(networkx), exact invariance of the causal predictor (sklearn OLS per environment), the invariance residual's
zero set, and the learners' optimality/feasibility."""

from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from sklearn.linear_model import LinearRegression

from repro.papers.pac_invariant.learn import invariant_learner, pooled_erm, residuals, risks
from repro.papers.pac_invariant.sem import LinearSEM, random_sem
from repro.papers.pac_invariant.task import causal_predictor


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
