"""The grid: unlabeled sample size m and labeled sample size n, pretraining + ERM against supervised learners.

Units (experiment / method / setting):
  factor/pretrain/m_unlabeled=<m>   FA-MLE on m unlabeled x, then OLS on E_hat[z | x]
  factor/oracle/m_unlabeled=0       OLS on the true E[z | x]
  factor/ridge_cv/m_unlabeled=0     ridge with leave-one-out CV on raw x (labels only)
  factor/ols/m_unlabeled=0          OLS on raw x (only where n > d + 1), with the closed-form OLS risk beside
  contrastive/<method>/m_unlabeled  the same four methods on the contrastive instance: pretrain = MLE of the pair
                                    label's conditional model on m unlabeled pairs (contrastive.py), then OLS on W x
  gmm/pretrain, gmm/oracle, gmm/raw_logistic
                                    logistic regression on EM responsibilities (m unlabeled x), on the true
                                    responsibilities, on raw x; excess test error over the Bayes error
Each factor (and contrastive) unit writes one row per labeled size n: the closed-form excess risk averaged over
``draws`` random models of its replicate. Every unit of a replicate sees the same models, unlabeled pool and labeled
samples (``ctx.data_seed``), so methods and sizes are compared on the same data. The pretrain rows also carry
ridge-CV's and OLS's risk on those same samples as ratios (the baselines are deterministic given the data).
"""

import numpy as np
from omegaconf import DictConfig

from repro.core.context import RunContext
from repro.core.units import Unit, grid
from repro.papers.unsup_pretrain import contrastive, factor, mixture

FACTOR_METHODS = ("pretrain", "oracle", "ridge_cv", "ols")
GMM_METHODS = ("pretrain", "oracle", "raw_logistic")
METHODS = tuple(dict.fromkeys(FACTOR_METHODS + GMM_METHODS))
INSTANCES = ("factor", "contrastive")   # linear-Gaussian instances: closed-form excess risk of a linear predictor


def units(cfg: DictConfig) -> list[Unit]:
    linear = []
    for instance in INSTANCES:
        linear += grid(instance, ["pretrain"], m_unlabeled=list(cfg[instance].ms))
        linear += grid(instance, ["oracle", "ridge_cv", "ols"], m_unlabeled=[0])
    return [*linear, *grid("gmm", GMM_METHODS)]


def run_unit(cfg: DictConfig, ctx: RunContext, u: Unit) -> list[dict]:
    if u.experiment in INSTANCES:
        return factor_rows(cfg[u.experiment], ctx, u.method, int(u.settings["m_unlabeled"]), u.experiment)
    return gmm_rows(cfg.mixture, ctx, u.method)


def factor_draw(c: DictConfig, ctx: RunContext, draw: int, instance: str = "factor") -> tuple[factor.FactorModel, dict]:
    """One random model of this replicate and its labeled sample per n (the same in every unit of the instance):
    the factor model (B_ij ~ N(0, 1/r)) or the contrastive instance's view model (B = sqrt(d/r) U)."""
    build = factor.random_factor_model if instance == "factor" else contrastive.random_view_model
    truth = build(c.d, c.r, c.noise_x, c.noise_y, np.random.default_rng(ctx.data_seed(instance, draw, "model")))
    labeled = {n: truth.sample(n, np.random.default_rng(ctx.data_seed(instance, draw, "labeled", n))) for n in c.ns}
    return truth, labeled


def unlabeled_pool(c: DictConfig, ctx: RunContext, truth: factor.FactorModel, draw: int) -> np.ndarray:
    """The draw's pool of max(ms) unlabeled points; a pretrain unit with m reads its first m (nested pools).
    Regenerated per unit rather than shared: at paper scale one pool is 2 x 10^5 x 1 000 floats."""
    pool, _ = truth.sample(max(c.ms), np.random.default_rng(ctx.data_seed("factor", draw, "unlabeled")))
    return pool


