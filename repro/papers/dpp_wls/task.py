"""WLS from i.i.d. optimal-density, repeated projection-DPP and volume-rescaled samples on a pool.

Grid: ``cell/<strategy>/d=,degree=`` (every n/m of one strategy in one space), ``threshold/<strategy>/d=,degree=``
(its stability threshold), ``growth/<strategy>`` (threshold growth from the smallest to the largest m, d = 1) and
``theorem/<strategy>/d=,degree=`` (the paper's n = O(m log m) regime), each per replicate. Per space (d, total degree
-> m) and replicate: a pool of N_c uniform points on [-1, 1]^d (shared by every strategy of the replicate), Q =
orthonormal Legendre basis on it, targets f1(x) = 1 / (1 + 25 |x|^2 / d) (Runge) and f3(x) = |x_1| (not smooth),
fitted from the same samples. For each strategy and sample size, `draws` samples:
- iid:     n i.i.d. points from rho_m;
- dpp_rep: union of l = n/m independent m-point projection DPPs (integer n/m <= max_repeats only);
- volume:  one m-point projection DPP united with n - m i.i.d. points from rho_m (volume-rescaled sampling).
Each strategy conditioned on stability (strategy (v): resample until ||G - I||_2 <= delta) is the same draws
restricted to the stable ones, which is exactly rejection sampling's law; volume conditioned on stability is the
volume-rescaled density restricted to the stability event (the paper's generalised volume sampling, as we read it).
Metrics: P(||G - I||_2 <= delta), error ratio ||f - f_hat||^2 / ||f - P_m f||^2 (mean, median, 90th percentile;
unconditioned and conditioned on stability), bias_ratio = |mean(c_hat) - c*|^2 / (trace Cov(c_hat) / draws) (about 1
when unbiased, >> 1 when biased), and the almost-sure bound on stable draws: ||f - f_hat|| over the best weighted
sup-norm error min_v sup_x sqrt(w(x)) |f(x) - v(x)| against 1 + (1 - delta)^(-1/2).
The theorem rows use n = m ceil(s ln(2m / eta) / c_delta) for each fraction s of the matrix-Chernoff sample size
(c_delta = delta + (1 - delta) ln(1 - delta), eta = 1 - stable_probability): n = O(m log m).
DPP samples come from one bank of independent samples per (space, replicate); no DPP sample is used twice in a cell.
Threshold rows: the smallest n/m with P(stable) >= level per strategy (NaN and censored = 1 when the grid never
reaches it); growth rows: threshold at the largest m over threshold at the smallest m of the d = 1 spaces.
"""

import math

import numpy as np
from omegaconf import DictConfig
from scipy.optimize import linprog

from repro.core.context import RunContext
from repro.core.errors import ConfigError
from repro.core.units import Unit, unit
from repro.papers.dpp_wls.sampling import (
    STRATEGIES,
    orthonormal_basis,
    sample_iid,
    sample_projection_dpp,
    total_degree_indices,
    weighted_least_squares,
)


def runge(x: np.ndarray) -> np.ndarray:
    """f1(x) = 1 / (1 + 25 |x|^2 / d) for points x of shape (N,) (d = 1) or (N, d)."""
    squared = x**2 if x.ndim == 1 else np.mean(x**2, axis=1)
    return 1 / (1 + 25 * squared)


def abs_first_coordinate(x: np.ndarray) -> np.ndarray:
    """f3(x) = |x_1| (a kink: slow polynomial approximation)."""
    return np.abs(x if x.ndim == 1 else x[:, 0])


TARGETS = {"runge": runge, "abs_x1": abs_first_coordinate}
METHODS = STRATEGIES  # the framework checks paper.strategies (the grid's methods) against these


