"""The sweep: unlabeled sample size m and labeled sample size n, pretraining + ERM against supervised learners.

Rows (column `model`):
  factor  per (method, m_unlabeled, n_labeled, seed): excess risk in closed form,
          averaged over `draws` random factor models;
          methods: pretrain (FA-MLE on m unlabeled x, OLS on E_hat[z|x]), oracle (OLS on the true E[z|x]),
          ols and ridge_cv (raw x, labels only; OLS only when n > d + 1), with the OLS formula beside
  gmm     per (method, n_labeled, seed): excess classification error over the Bayes error; methods: pretrain (EM on m
          unlabeled x, logistic regression on responsibilities), oracle (true responsibilities), raw_logistic
"""

import time

import numpy as np
from omegaconf import DictConfig

from repro.core.context import RunContext
from repro.papers.unsup_pretrain import factor, mixture


def run(cfg: DictConfig, ctx: RunContext) -> list[dict]:
    rows = []
    for seed in ctx.replicate_seeds():
        rows += ctx.unit(f"factor-{seed}", lambda s=seed: factor_rows(cfg.factor, ctx, s))
        rows += ctx.unit(f"gmm-{seed}", lambda s=seed: gmm_rows(cfg.mixture, ctx, s))
    return rows


def factor_rows(c: DictConfig, ctx: RunContext, seed: int) -> list[dict]:
    start = time.perf_counter()
    alphas = np.logspace(*c.ridge_log10_alphas)
    risks: dict[tuple[str, int, int], list[float]] = {}
    for draw in range(c.draws):
        rng = np.random.default_rng(ctx.child_seed("factor", seed, draw))
        truth = factor.random_factor_model(c.d, c.r, c.noise_x, c.noise_y, rng)
        unlabeled, _ = truth.sample(max(c.ms), rng)
        representations = {m: factor.linear_representation(unlabeled[:m], c.r, seed) for m in c.ms}
        oracle_map = truth.posterior_mean_map()
        for n in c.ns:
            x, y = truth.sample(n, rng)
            fits = {("oracle", 0): factor.ols_on_features(x, y, np.zeros(c.d), oracle_map),
                    ("ridge_cv", 0): factor.supervised("ridge_cv", x, y, alphas)}
            fits.update({("pretrain", m): factor.ols_on_features(x, y, *representations[m]) for m in c.ms})
            if n > c.d + 1:
                fits["ols", 0] = factor.supervised("ols", x, y, alphas)
            for (method, m), (coef, intercept) in fits.items():
                risks.setdefault((method, m, n), []).append(truth.excess_risk(coef, intercept))
        residual = truth.residual_variance
    mean_risk = {key: float(np.mean(v)) for key, v in risks.items()}
    rows = []
    for (method, m, n), risk in mean_risk.items():
        row = {"model": "factor", "method": method, "m_unlabeled": m, "n_labeled": n, "seed": seed, "excess_risk": risk}
        if method == "pretrain":
            row["ridge_over_pretrain"] = mean_risk["ridge_cv", 0, n] / risk
        if method == "ols":
            row["ols_formula"] = factor.ols_expected_excess(residual, c.d, n)  # last draw's sigma^2_{y|x}
        rows.append(row)
    ctx.log.info("factor model, seed %d: %d draws in %.1f s", seed, c.draws, time.perf_counter() - start)
    return rows


def gmm_rows(c: DictConfig, ctx: RunContext, seed: int) -> list[dict]:
    start = time.perf_counter()
    rng = np.random.default_rng(ctx.child_seed("gmm", seed))
    truth = mixture.random_mixture(c.clusters, c.d, list(c.positive), c.flip, rng)
    unlabeled, _ = truth.sample(c.m, rng)
    test_x, _ = truth.sample(c.test_points, rng)
    fitted = mixture.fit_mixture(unlabeled, c.clusters, c.n_init, seed)
    bayes = truth.bayes_error(test_x)
    representations = {"pretrain": fitted.predict_proba, "raw_logistic": lambda x: x,
                        "oracle": truth.responsibilities}
    rows = []
    for n in c.ns:
        x, y = truth.sample(n, rng)
        for method, features in representations.items():
            error = truth.error(mixture.logistic_predictions(features(x), y, features(test_x)), test_x)
            rows.append({"model": "gmm", "method": method, "n_labeled": n, "seed": seed, "error": error,
                         "bayes_error": bayes, "excess_error": error - bayes})
    ctx.log.info("mixture, seed %d: Bayes error %.3f, EM + %d labeled sizes in %.1f s", seed, bayes, len(c.ns),
                 time.perf_counter() - start)
    return rows

