"""The sweep: dimension d x sample ratio n/d^2; every learner on the same samples of h = g(p).

Rows (column `kind`):
  fit      per (method, d, ratio, seed): n, normalised test MSE E(f - h)^2 / Var h, and for the three-layer net
           the feature quality rho = |corr(z(x), p(x))| on the test points
  n_star   per (d, seed): the n at which rho first reaches rho_target (three-layer net), interpolated linearly in
           log n between the grid points around the crossing; NaN when the grid never reaches it
"""

import time

import numpy as np
from omegaconf import DictConfig
from threadpoolctl import threadpool_limits

from repro.core.context import RunContext
from repro.papers.hier_poly import learners
from repro.papers.hier_poly.target import hermite_features, link, quadratic, random_quadratic


def run(cfg: DictConfig, ctx: RunContext) -> list[dict]:
    rows = []
    # 513 x 513 solves: a second BLAS thread barely helps, and spinning threads cost 10x on a loaded machine
    with threadpool_limits(cfg.blas_threads):
        for seed in ctx.replicate_seeds():
            for d in cfg.ds:
                rows += ctx.unit(f"d{d}-{seed}", lambda d=d, s=seed: dimension_rows(cfg, ctx, d, s))
    return rows


def dimension_rows(cfg: DictConfig, ctx: RunContext, d: int, seed: int) -> list[dict]:
    start = time.perf_counter()
    rng = np.random.default_rng(ctx.child_seed("target", d, seed))
    a = random_quadratic(d, rng)
    x_test = rng.standard_normal((cfg.test_points, d))
    p_test = quadratic(x_test, a)
    h_test = link(p_test)
    phi_test = hermite_features(x_test)

    def nmse(prediction: np.ndarray) -> float:
        return float(np.mean((prediction - h_test) ** 2) / h_test.var())

    rows = []
    for ratio in cfg.ratios:
        n = int(ratio * d**2)
        x = rng.standard_normal((n, d))
        p = quadratic(x, a)
        y = link(p)
        phi = hermite_features(x)
        half = n // 2
        base = {"kind": "fit", "d": d, "ratio": ratio, "n": n, "seed": seed}
        # three-layer, layer-wise: stage 1 on the first half, stage 2 on the second
        direction = learners.stage_one_direction(phi[:half], y[:half])
        net = learners.ScalarFeatureNet(cfg.width, rng).fit(phi[half:] @ direction, y[half:])
        z_test = phi_test @ direction
        rows.append({**base, "method": "three_layer", "nmse": nmse(net.predict(z_test)),
                     "rho": float(abs(np.corrcoef(z_test, p_test)[0, 1]))})
        oracle = learners.ScalarFeatureNet(cfg.width, rng).fit(p[half:], y[half:])
        rows.append({**base, "method": "oracle", "nmse": nmse(oracle.predict(p_test))})
        features = learners.RandomFeatures(phi.shape[1], cfg.width, rng).fit(phi, y)
        rows.append({**base, "method": "random_features", "nmse": nmse(features.predict(phi_test))})
        if n <= cfg.krr_max_n:
            rows.append({**base, "method": "krr", "nmse": nmse(learners.kernel_ridge(x, y, x_test))})
    learned = [r for r in rows if r["method"] == "three_layer"]
    n_star = crossing(np.array([r["n"] for r in learned], float), np.array([r["rho"] for r in learned]),
                      cfg.rho_target)
    rows.append({"kind": "n_star", "d": d, "seed": seed, "n_star": n_star})
    ctx.log.info("d = %d, seed %d: %.1f s; rho by n/d^2 %s", d, seed, time.perf_counter() - start,
                 {r["ratio"]: round(r["rho"], 3) for r in learned})
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