def units(cfg: DictConfig) -> list[Unit]:
    unknown = sorted(set(cfg.strategies) - set(STRATEGIES))
    if unknown:
        raise ConfigError(f"paper.strategies has unknown {unknown}; choose from {list(STRATEGIES)}")
    unknown = sorted(set(cfg.targets) - set(TARGETS))
    if unknown:
        raise ConfigError(f"paper.targets has unknown {unknown}; choose from {list(TARGETS)}")
    for space in cfg.spaces:
        if int(space.d) not in (1, 2):
            raise ConfigError(f"paper.spaces: d = {space.d} is not supported; use d = 1 or d = 2")
    spaces = [(int(space.d), int(space.degree)) for space in cfg.spaces]
    strategies = list(cfg.strategies)
    grid_units = [unit(experiment, strategy, d=d, degree=degree)
                  for experiment in ("cell", "threshold", "theorem") for d, degree in spaces
                  for strategy in strategies]
    if len(_growth_spaces(cfg)) == 2:
        grid_units += [unit("growth", strategy) for strategy in strategies]
    return grid_units


def run_unit(cfg: DictConfig, ctx: RunContext, u: Unit) -> list[dict]:
    if u.experiment == "cell":
        return cells(cfg, ctx, u.method, int(u.settings["d"]), int(u.settings["degree"]))
    if u.experiment == "theorem":
        return theorem_cells(cfg, ctx, u.method, int(u.settings["d"]), int(u.settings["degree"]))
    if u.experiment == "threshold":
        return thresholds(cfg, ctx, u.method, int(u.settings["d"]), int(u.settings["degree"]))
    if u.experiment == "growth":
        (d, small), (_, large) = _growth_spaces(cfg)
        rows = [{**row, "strategy": u.method} for degree in (small, large)
                for row in thresholds(cfg, ctx, u.method, d, degree)]
        return [{k: v for k, v in row.items() if k != "strategy"} for row in growth_rows(rows)]
    raise ValueError(f"unknown experiment {u.experiment!r}")


def _growth_spaces(cfg: DictConfig) -> list[tuple[int, int]]:
    """The d = 1 spaces of smallest and largest degree (growth of the stability threshold with m)."""
    degrees = sorted(int(space.degree) for space in cfg.spaces if int(space.d) == 1)
    return [(1, degrees[0]), (1, degrees[-1])] if len(set(degrees)) >= 2 else []


def space_data(cfg: DictConfig, ctx: RunContext, d: int, degree: int) -> dict:
    """The pool, its orthonormal basis, the targets and the bank of projection-DPP samples of one space: the same for
    every strategy of a replicate (seeded by ctx.data_seed)."""
    def build() -> dict:
        rng = np.random.default_rng(ctx.data_seed("pool", d, degree))
        pool = rng.uniform(-1, 1, size=int(cfg.pool_size) if d == 1 else (int(cfg.pool_size), d))
        q = orthonormal_basis(pool, degree)
        m = q.shape[1]
        assert m == len(total_degree_indices(d, degree))
        values = np.stack([TARGETS[name](pool) for name in cfg.targets], axis=1)   # (N_c, T)
        best = q.T @ values                                 # P_m f = Q Q^T f; in phi = sqrt(N_c) Q coordinates
        repeats = [int(r) for r in cfg.n_over_m if float(r) == int(r) and int(r) <= int(cfg.max_repeats)]
        bank = sample_projection_dpp(q, np.random.default_rng(ctx.data_seed("dpp_bank", d, degree)),
                                     max(int(cfg.draws_n_equals_m), int(cfg.draws) * max(repeats)),
                                     chunk_mb=float(cfg.dpp_chunk_mb))
        ctx.log.info("d = %d, m = %d: %d projection-DPP samples", d, m, len(bank))
        return {"q": q, "m": m, "values": values, "best_error": np.mean((values - q @ best) ** 2, axis=0),
                "c_star": best / math.sqrt(len(pool)), "repeats": repeats, "bank": bank,
                "best_weighted_sup": np.array([best_weighted_sup_error(q, values[:, t])
                                               for t in range(values.shape[1])])}

    return ctx.shared(f"space-d{d}-p{degree}", build)


def cells(cfg: DictConfig, ctx: RunContext, strategy: str, d: int, degree: int) -> list[dict]:
    """Every n/m cell of one strategy in one space (built once per process and replicate: the threshold and growth
    units read the same cells). Draws of i.i.d. points are seeded by ctx.data_seed too, so that any unit that needs
    these cells computes the same ones."""
    rows = ctx.shared(f"cells-{strategy}-d{d}-p{degree}", lambda: _cells(cfg, ctx, strategy, d, degree))
    return [dict(r) for r in rows]


