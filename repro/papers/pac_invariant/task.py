"""The sweep: N training interventions x dimension d; violation rate of the learned predictor on fresh ones.

Grid: ``violation/<method>/d=<d>`` per replicate. Every method of a replicate sees the same `draws` random
SEMs and the same training and test interventions (``ctx.data_seed``), so methods are compared paired.
Rows per (method, d, N), averaged over the SEMs: violation_rate = fraction of the test interventions with
|g_theta(w)| > eps, violation_rate_2eps (> 2 eps), max_abs_residual, ood_risk_mean and ood_risk_worst (mean /
max of R_theta(w) over the test interventions). Methods: invariant (the eps-approximately invariant learner on
the N training environments), erm (pooled least squares on the same environments) and causal (the SEM's
weights on Pa(Y); no training, N = 0).
"""

import numpy as np
from omegaconf import DictConfig

from repro.core.context import RunContext
from repro.core.units import Unit, grid
from repro.papers.pac_invariant.learn import invariant_learner, pooled_erm, residuals, risks
from repro.papers.pac_invariant.sem import LinearSEM, random_sem

METHODS = ("invariant", "erm", "causal")


def units(cfg: DictConfig) -> list[Unit]:
    return grid("violation", cfg.methods, d=list(cfg.ds))


def causal_predictor(sem: LinearSEM) -> np.ndarray:
    """w with Y's structural weights on its parents and zeros elsewhere (covariate order)."""
    return sem.weights[sem.target, sem.covariates]


def evaluate(w: np.ndarray, test: tuple[np.ndarray, ...], eps: float) -> dict[str, float]:
    g = np.abs(residuals(w, test[0], test[1]))
    risk = risks(w, *test)
    return {"violation_rate": float((g > eps).mean()), "violation_rate_2eps": float((g > 2 * eps).mean()),
            "max_abs_residual": float(g.max()), "ood_risk_mean": float(risk.mean()),
            "ood_risk_worst": float(risk.max())}


def draw_problem(cfg: DictConfig, ctx: RunContext, d: int, draw: int) -> tuple:
    """SEM number `draw` of the replicate at dimension d with its training and test covariances: a function of
    ``ctx.data_seed`` only, so every method sees the same problems. Built one at a time and dropped after use
    (at paper scale one SEM's covariances take 1.1 GB at d = 100; the 20 SEMs of a d would take 22 GB)."""
    rng = np.random.default_rng(ctx.data_seed("sem", d, draw))
    sem = random_sem(d, cfg.max_parents, cfg.sites, rng)
    train = sem.intervention_covariances(max(cfg.ns), rng)
    test = sem.intervention_covariances(cfg.test_interventions, rng)
    return sem, train, test


def solve_draw(cfg: DictConfig, ctx: RunContext, method: str, d: int, draw: int, ns: list[int]) -> dict[int, dict]:
    """One SEM: the method's predictor at every N and its scores on the test interventions (the SEM's covariances
    are freed on return, before the next SEM is built)."""
    sem, train, test = draw_problem(cfg, ctx, d, draw)
    causal = causal_predictor(sem)
    if method == "causal":
        return {0: evaluate(causal, test, cfg.eps)}
    scores = {}
    for n in ns:
        sxx, sxy, syy = (a[:n] for a in train)
        w = pooled_erm(sxx, sxy)
        if method == "invariant":
            w = invariant_learner(sxx, sxy, syy, cfg.eps, [causal, w, (causal + w) / 2])
        scores[n] = evaluate(w, test, cfg.eps)
    return scores


def run_unit(cfg: DictConfig, ctx: RunContext, u: Unit) -> list[dict]:
    d = int(u.settings["d"])
    ns = [0] if u.method == "causal" else list(cfg.ns)
    results: dict[int, list[dict]] = {n: [] for n in ns}
    for draw in range(cfg.draws):
        for n, scores in solve_draw(cfg, ctx, u.method, d, draw, ns).items():
            results[n].append(scores)
    rows = [{"N": n, "sites": cfg.sites, **{k: float(np.mean([r[k] for r in runs])) for k in runs[0]}}
            for n, runs in results.items()]
    ctx.log.info("%s, d = %d: %d SEMs; violation rate by N: %s", u.method, d, cfg.draws,
                 {r["N"]: round(r["violation_rate"], 3) for r in rows})
    return rows