def pretrained_representation(c: DictConfig, ctx: RunContext, instance: str, truth: factor.FactorModel, draw: int,
                               m: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean, W (d, r)) of the learned representation (x - mean) @ W from the first m unlabeled points (factor: FA
    MLE) or the first m unlabeled pairs (contrastive: MLE of the pair label's model; the views have mean zero)."""
    if instance == "factor":
        pool = unlabeled_pool(c, ctx, truth, draw)[:m]
        return factor.linear_representation(pool, c.r, ctx.child_seed("fa", draw))
    first, second, label = contrastive.sample_pairs(
        truth, max(c.ms), np.random.default_rng(ctx.data_seed(instance, draw, "pairs")))
    weights, _, _ = contrastive.contrastive_representation(first[:m], second[:m], label[:m], c.r,
                                                           ctx.child_seed("contrastive", draw), c.max_iterations)
    return np.zeros(c.d), weights.T


def factor_rows(c: DictConfig, ctx: RunContext, method: str, m: int, instance: str = "factor") -> list[dict]:
    alphas = np.logspace(*c.ridge_log10_alphas)
    risks: dict[int, list[float]] = {}
    ridge: dict[int, list[float]] = {}
    ols: dict[int, list[float]] = {}
    formula: dict[int, list[float]] = {}
    for draw in range(c.draws):
        truth, labeled = factor_draw(c, ctx, draw, instance)
        if method == "pretrain":
            representation = pretrained_representation(c, ctx, instance, truth, draw, m)
        for n, (x, y) in labeled.items():
            if method == "pretrain":
                fit = factor.ols_on_features(x, y, *representation)
                ridge.setdefault(n, []).append(truth.excess_risk(*factor.supervised("ridge_cv", x, y, alphas)))
                if n > c.d + 1:
                    ols.setdefault(n, []).append(truth.excess_risk(*factor.supervised("ols", x, y, alphas)))
            elif method == "oracle":
                fit = factor.ols_on_features(x, y, np.zeros(c.d), truth.posterior_mean_map())
            elif method == "ols":
                if n <= c.d + 1:   # OLS is not defined below d + 2 labels
                    continue
                fit = factor.supervised("ols", x, y, alphas)
                formula.setdefault(n, []).append(factor.ols_expected_excess(truth.residual_variance, c.d, n))
            else:
                fit = factor.supervised(method, x, y, alphas)
            risks.setdefault(n, []).append(truth.excess_risk(*fit))
    rows = []
    for n, values in risks.items():
        row = {"n_labeled": n, "excess_risk": float(np.mean(values))}
        if method == "pretrain":
            row["ridge_over_pretrain"] = float(np.mean(ridge[n])) / row["excess_risk"]
            if n in ols:
                # OLS's excess risk over pretraining's, in units of the complexity ratio d / r
                row["ols_gap_over_d_r"] = float(np.mean(ols[n])) / row["excess_risk"] / (c.d / c.r)
        if method == "ols":
            row["ols_formula"] = float(np.mean(formula[n]))
        rows.append(row)
    ctx.log.info("%s, %s, m = %d: %d draws, %d labeled sizes", instance, method, m, c.draws, len(rows))
    return rows


def gmm_data(c: DictConfig, ctx: RunContext) -> dict:
    """This replicate's mixture, its test points and one labeled sample per n (shared by every method)."""
    truth = mixture.random_mixture(c.clusters, c.d, list(c.positive), c.flip,
                                   np.random.default_rng(ctx.data_seed("gmm", "model")))
    test_x, _ = truth.sample(c.test_points, np.random.default_rng(ctx.data_seed("gmm", "test")))
    labeled = {n: truth.sample(n, np.random.default_rng(ctx.data_seed("gmm", "labeled", n))) for n in c.ns}
    return {"truth": truth, "test_x": test_x, "labeled": labeled, "bayes": truth.bayes_error(test_x)}


def gmm_rows(c: DictConfig, ctx: RunContext, method: str) -> list[dict]:
    data = ctx.shared("gmm", lambda: gmm_data(c, ctx))
    truth, test_x, bayes = data["truth"], data["test_x"], data["bayes"]
    if method == "pretrain":
        unlabeled, _ = truth.sample(c.m, np.random.default_rng(ctx.data_seed("gmm", "unlabeled")))
        features = mixture.fit_mixture(unlabeled, c.clusters, c.n_init, ctx.child_seed("em")).predict_proba
    elif method == "oracle":
        features = truth.responsibilities
    else:
        def features(x: np.ndarray) -> np.ndarray:
            return x
    rows = []
    for n, (x, y) in data["labeled"].items():
        error = truth.error(mixture.logistic_predictions(features(x), y, features(test_x)), test_x)
        rows.append({"n_labeled": n, "error": error, "bayes_error": bayes,
                     "excess_error": error - bayes})
    ctx.log.info("mixture, %s: Bayes error %.3f, %d labeled sizes", method, bayes, len(rows))
    return rows