def _cells(cfg: DictConfig, ctx: RunContext, strategy: str, d: int, degree: int) -> list[dict]:
    space = space_data(cfg, ctx, d, degree)
    m = space["m"]
    rng = np.random.default_rng(ctx.data_seed("draws", strategy, d, degree))
    rows = []
    for ratio in (float(r) for r in cfg.n_over_m):
        if strategy == "dpp_rep" and ratio not in space["repeats"]:
            continue
        n = math.ceil(ratio * m)
        count = int(cfg.draws_n_equals_m) if (strategy != "iid" and n == m) else int(cfg.draws)
        rows += [row | {"n_over_m": ratio} for row in fit_cell(cfg, space, strategy, n, count, rng)]
    return rows


def theorem_cells(cfg: DictConfig, ctx: RunContext, strategy: str, d: int, degree: int) -> list[dict]:
    """Cells at n = m ceil(s ln(2m / eta) / c_delta) for each fraction s in theorem_fractions: the matrix-Chernoff
    sample size at which i.i.d. rho_m sampling is stable with probability >= 1 - eta (n = O(m log m), the regime of
    the paper's quasi-optimality theorem), and fractions of it. dpp_rep only where n / m <= max_repeats."""
    space = space_data(cfg, ctx, d, degree)
    m = space["m"]
    rng = np.random.default_rng(ctx.data_seed("theorem_draws", strategy, d, degree))
    rows = []
    for fraction in (float(s) for s in cfg.theorem_fractions):
        repeats = chernoff_repeats(m, float(cfg.delta), 1 - float(cfg.stable_probability), fraction)
        if strategy == "dpp_rep" and repeats > int(cfg.max_repeats):
            continue
        rows += [row | {"fraction": fraction, "n_over_m": float(repeats)}
                 for row in fit_cell(cfg, space, strategy, repeats * m, int(cfg.draws), rng)]
    return rows


def chernoff_repeats(m: int, delta: float, eta: float, fraction: float = 1.0) -> int:
    """ceil(fraction * ln(2m / eta) / c_delta), c_delta = delta + (1 - delta) ln(1 - delta): n = m times this makes
    P(||G - I||_2 > delta) <= eta for i.i.d. rho_m sampling by the matrix Chernoff bound (fraction = 1)."""
    c_delta = delta + (1 - delta) * math.log(1 - delta)
    return math.ceil(fraction * math.log(2 * m / eta) / c_delta)


def fit_cell(cfg: DictConfig, space: dict, strategy: str, n: int, count: int, rng: np.random.Generator) -> list[dict]:
    """`count` draws of n points of one strategy, every target fitted from the same draws; one row per target."""
    q, m, bank = space["q"], space["m"], space["bank"]
    fits = [weighted_least_squares(q, space["values"], draw_sample(strategy, q, n, m, draw, bank, rng))
            for draw in range(count)]
    coefficients = np.array([c for c, _ in fits])                      # (count, m, T)
    stable = np.array([dev for _, dev in fits]) <= float(cfg.delta)
    rows = [error_statistics(coefficients[:, :, t], space["c_star"][:, t], float(space["best_error"][t]), stable,
                             float(space["best_weighted_sup"][t]), float(cfg.delta))
            | {"target": target, "m": m, "n": n, "draws": count}
            for t, target in enumerate(cfg.targets)]
    return [row | {"qo_bound": quasi_optimality_bound(m, n, float(cfg.delta), row["stable_prob"])} for row in rows]


def quasi_optimality_bound(m: int, n: int, delta: float, stable_probability: float) -> float:
    """E[ratio | stable] <= 1 + m / ((1 - delta)^2 n P(stable)) for the three strategies: on the stability event
    G >= (1 - delta) I, so |c_hat - c*| <= |b| / (1 - delta) with b = (1/n) sum_i w(x_i) phi(x_i) g(x_i),
    g = f - P_m f; E b = 0 and E|b|^2 <= m ||g||^2 / n (i.i.d. rho_m: equality; a projection DPP's pair term is <= 0,
    so l repetitions and DPP + i.i.d. union give at most the same). NaN when no draw is stable."""
    if stable_probability == 0:
        return math.nan
    return 1 + m / ((1 - delta) ** 2 * n * stable_probability)


