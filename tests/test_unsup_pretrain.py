"""unsup_pretrain: the closed-form excess risk and residual variance against Monte Carlo, the OLS risk formula,
the FA representation against the closed-form PPCA MLE and the true posterior-mean map (the "informative"
condition: equal up to an invertible transform), and the mixture's exact conditional errors against sampled
labels and scipy densities, and the contrastive instance: its pair sampler, the closed-form log density ratio
against scipy's Gaussian densities, and the pair-label MLE recovering the true parameters and representation."""

from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from scipy.linalg import subspace_angles
from scipy.special import softmax

from repro.papers.unsup_pretrain import contrastive, factor, mixture


def write_dry_data(data_dir: Path) -> None:
    """Nothing to write: the paper scale generates its data (random factor models and mixtures from the unit's
    seeds); scale=dry runs that same generator with the sample counts shrunk by conf/paper_scale/.../dry.yaml."""
    data_dir.mkdir(parents=True, exist_ok=True)


@pytest.fixture
def truth() -> factor.FactorModel:
    return factor.random_factor_model(12, 2, 1.0, 0.5, np.random.default_rng(0))


def test_excess_risk_and_residual_variance_match_monte_carlo(truth: factor.FactorModel) -> None:
    x, y = truth.sample(400_000, np.random.default_rng(1))
    coef, intercept = np.random.default_rng(2).normal(size=12) * 0.3, 0.2
    bayes = x @ truth.bayes_coefficients
    monte_carlo = ((x @ coef + intercept - y) ** 2).mean() - ((bayes - y) ** 2).mean()
    assert truth.excess_risk(coef, intercept) == pytest.approx(monte_carlo, rel=0.02)
    assert truth.residual_variance == pytest.approx(((bayes - y) ** 2).mean(), rel=0.01)


def test_ols_excess_risk_matches_formula(truth: factor.FactorModel) -> None:
    rng = np.random.default_rng(3)
    n = 60
    risks = [truth.excess_risk(*factor.supervised("ols", *truth.sample(n, rng), np.array([1.0])))
             for _ in range(400)]
    assert np.mean(risks) == pytest.approx(factor.ols_expected_excess(truth.residual_variance, 12, n), rel=0.1)


def test_fa_representation_is_affine_transform_and_spans_ppca_mle(truth: factor.FactorModel) -> None:
    from sklearn.decomposition import FactorAnalysis

    unlabeled, _ = truth.sample(20_000, np.random.default_rng(4))
    mean, weights = factor.linear_representation(unlabeled, 2, seed=0)
    fitted = FactorAnalysis(n_components=2, random_state=0).fit(unlabeled)
    probe = np.random.default_rng(5).normal(size=(7, 12))
    np.testing.assert_allclose((probe - mean) @ weights, fitted.transform(probe), atol=1e-10)
    # PPCA MLE (Tipping & Bishop): loadings span the top-r eigenvectors of the sample covariance
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(unlabeled.T))
    top = eigenvectors[:, -2:]
    noise = eigenvalues[:-2].mean()
    ppca_loadings = top * np.sqrt(eigenvalues[-2:] - noise)
    assert noise == pytest.approx(1.0, abs=0.03)
    assert np.max(subspace_angles(fitted.components_.T, ppca_loadings)) < 0.05
    # informative: the learned map equals the true E[z|x] map up to an invertible r x r transform
    assert np.max(subspace_angles(weights, truth.posterior_mean_map())) < 0.1


def test_pretraining_with_large_m_approaches_oracle(truth: factor.FactorModel) -> None:
    rng = np.random.default_rng(6)
    unlabeled, _ = truth.sample(20_000, rng)
    representation = factor.linear_representation(unlabeled, 2, seed=0)
    x, y = truth.sample(40, rng)
    pretrained = truth.excess_risk(*factor.ols_on_features(x, y, *representation))
    oracle = truth.excess_risk(*factor.ols_on_features(x, y, np.zeros(12), truth.posterior_mean_map()))
    ols = truth.excess_risk(*factor.supervised("ols", x, y, np.array([1.0])))
    assert pretrained == pytest.approx(oracle, rel=0.3, abs=5e-3)
    assert pretrained < ols / 2


