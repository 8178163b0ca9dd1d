"""WLS from i.i.d. optimal-density, repeated projection-DPP and volume-rescaled samples on a pool.

Grid: ``cell/<strategy>/d=,degree=`` (every n/m of one strategy in one space), ``threshold/<strategy>/d=,degree=``
(its stability threshold) and ``growth/<strategy>`` (threshold growth from the smallest to the largest m, d = 1), each
per replicate. Per space (d, total degree -> m) and replicate: a pool of N_c uniform points on [-1, 1]^d (shared by
every strategy of the replicate), Q = orthonormal Legendre basis on it, targets f1(x) = 1 / (1 + 25 |x|^2 / d)
(Runge) and f3(x) = |x_1| (not smooth),
fitted from the same samples. For each strategy and n/m, `draws` samples:
- iid:     n i.i.d. points from rho_m;
- dpp_rep: union of l = n/m independent m-point projection DPPs (integer n/m <= max_repeats only);
- volume:  one m-point projection DPP united with n - m i.i.d. points from rho_m (volume-rescaled sampling).
Metrics: P(||G - I||_2 <= delta), error ratio ||f - f_hat||^2 / ||f - P_m f||^2 (mean, median, 90th percentile),
bias_ratio = |mean(c_hat) - c*|^2 / (trace Cov(c_hat) / draws) (about 1 when unbiased, >> 1 when biased).
DPP samples come from one bank of independent samples per (space, replicate); no DPP sample is used twice in a cell.
Threshold rows: the smallest n/m with P(stable) >= level per strategy (NaN and censored = 1 when the grid never
reaches it); growth rows: threshold at the largest m over threshold at the smallest m of the d = 1 spaces.
"""

import math

import numpy as np
from omegaconf import DictConfig

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
                  for experiment in ("cell", "threshold") for d, degree in spaces for strategy in strategies]
    if len(_growth_spaces(cfg)) == 2:
        grid_units += [unit("growth", strategy) for strategy in strategies]
    return grid_units


def run_unit(cfg: DictConfig, ctx: RunContext, u: Unit) -> list[dict]:
    if u.experiment == "cell":
        return cells(cfg, ctx, u.method, int(u.settings["d"]), int(u.settings["degree"]))
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
                "c_star": best / math.sqrt(len(pool)), "repeats": repeats, "bank": bank}

    return ctx.shared(f"space-d{d}-p{degree}", build)


def cells(cfg: DictConfig, ctx: RunContext, strategy: str, d: int, degree: int) -> list[dict]:
    """Every n/m cell of one strategy in one space (built once per process and replicate: the threshold and growth
    units read the same cells). Draws of i.i.d. points are seeded by ctx.data_seed too, so that any unit that needs
    these cells computes the same ones."""
    rows = ctx.shared(f"cells-{strategy}-d{d}-p{degree}", lambda: _cells(cfg, ctx, strategy, d, degree))
    return [dict(r) for r in rows]


def _cells(cfg: DictConfig, ctx: RunContext, strategy: str, d: int, degree: int) -> list[dict]:
    space = space_data(cfg, ctx, d, degree)
    q, m, bank = space["q"], space["m"], space["bank"]
    rng = np.random.default_rng(ctx.data_seed("draws", strategy, d, degree))
    rows = []
    for ratio in (float(r) for r in cfg.n_over_m):
        if strategy == "dpp_rep" and ratio not in space["repeats"]:
            continue
        n = math.ceil(ratio * m)
        count = int(cfg.draws_n_equals_m) if (strategy != "iid" and n == m) else int(cfg.draws)
        fits = [weighted_least_squares(q, space["values"], draw_sample(strategy, q, n, m, draw, bank, rng))
                for draw in range(count)]
        coefficients = np.array([c for c, _ in fits])                      # (count, m, T)
        stable = float(np.mean(np.array([dev for _, dev in fits]) <= float(cfg.delta)))
        for t, target in enumerate(cfg.targets):
            rows.append(error_statistics(coefficients[:, :, t], space["c_star"][:, t], float(space["best_error"][t]))
                        | {"target": target, "m": m, "n": n, "n_over_m": ratio, "draws": count,
                           "stable_prob": stable})
    return rows


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


def error_statistics(coefficients: np.ndarray, c_star: np.ndarray, best_error: float) -> dict:
    """Error ratio ||f - f_hat||^2 / ||f - P_m f||^2 = (best_error + |c_hat - c*|^2) / best_error (phi orthonormal
    on the pool) over draws (rows of `coefficients`), and the bias of c_hat against its Monte Carlo noise."""
    m = coefficients.shape[1]
    ratio = (best_error + np.sum((coefficients - c_star) ** 2, axis=1)) / best_error
    mean_error = coefficients.mean(axis=0) - c_star
    noise = np.trace(np.cov(coefficients.T)) / len(coefficients)
    return {"ratio_mean": float(ratio.mean()), "ratio_median": float(np.median(ratio)),
            "ratio_p90": float(np.quantile(ratio, 0.9)), "bias": float(np.linalg.norm(mean_error)),
            "bias_ratio": float(mean_error @ mean_error / noise), "ratio_over_m1": float(ratio.mean() / (m + 1))}


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