def best_weighted_sup_error(q: np.ndarray, f: np.ndarray) -> float:
    """min over v in V_m of ||f - v||_H, ||g||_H = max_i sqrt(w(x_i)) |g(x_i)| with w = m / K_m: the linear program
    min t s.t. |sqrt(w_i) (f_i - (Q a)_i)| <= t, solved by constraint generation: an LP on a spread of pool points
    (every k-th of the i.i.d. pool, and the largest residuals of the L2 projection), then the most violated points
    are added until none is violated beyond the solver's tolerance. Returned: ||f - Q a||_H over the whole pool for
    the final a (an element of V_m, so never below the optimum). For every sample, (1/n) sum_i w(x_i) g(x_i)^2 <=
    ||g||_H^2, and ||g||_L2 <= ||g||_H because the mean of 1 / w = K_m / m over mu is 1."""
    size, m = q.shape
    root = np.sqrt(m / (size * np.sum(q**2, axis=1)))
    scaled, target = root[:, None] * q, root * f
    cost = np.zeros(m + 1)
    cost[-1] = 1.0
    residual = np.abs(target - scaled @ (q.T @ f))
    active = np.union1d(np.arange(0, size, max(1, size // (20 * (m + 1)))), np.argsort(-residual)[: m + 1])
    while True:
        column = -np.ones((len(active), 1))
        result = linprog(cost, A_ub=np.vstack([np.hstack([scaled[active], column]),
                                               np.hstack([-scaled[active], column])]),
                         b_ub=np.concatenate([target[active], -target[active]]),
                         bounds=[(None, None)] * m + [(0, None)], method="highs")
        if not result.success:
            raise RuntimeError(f"weighted sup-norm best approximation: {result.message}")
        error = np.abs(target - scaled @ result.x[:m])
        outside = error.copy()
        outside[active] = 0.0                     # active points hold up to the solver's tolerance
        worst = np.argsort(-outside)[: 10 * (m + 1)]
        worst = worst[outside[worst] > result.x[-1] * (1 + 1e-7)]
        if worst.size == 0:
            return float(error.max())
        active = np.union1d(active, worst)


def thresholds(cfg: DictConfig, ctx: RunContext, strategy: str, d: int, degree: int) -> list[dict]:
    """The strategy's stability threshold in one space, per target (the DPP-repetition cells give the n/m at which
    ratio_at_dpp_stable is read)."""
    level = float(cfg.stable_probability)
    own = cells(cfg, ctx, strategy, d, degree)
    dpp = cells(cfg, ctx, "dpp_rep", d, degree) if strategy != "dpp_rep" and "dpp_rep" in cfg.strategies else []
    rows = []
    for target in cfg.targets:
        chosen = [{**c, "strategy": strategy} for c in own if c["target"] == target]
        chosen += [{**c, "strategy": "dpp_rep"} for c in dpp if c["target"] == target]
        rows += [{k: v for k, v in row.items() if k != "strategy"} | {"target": target}
                 for row in threshold_rows(chosen, own[0]["m"], level) if row["strategy"] == strategy]
    return rows


def draw_sample(strategy: str, q: np.ndarray, n: int, m: int, draw: int, bank: np.ndarray,
                rng: np.random.Generator) -> np.ndarray:
    """Pool indices of draw number `draw`; dpp_rep draw d with l repeats takes bank rows d l .. d l + l - 1."""
    if strategy == "iid":
        return sample_iid(q, n, rng)
    if strategy == "dpp_rep":
        repeats = n // m
        return bank[draw * repeats:(draw + 1) * repeats].reshape(-1)
    return np.concatenate([bank[draw], sample_iid(q, n - m, rng)])


def error_statistics(coefficients: np.ndarray, c_star: np.ndarray, best_error: float, stable: np.ndarray,
                     best_weighted_sup: float, delta: float) -> dict:
    """Error ratio ||f - f_hat||^2 / ||f - P_m f||^2 = (best_error + |c_hat - c*|^2) / best_error (phi orthonormal
    on the pool) over draws (rows of `coefficients`), unconditioned and conditioned on stability (`stable`, one flag
    per draw; NaN when no draw is stable), and the bias of c_hat against its Monte Carlo noise. as_ratio_max: the
    largest ||f - f_hat||_L2 / min_v ||f - v||_H over stable draws, which the almost-sure bound
    keeps <= as_bound = 1 + (1 - delta)^(-1/2): on the stability event, for every v in V_m,
    ||f - f_hat|| <= ||f - v|| + (1 - delta)^(-1/2) ||f - v||_n <= (1 + (1 - delta)^(-1/2)) ||f - v||_H."""
    count, m = coefficients.shape
    ratio = (best_error + np.sum((coefficients - c_star) ** 2, axis=1)) / best_error
    mean_error = coefficients.mean(axis=0) - c_star
    noise = np.trace(np.cov(coefficients.T)) / count
    conditioned = ratio[stable]
    return {"ratio_mean": float(ratio.mean()), "ratio_median": float(np.median(ratio)),
            "ratio_p90": float(np.quantile(ratio, 0.9)), "bias": float(np.linalg.norm(mean_error)),
            "bias_ratio": float(mean_error @ mean_error / noise), "ratio_over_m1": float(ratio.mean() / (m + 1)),
            "stable_prob": float(stable.mean()), "stable_draws": int(stable.sum()),
            "ratio_mean_stable": float(conditioned.mean()) if conditioned.size else math.nan,
            "ratio_p90_stable": float(np.quantile(conditioned, 0.9)) if conditioned.size else math.nan,
            "conditioning_gain": float(ratio.mean() - conditioned.mean()) if conditioned.size else math.nan,
            "as_ratio_max": (float(np.sqrt(best_error * conditioned.max()) / best_weighted_sup)
                             if conditioned.size else math.nan),
            "as_bound": 1 + (1 - delta) ** -0.5}


def threshold_rows(cells: list[dict], m: int, level: float) -> list[dict]:
    """Smallest n/m with P(stable) >= level per strategy, and the mean error ratio there. When the grid never
    reaches the level the threshold is unknown (only known to exceed the grid): n_stable and ratio_at_stable are
    NaN and censored = 1, so claims on them are not run rather than decided by the grid's end.
    ratio_at_dpp_stable: the strategy's mean error ratio at the dpp_rep threshold n/m (the same sample budget)."""
    thresholds = {}
    for strategy in dict.fromkeys(c["strategy"] for c in cells):
        own = sorted((c["n_over_m"], c["stable_prob"]) for c in cells if c["strategy"] == strategy)
        thresholds[strategy] = next((ratio for ratio, probability in own if probability >= level), math.nan)
    ratio_at = {(c["strategy"], c["n_over_m"]): c["ratio_mean"] for c in cells}
    dpp_threshold = thresholds.get("dpp_rep", math.nan)
    return [{"strategy": strategy, "m": m, "censored": int(math.isnan(threshold)), "n_stable": threshold,
             "ratio_at_stable": ratio_at.get((strategy, threshold), math.nan),
             "ratio_at_dpp_stable": ratio_at.get((strategy, dpp_threshold), math.nan)}
            for strategy, threshold in thresholds.items()]


def growth_rows(rows: list[dict]) -> list[dict]:
    """threshold_growth = n_stable(largest m) / n_stable(smallest m), per strategy (rows: one strategy's threshold
    rows at two or more m; n_stable is the same for every target), n ~ m log m predicts growth for i.i.d. sampling."""
    ms = sorted({r["m"] for r in rows})
    if len(ms) < 2:
        return []
    out = []
    for strategy in dict.fromkeys(r["strategy"] for r in rows):
        value = {r["m"]: r["n_stable"] for r in rows if r["strategy"] == strategy}
        out.append({"strategy": strategy, "d": 1, "m": ms[-1], "m_small": ms[0],
                    "threshold_growth": value[ms[-1]] / value[ms[0]]})
    return out