@pytest.fixture
def labeled_mixture() -> mixture.LabeledMixture:
    return mixture.random_mixture(4, 5, [2, 3], 0.05, np.random.default_rng(7))


def test_responsibilities_match_scipy(labeled_mixture: mixture.LabeledMixture) -> None:
    x, _ = labeled_mixture.sample(30, np.random.default_rng(8))
    log_densities = np.stack([stats.multivariate_normal(mu, np.eye(5)).logpdf(x) for mu in labeled_mixture.means], 1)
    np.testing.assert_allclose(labeled_mixture.responsibilities(x), softmax(log_densities, axis=1), atol=1e-12)


def test_responsibilities_do_not_depend_on_the_chunk(labeled_mixture: mixture.LabeledMixture) -> None:
    """Row chunks (the paper scale's memory bound) give bit-identical responsibilities."""
    x, _ = labeled_mixture.sample(50, np.random.default_rng(10))
    whole = labeled_mixture.responsibilities(x, chunk=len(x))
    np.testing.assert_array_equal(labeled_mixture.responsibilities(x, chunk=7), whole)


def test_exact_errors_match_sampled_labels(labeled_mixture: mixture.LabeledMixture) -> None:
    x, y = labeled_mixture.sample(200_000, np.random.default_rng(9))
    bayes_predictions = (labeled_mixture.eta(x) > 0.5).astype(int)
    assert labeled_mixture.bayes_error(x) == pytest.approx((bayes_predictions != y).mean(), abs=0.004)
    assert labeled_mixture.error(bayes_predictions, x) == pytest.approx(labeled_mixture.bayes_error(x), abs=1e-12)
    other = (x[:, 0] > 0).astype(int)
    assert labeled_mixture.error(other, x) == pytest.approx((other != y).mean(), abs=0.004)
    assert labeled_mixture.error(other, x) > labeled_mixture.bayes_error(x)


def test_one_class_sample_predicts_that_class() -> None:
    predictions = mixture.logistic_predictions(np.ones((3, 2)), np.array([1, 1, 1]), np.zeros((4, 2)))
    np.testing.assert_array_equal(predictions, [1, 1, 1, 1])


def test_units_of_a_replicate_share_their_data(tmp_path) -> None:
    """Every method of a replicate is scored on the same models and samples: the ridge-CV risk a pretrain unit
    carries as a ratio equals the ridge_cv unit's own, OLS's likewise; another replicate draws other data."""
    import logging

    import pandas as pd

    from repro.core.context import RunContext
    from repro.core.units import expand
    from repro.papers.unsup_pretrain import task
    from tests.helpers import compose_config

    cfg = compose_config(["paper=unsup_pretrain", "scale=smoke", "paper.factor.ms=[200,300]", "paper.factor.d=8",
                          "paper.factor.ns=[8,16,32]", "paper.factor.gap_n=32"])
    grid = {u.name: u for u in expand(task.units(cfg.paper), 2) if u.experiment == "factor"}

    def rows(name: str) -> pd.DataFrame:
        ctx = RunContext(cfg, tmp_path, "cpu", grid[name], logging.getLogger("test"))
        return pd.DataFrame(task.run_unit(cfg.paper, ctx, grid[name])).set_index("n_labeled")

    pretrain = rows("factor/pretrain/m_unlabeled=300/r0")
    ridge, ols = rows("factor/ridge_cv/m_unlabeled=0/r0"), rows("factor/ols/m_unlabeled=0/r0")
    np.testing.assert_allclose(pretrain["ridge_over_pretrain"] * pretrain["excess_risk"], ridge["excess_risk"],
                               rtol=1e-12)
    assert list(ols.index) == [16, 32]                                       # OLS needs n > d + 1
    np.testing.assert_allclose(pretrain["ols_gap_over_d_r"].dropna() * pretrain["excess_risk"][[16, 32]] * 8 / 3,
                               ols["excess_risk"], rtol=1e-12)
    other = rows("factor/ridge_cv/m_unlabeled=0/r1")
    assert not np.allclose(other["excess_risk"], ridge["excess_risk"])


