"""The sweep: dimension d x sample ratio n/d^2; every learner on the same samples of h = g(p).

Grid: ``fit/<method>/d=<d>`` per replicate, each unit running its learner over every ratio n/d^2. The units of
one replicate share the quadratic p, the test set and, at each ratio, the training samples (``ctx.data_seed``),
so learners are compared paired. Rows (column ``kind``):
  fit      per (method, d, ratio): n, normalised test MSE E(f - h)^2 / Var h, and for the three-layer net the
           feature quality rho = |corr(z(x), p(x))| on the test points
  n_star   per d (three-layer unit): the n at which rho first reaches rho_target, interpolated linearly in
           log n between the grid points around the crossing; NaN when the grid never reaches it
"""

import numpy as np
from omegaconf import DictConfig

from repro.core.context import RunContext
from repro.core.units import Unit, grid
from repro.papers.hier_poly import learners
from repro.papers.hier_poly.target import hermite_features, link, quadratic, random_quadratic

METHODS = ("three_layer", "oracle", "random_features", "krr")


def units(cfg: DictConfig) -> list[Unit]:
    """Every method at every d, except kernel ridge where no ratio fits its budget (n <= krr_max_n)."""
    return [u for d in cfg.ds for u in grid("fit", cfg.methods, d=[d])
            if u.method != "krr" or min(cfg.ratios) * d**2 <= cfg.krr_max_n]


def problem(cfg: DictConfig, ctx: RunContext, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The replicate's quadratic A at dimension d, its test inputs and test values p(x_test)."""
    rng = np.random.default_rng(ctx.data_seed("target", d))
    a = random_quadratic(d, rng)
    x_test = rng.standard_normal((cfg.test_points, d))
    return a, x_test, quadratic(x_test, a)


def run_unit(cfg: DictConfig, ctx: RunContext, u: Unit) -> list[dict]:
    d, method = int(u.settings["d"]), u.method
    a, x_test, p_test = ctx.shared(f"problem-d{d}", lambda: problem(cfg, ctx, d))
    h_test = link(p_test)
    phi_test = hermite_features(x_test) if method in ("three_layer", "random_features") else None

    def nmse(prediction: np.ndarray) -> float:
        return float(np.mean((prediction - h_test) ** 2) / h_test.var())

    rows = []
    for ratio in cfg.ratios:
        n = int(ratio * d**2)
        if method == "krr" and n > cfg.krr_max_n:
            continue
        x = np.random.default_rng(ctx.data_seed("samples", d, ratio)).standard_normal((n, d))
        p = quadratic(x, a)
        y = link(p)
        init = np.random.default_rng(ctx.child_seed("init", ratio))
        half = n // 2
        row = {"kind": "fit", "ratio": ratio, "n": n}
        if method == "three_layer":   # layer-wise: stage 1 on the first half, stage 2 on the second
            phi = hermite_features(x)
            direction = learners.stage_one_direction(phi[:half], y[:half])
            net = learners.ScalarFeatureNet(cfg.width, init).fit(phi[half:] @ direction, y[half:])
            z_test = phi_test @ direction
            row.update(nmse=nmse(net.predict(z_test)), rho=float(abs(np.corrcoef(z_test, p_test)[0, 1])))
        elif method == "oracle":
            row["nmse"] = nmse(learners.ScalarFeatureNet(cfg.width, init).fit(p[half:], y[half:]).predict(p_test))
        elif method == "random_features":
            phi = hermite_features(x)
            features = learners.RandomFeatures(phi.shape[1], cfg.width, init).fit(phi, y)
            row["nmse"] = nmse(features.predict(phi_test))
        else:
            row["nmse"] = nmse(learners.kernel_ridge(x, y, x_test))
        rows.append(row)
    if method == "three_layer":
        n_star = crossing(np.array([r["n"] for r in rows], float), np.array([r["rho"] for r in rows]),
                          cfg.rho_target)
        rows.append({"kind": "n_star", "n_star": n_star})
        ctx.log.info("d = %d: rho by n/d^2 %s; n* = %.0f", d, {r["ratio"]: round(r["rho"], 3) for r in rows[:-1]},
                     n_star)
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
