"""The sweep: N training interventions x dimension d; violation rate of the learned predictor on fresh ones.

Rows per (method, d, N, seed), averaged over `draws` random SEMs: violation_rate = fraction of the test
interventions with |g_theta(w)| > eps, violation_rate_2eps (> 2 eps), max_abs_residual, ood_risk_mean and
ood_risk_worst (mean / max of R_theta(w) over the test interventions). Methods: invariant (the eps-approximately
invariant learner on the N training environments), erm (pooled least squares on the same environments) and
causal (the SEM's weights on Pa(Y); no training, N = 0).
"""

import time

import numpy as np
from omegaconf import DictConfig

from repro.core.context import RunContext
from repro.papers.pac_invariant.learn import invariant_learner, pooled_erm, residuals, risks
from repro.papers.pac_invariant.sem import LinearSEM, random_sem


def run(cfg: DictConfig, ctx: RunContext) -> list[dict]:
    rows = []
    for seed in ctx.replicate_seeds():
        for d in cfg.ds:
            rows += ctx.unit(f"d{d}-{seed}", lambda d=d, s=seed: sweep_rows(cfg, ctx, d, s))
    return rows


def causal_predictor(sem: LinearSEM) -> np.ndarray:
    """w with Y's structural weights on its parents and zeros elsewhere (covariate order)."""
    return sem.weights[sem.target, sem.covariates]


def evaluate(w: np.ndarray, test: tuple[np.ndarray, ...], eps: float) -> dict[str, float]:
    g = np.abs(residuals(w, test[0], test[1]))
    risk = risks(w, *test)
    return {"violation_rate": float((g > eps).mean()), "violation_rate_2eps": float((g > 2 * eps).mean()),
            "max_abs_residual": float(g.max()), "ood_risk_mean": float(risk.mean()),
            "ood_risk_worst": float(risk.max())}


def sweep_rows(cfg: DictConfig, ctx: RunContext, d: int, seed: int) -> list[dict]:
    start = time.perf_counter()
    results: dict[tuple[str, int], list[dict]] = {}
    for draw in range(cfg.draws):
        rng = np.random.default_rng(ctx.child_seed("sem", d, seed, draw))
        sem = random_sem(d, cfg.max_parents, cfg.sites, rng)
        train = sem.covariances(sem.sample_interventions(max(cfg.ns), rng))
        test = sem.covariances(sem.sample_interventions(cfg.test_interventions, rng))
        causal = causal_predictor(sem)
        results.setdefault(("causal", 0), []).append(evaluate(causal, test, cfg.eps))
        for n in cfg.ns:
            sxx, sxy, syy = (a[:n] for a in train)
            erm = pooled_erm(sxx, sxy)
            invariant = invariant_learner(sxx, sxy, syy, cfg.eps, [causal, erm, (causal + erm) / 2])
            results.setdefault(("erm", n), []).append(evaluate(erm, test, cfg.eps))
            results.setdefault(("invariant", n), []).append(evaluate(invariant, test, cfg.eps))
    rows = [{"method": method, "d": d, "N": n, "seed": seed, "sites": cfg.sites,
             **{k: float(np.mean([r[k] for r in runs])) for k in runs[0]}}
            for (method, n), runs in results.items()]
    ctx.log.info("d = %d, seed %d: %d SEMs in %.1f s; invariant violation by N: %s", d, seed, cfg.draws,
                 time.perf_counter() - start,
                 {r["N"]: round(r["violation_rate"], 3) for r in rows if r["method"] == "invariant"})
    return rows