@pytest.fixture
def views() -> factor.FactorModel:
    return contrastive.random_view_model(6, 2, 1.0, 0.5, np.random.default_rng(11))


def test_pair_sampler_law(views: factor.FactorModel) -> None:
    """Half the pairs are positive; positive pairs have cross-covariance B B^T, negative pairs none."""
    first, second, label = contrastive.sample_pairs(views, 200_000, np.random.default_rng(12))
    assert label.mean() == pytest.approx(0.5, abs=0.005)
    loadings = views.loadings
    for value, cross in ((1.0, loadings @ loadings.T), (0.0, np.zeros((6, 6)))):
        chosen = label == value
        np.testing.assert_allclose(first[chosen].T @ second[chosen] / chosen.sum(), cross, atol=0.1)
    np.testing.assert_allclose(np.cov(first.T), views.covariance, atol=0.1)


def test_log_ratio_matches_gaussian_densities(views: factor.FactorModel) -> None:
    """u^T u' - tau (|u|^2 + |u'|^2) + b = log N((x, x'); 0, [[S, BB^T], [BB^T, S]]) - log N(x; 0, S) N(x'; 0, S)."""
    weights, tau, offset = contrastive.true_parameters(views)
    first, second, _ = contrastive.sample_pairs(views, 50, np.random.default_rng(13))
    cross = views.loadings @ views.loadings.T
    joint = np.block([[views.covariance, cross], [cross, views.covariance]])
    expected = (stats.multivariate_normal(np.zeros(12), joint).logpdf(np.hstack([first, second]))
                - stats.multivariate_normal(np.zeros(6), views.covariance).logpdf(first)
                - stats.multivariate_normal(np.zeros(6), views.covariance).logpdf(second))
    np.testing.assert_allclose(contrastive.log_ratio(first, second, weights, tau, offset), expected, rtol=1e-9,
                               atol=1e-9)


def test_pair_label_mle_recovers_the_model(views: factor.FactorModel) -> None:
    """On 40 000 pairs the MLE's likelihood is at least the truth's, (tau, b) are close to the truth, the row space
    of W is that of E[z | x] (small subspace angles), and OLS on its features nearly matches the oracle's risk."""
    first, second, label = contrastive.sample_pairs(views, 40_000, np.random.default_rng(14))
    weights, tau, offset = contrastive.contrastive_representation(first, second, label, 2, 15, 500)
    true_weights, true_tau, true_offset = contrastive.true_parameters(views)
    assert (contrastive.pair_log_likelihood(first, second, label, weights, tau, offset)
            >= contrastive.pair_log_likelihood(first, second, label, true_weights, true_tau, true_offset))
    assert tau == pytest.approx(true_tau, rel=0.05) and offset == pytest.approx(true_offset, rel=0.1)
    assert np.max(subspace_angles(weights.T, views.posterior_mean_map())) < 0.05
    x, y = views.sample(64, np.random.default_rng(16))
    learned = views.excess_risk(*factor.ols_on_features(x, y, np.zeros(6), weights.T))
    oracle = views.excess_risk(*factor.ols_on_features(x, y, np.zeros(6), views.posterior_mean_map()))
    assert learned <= 1.5 * oracle + 1e-3


