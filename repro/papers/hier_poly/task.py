"""The sweep: degree k x dimension d x sample ratio n/d^k; every learner on the same samples of h = g(p).

Grid: ``fit/<method>/k=<k>/d=<d>`` per replicate, each unit running its learner over every ratio n/d^k of that
degree (ratios with n above the degree's max_n are skipped; kernel ridge runs only in its own window of n).
The units of a replicate share p, the bottom layer V, the test set and, at each ratio, the training samples
(``ctx.data_seed``), so learners are compared paired. Rows (column ``kind``):
  fit      per (method, k, d, ratio): n, normalised test MSE E(f - h)^2 / Var h, and for the three-layer net the
           feature quality rho = |corr(z(x), p(x))| on the test points
  n_star   per (k, d) (three-layer unit): the n at which rho first reaches rho_target, interpolated linearly in
           log n between the grid points around the crossing; NaN when the grid never reaches it
"""

from math import ceil, comb

import numpy as np
from omegaconf import DictConfig

from repro.core.context import RunContext
from repro.core.units import Unit, grid
from repro.papers.hier_poly import learners
from repro.papers.hier_poly.target import Feature, link

METHODS = ("three_layer", "oracle", "random_features", "krr")


def sizes(cfg: DictConfig, problem: DictConfig, d: int, method: str) -> list[tuple[float, int]]:
    """(ratio, n = ratio d^k) of one (k, d) with n <= the problem's max_n; kernel ridge (cubic in n) only at the
    problem's krr_ds and krr_min_n <= n <= krr_max_n."""
    low, high = (cfg.krr_min_n, cfg.krr_max_n) if method == "krr" else (0, problem.max_n)
    if method == "krr" and d not in problem.krr_ds:
        return []
    return [(ratio, int(ratio * d**problem.k)) for ratio in problem.ratios
            if low <= ratio * d**problem.k <= min(high, problem.max_n)]


def units(cfg: DictConfig) -> list[Unit]:
    """Every method at every (k, d) where at least one sample size fits its cap."""
    return [u for problem in cfg.problems for d in problem.ds
            for u in grid("fit", cfg.methods, k=[problem.k], d=[d]) if sizes(cfg, problem, d, u.method)]


def setup(cfg: DictConfig, ctx: RunContext, k: int, d: int) -> tuple[Feature, learners.BottomLayer, np.ndarray]:
    """The replicate's feature p, bottom layer V (m2 = ceil(bottom_factor C(d+k-1, k)) rows) and test inputs."""
    rng = np.random.default_rng(ctx.data_seed("problem", k, d))
    feature = Feature.random(k, d, rng)
    bottom = learners.BottomLayer(k, d, ceil(cfg.bottom_factor * comb(d + k - 1, k)), rng)
    return feature, bottom, rng.standard_normal((cfg.test_points, d))


def run_unit(cfg: DictConfig, ctx: RunContext, u: Unit) -> list[dict]:
    k, d, method = int(u.settings["k"]), int(u.settings["d"]), u.method
    problem = next(p for p in cfg.problems if p.k == k)
    feature, bottom, x_test = ctx.shared(f"problem-k{k}-d{d}", lambda: setup(cfg, ctx, k, d))
    p_test = feature(x_test)
    h_test = link(p_test)
    steps1, steps2, decays, holdout = cfg.stage1_steps, cfg.stage2_steps, cfg.weight_decays, cfg.holdout

    def nmse(prediction: np.ndarray) -> float:
        return float(np.mean((prediction - h_test) ** 2) / h_test.var())

    rows = []
    for ratio, n in sizes(cfg, problem, d, method):
        x = np.random.default_rng(ctx.data_seed("samples", k, d, ratio)).standard_normal((n, d))
        p = feature(x)
        y = link(p)
        init = np.random.default_rng(ctx.child_seed("init", ratio))
        half = n // 2
        row = {"kind": "fit", "ratio": ratio, "n": n}
        if method == "three_layer":   # layer-wise: u on the first half, c on the second
            bottleneck = learners.Bottleneck(bottom)
            ctx.record_convergence(bottleneck.fit(x[:half], y[:half], cfg.stage1_weight_decay, steps1, holdout))
            head = learners.ScalarHead(cfg.width, init)
            ctx.record_convergence(head.fit(bottleneck(x[half:]), y[half:], decays, steps2, holdout))
            z_test = bottleneck(x_test)
            row.update(nmse=nmse(head.predict(z_test)), rho=float(abs(np.corrcoef(z_test, p_test)[0, 1])))
        elif method == "oracle":
            head = learners.ScalarHead(cfg.width, init)
            ctx.record_convergence(head.fit(p[half:], y[half:], decays, steps2, holdout))
            row["nmse"] = nmse(head.predict(p_test))
        elif method == "random_features":
            model = learners.RandomFeatures(bottom, cfg.width, init)
            ctx.record_convergence(model.fit(x, y, decays, steps2, holdout))
            row["nmse"] = nmse(model.predict(x_test))
        else:
            row["nmse"] = nmse(learners.kernel_ridge(x, y, x_test, cfg.krr_bandwidths, cfg.krr_regularisers,
                                                     cfg.krr_holdout))
        rows.append(row)
    if method == "three_layer":
        n_star = crossing(np.array([r["n"] for r in rows], float), np.array([r["rho"] for r in rows]),
                          cfg.rho_target)
        rows.append({"kind": "n_star", "n_star": n_star})
        ctx.log.info("k = %d, d = %d: rho by n/d^k %s; n* = %.0f", k, d,
                     {r["ratio"]: round(r["rho"], 3) for r in rows[:-1]}, n_star)
    return rows


def crossing(n: np.ndarray, rho: np.ndarray, target: float) -> float:
    """The n where rho(n) first reaches target, interpolating rho linearly in log n; NaN when it never does."""
    above = np.flatnonzero(rho >= target)
    if not len(above):
        return float("nan")
    i = above[0]
    if i == 0:
        return float(n[0])
    fraction = (target - rho[i - 1]) / (rho[i] - rho[i - 1])
    return float(np.exp(np.log(n[i - 1]) + fraction * (np.log(n[i]) - np.log(n[i - 1]))))
