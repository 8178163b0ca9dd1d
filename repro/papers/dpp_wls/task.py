"""WLS from i.i.d. optimal-density, projection-DPP (repeated) and volume-rescaled samples on a pool (d = 1).

Per (m, replicate seed): a pool of N_c uniform points on [-1, 1] (the seed's own), Q = orthonormal Legendre basis
on it, target f(x) = 1 / (1 + 25 x^2). For each strategy and n/m, `draws` samples:
- iid:     n i.i.d. points from rho_m;
- dpp_rep: union of l = n/m independent m-point projection DPPs (integer n/m only);
- volume:  one m-point projection DPP united with n - m i.i.d. points from rho_m (volume-rescaled sampling).
Metrics: P(||G - I||_2 <= delta), error ratio ||f - f_hat||^2 / ||f - P_m f||^2 (mean, median, 90th percentile),
bias_ratio = |mean(c_hat) - c*|^2 / (trace Cov(c_hat) / draws) (about 1 when unbiased, >> 1 when biased).
DPP samples come from one bank per (m, seed); cell (l, draw d) uses bank entries d l .. d l + l - 1.
"""

import math

import numpy as np
from omegaconf import DictConfig

from repro.core.context import RunContext
from repro.core.errors import ConfigError
from repro.papers.dpp_wls.sampling import (
    STRATEGIES,
    orthonormal_basis,
    sample_iid,
    sample_projection_dpp,
    weighted_least_squares,
)


def runge(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + 25 * x**2)


def run(cfg: DictConfig, ctx: RunContext) -> list[dict]:
    unknown = sorted(set(cfg.strategies) - set(STRATEGIES))
    if unknown:
        raise ConfigError(f"paper.strategies has unknown {unknown}; choose from {list(STRATEGIES)}")
    rows = []
    for seed in ctx.replicate_seeds():
        for m in cfg.ms:
            rows += ctx.unit(f"m{m}-{seed}", lambda m=m, s=seed: cell_rows(cfg, int(m), s, ctx))
    return rows


def cell_rows(cfg: DictConfig, m: int, seed: int, ctx: RunContext) -> list[dict]:
    rng = np.random.default_rng([seed, m])
    pool = rng.uniform(-1, 1, size=int(cfg.pool_size))
    q = orthonormal_basis(pool, m - 1)
    f = runge(pool)
    best = q.T @ f                                          # P_m f = Q Q^T f; in phi = sqrt(N_c) Q coordinates
    best_error = float(np.mean((f - q @ best) ** 2))        # c* = Q^T f / sqrt(N_c)
    c_star = best / math.sqrt(len(pool))
    ratios = [float(r) for r in cfg.n_over_m]
    draws = int(cfg.draws)
    bank_size = max(int(cfg.draws_n_equals_m), draws * int(max(r for r in ratios if r == int(r))))
    bank = [sample_projection_dpp(q, rng) for _ in range(bank_size)]
    ctx.log.info("m = %d, seed %d: %d projection-DPP samples", m, seed, bank_size)
    rows = []
    for strategy in cfg.strategies:
        for ratio in ratios:
            if strategy == "dpp_rep" and ratio != int(ratio):
                continue
            n = math.ceil(ratio * m)
            count = int(cfg.draws_n_equals_m) if (strategy != "iid" and n == m) else draws
            samples = [draw_sample(strategy, q, n, m, d, bank, rng) for d in range(count)]
            rows.append(cell_statistics(q, f, c_star, best_error, samples, float(cfg.delta)) | {
                "experiment": "cell", "strategy": strategy, "m": m, "n": n, "n_over_m": ratio, "seed": seed})
    return rows + threshold_rows(rows, m, seed, float(cfg.stable_probability), max(ratios))


def draw_sample(strategy: str, q: np.ndarray, n: int, m: int, draw: int, bank: list, rng: np.random.Generator):
    if strategy == "iid":
        return sample_iid(q, n, rng)
    if strategy == "dpp_rep":
        repeats = n // m
        return np.concatenate([bank[(draw * repeats + j) % len(bank)] for j in range(repeats)])
    return np.concatenate([bank[draw % len(bank)], sample_iid(q, n - m, rng)])


def cell_statistics(q: np.ndarray, f: np.ndarray, c_star: np.ndarray, best_error: float, samples: list,
                    delta: float) -> dict:
    """Error of f_hat = phi c_hat is best_error + |c_hat - c*|^2 (phi orthonormal on the pool)."""
    fits = [weighted_least_squares(q, f, sample) for sample in samples]
    coefficients = np.array([c for c, _ in fits])
    deviation = np.array([d for _, d in fits])
    ratio = (best_error + np.sum((coefficients - c_star) ** 2, axis=1)) / best_error
    mean_error = coefficients.mean(axis=0) - c_star
    noise = np.trace(np.cov(coefficients.T)) / len(samples)
    return {"draws": len(samples), "stable_prob": float(np.mean(deviation <= delta)),
            "ratio_mean": float(ratio.mean()), "ratio_median": float(np.median(ratio)),
            "ratio_p90": float(np.quantile(ratio, 0.9)), "bias": float(np.linalg.norm(mean_error)),
            "bias_ratio": float(mean_error @ mean_error / noise),
            "ratio_over_m1": float(ratio.mean() / (q.shape[1] + 1))}


def threshold_rows(cells: list[dict], m: int, seed: int, level: float, largest: float) -> list[dict]:
    """Smallest n/m with P(stable) >= level per strategy, and the mean error ratio there. When the grid never
    reaches the level: n_stable = 2 x the largest n/m, reached = 0, and ratio_at_stable is the ratio at the largest
    n/m (what the strategy achieves with the most samples tried)."""
    rows = []
    for strategy in dict.fromkeys(c["strategy"] for c in cells):
        own = sorted((c["n_over_m"], c["ratio_mean"], c["stable_prob"]) for c in cells if c["strategy"] == strategy)
        stable = [(ratio, error) for ratio, error, probability in own if probability >= level]
        reached = bool(stable)
        rows.append({"experiment": "threshold", "strategy": strategy, "m": m, "seed": seed, "reached": int(reached),
                     "n_stable": stable[0][0] if reached else 2 * largest,
                     "ratio_at_stable": stable[0][1] if reached else own[-1][1]})
    return rows