def test_factor_model_covariance_with_non_unit_noise() -> None:
    """s_x = 0.6: Sigma_x = B B^T + 0.36 I, and the sampled x have that covariance (np.cov)."""
    model = factor.random_factor_model(6, 2, 0.6, 0.5, np.random.default_rng(20))
    expected = model.loadings @ model.loadings.T + 0.36 * np.eye(6)
    np.testing.assert_allclose(model.covariance, expected, atol=1e-12)
    x, _ = model.sample(100_000, np.random.default_rng(21))
    np.testing.assert_allclose(np.cov(x.T), expected, atol=0.03)


def test_random_factor_model_laws() -> None:
    """B_ij ~ N(0, 1/r) and |beta| = 2."""
    model = factor.random_factor_model(4000, 4, 1.0, 0.5, np.random.default_rng(22))
    assert model.loadings.var() == pytest.approx(1 / 4, rel=0.05)
    assert np.linalg.norm(model.beta) == pytest.approx(2.0)


def test_ols_on_features_as_an_affine_map_of_raw_x() -> None:
    """With a non-zero centre, c0 + c^T x reproduces sklearn's OLS on the features (x - mean) W at new points."""
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(23)
    x, y, mean, weights = rng.normal(size=(30, 5)), rng.normal(size=30), rng.normal(size=5), rng.normal(size=(5, 2))
    coef, intercept = factor.ols_on_features(x, y, mean, weights)
    probe = rng.normal(size=(4, 5))
    expected = LinearRegression(fit_intercept=False).fit((x - mean) @ weights, y).predict((probe - mean) @ weights)
    np.testing.assert_allclose(intercept + probe @ coef, expected, atol=1e-10)


def test_ols_formula_against_the_inverse_wishart_mean() -> None:
    """OLS excess risk = sigma^2 tr(Sigma (X^T X)^{-1}); X^T X ~ Wishart(n, Sigma), whose inverse has mean
    Sigma^{-1} / (n - d - 1) (scipy's invwishart), so E = sigma^2 d / (n - d - 1)."""
    sigma = np.array([[2.0, 0.3, 0.0], [0.3, 1.0, 0.2], [0.0, 0.2, 0.5]])
    for n in (6, 9, 40):
        mean_inverse = stats.invwishart(df=n, scale=np.linalg.inv(sigma)).mean()
        assert factor.ols_expected_excess(0.7, 3, n) == pytest.approx(0.7 * np.trace(sigma @ mean_inverse))


def test_mixture_means_have_the_stated_spread() -> None:
    """mu_k ~ N(0, (9/d) I): E |mu_k|^2 = 9."""
    means = mixture.random_mixture(3000, 20, [0], 0.05, np.random.default_rng(24)).means
    assert np.mean(np.sum(means**2, axis=1)) == pytest.approx(9.0, rel=0.03)


def test_view_model_has_equal_strength_orthogonal_loadings() -> None:
    """B = sqrt(d/r) U: B^T B = (d/r) I."""
    views = contrastive.random_view_model(12, 3, 1.0, 0.5, np.random.default_rng(25))
    np.testing.assert_allclose(views.loadings.T @ views.loadings, 4.0 * np.eye(3), atol=1e-12)
    assert np.linalg.norm(views.beta) == pytest.approx(2.0)


def test_excess_risk_of_a_shifted_bayes_predictor(truth: factor.FactorModel) -> None:
    """c = c*, c0 = 0.5: E(c0 + c*^T x - y)^2 - E(c*^T x - y)^2 = c0^2 = 0.25 (Monte Carlo)."""
    x, y = truth.sample(200_000, np.random.default_rng(26))
    bayes = x @ truth.bayes_coefficients
    monte_carlo = ((bayes + 0.5 - y) ** 2).mean() - ((bayes - y) ** 2).mean()
    assert monte_carlo == pytest.approx(0.25, abs=0.01)
    assert truth.excess_risk(truth.bayes_coefficients, 0.5) == pytest.approx(0.25, rel=1e-12)
