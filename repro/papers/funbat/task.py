"""The FunBaT experiment: FunBaT and FunBaT-CP against Tucker/CP-ALS on binned indices and GP regression, on
the synthetic continuous-indexed tensors (cpu) or the paper's BeijingAir / US-TEMP arrays (paper scale).
Metrics: test RMSE and MAE in original units; for the K = 2 task also |corr| of the learned and true functions."""

import time

import numpy as np
from omegaconf import DictConfig
from threadpoolctl import threadpool_limits

from repro.core.context import RunContext
from repro.core.errors import ConfigError
from repro.papers.funbat.baselines import BinnedTucker, gp_regression
from repro.papers.funbat.data import PAPER_FILES, TensorData, paper_file, parse_fold, synthetic
from repro.papers.funbat.model import FunBaT
from repro.papers.funbat.statespace import Matern


def run(cfg: DictConfig, ctx: RunContext) -> list[dict]:
    for name in cfg.datasets:
        if name not in cfg.synthetic and name not in PAPER_FILES:
            raise ConfigError(f"paper.datasets has unknown {name!r}; define it under paper.synthetic or use one of "
                              f"{sorted(PAPER_FILES)}")
    rows: list[dict] = []
    with threadpool_limits(limits=1, user_api="blas"):   # tiny batched matrices: threads only add overhead
        for name in cfg.datasets:
            for replicate, seed in enumerate(ctx.replicate_seeds()):
                rows += ctx.unit(f"{name}-{seed}", lambda n=name, r=replicate, s=seed: dataset_rows(cfg, ctx, n, r, s))
    return rows


def load(cfg: DictConfig, ctx: RunContext, name: str, replicate: int, seed: int) -> TensorData:
    if name in cfg.synthetic:
        spec = cfg.synthetic[name]
        return synthetic(spec.modes, spec.train, spec.test, spec.noise, seed)
    return parse_fold(paper_file(name, ctx.data_dir), fold=replicate % 5)   # the authors' 5 random splits


def ranks_for(cfg: DictConfig, name: str, modes: int) -> list[int]:
    rank = cfg.synthetic[name].rank if name in cfg.synthetic else cfg.model.rank
    return [int(rank)] * modes


def errors(prediction: np.ndarray, truth: np.ndarray) -> dict:
    residual = prediction - truth
    return {"test/rmse": float(np.sqrt(np.mean(residual**2))), "test/mae": float(np.mean(np.abs(residual)))}


def dataset_rows(cfg: DictConfig, ctx: RunContext, name: str, replicate: int, seed: int) -> list[dict]:
    data = load(cfg, ctx, name, replicate, seed)
    # standardise targets with training statistics (US-TEMP in the paper); errors in original units
    centre, scale = (data.train_y.mean(), data.train_y.std()) if cfg.standardize else (0.0, 1.0)
    y = (data.train_y - centre) / scale
    modes = data.train_index.shape[1]
    ranks = ranks_for(cfg, name, modes)
    rng = np.random.default_rng(seed)
    base = {"kind": "score", "dataset": name, "seed": seed}
    rows = []
    kernel = Matern(cfg.model.nu, cfg.model.lengthscale, cfg.model.variance)
    for method, cp in (("funbat", False), ("funbat_cp", True)):
        start = time.perf_counter()
        model = FunBaT(ranks, kernel, cp, cfg.model.prior_var, cfg.model.a0, cfg.model.b0, cfg.model.damping,
                       cfg.model.damping_tau, cfg.model.damping_core, cfg.model.init_noise_fraction)
        model.fit(data.train_index, y, data.test_index, cfg.model.epochs, rng)
        row = {**base, "method": method, "time_s": time.perf_counter() - start,
               **errors(model.predict(data.test_index) * scale + centre, data.test_y)}
        if data.truth is not None and max(ranks) == 1:
            row.update(function_correlations(model, data))
            if method == "funbat" and replicate == 0:
                curves = curve_rows(model, data, cfg.curve_points)
        rows.append(row)
        ctx.log.info("%s seed %d: %s test RMSE %.4f", name, seed, method, row["test/rmse"])
    for bins in cfg.baselines.bins:
        for method, cp in (("tucker_als", False), ("cp_als", True)):
            start = time.perf_counter()
            baseline = BinnedTucker(ranks, bins, cp, cfg.baselines.iterations, cfg.baselines.ridge)
            baseline.fit(data.train_index, y, rng)
            rows.append({**base, "method": f"{method}_b{bins}", "bins": bins, "time_s": time.perf_counter() - start,
                         **errors(baseline.predict(data.test_index) * scale + centre, data.test_y)})
    start = time.perf_counter()
    gp = gp_regression(data.train_index, y, cfg.baselines.gp_max_points, rng)
    rows.append({**base, "method": "gp_regression", "time_s": time.perf_counter() - start,
                 **errors(gp.predict(data.test_index) * scale + centre, data.test_y)})
    best_binned = min(r["test/rmse"] for r in rows if "bins" in r)
    for row in rows:
        row["rmse_vs_best_binned"] = row["test/rmse"] / best_binned
    return rows + (curves if data.truth is not None and max(ranks) == 1 and replicate == 0 else [])


def curve_rows(model: FunBaT, data: TensorData, points: int) -> list[dict]:
    """Posterior mean +- 2 sd of each rank-1 latent function on a subsample of its chain, rescaled by the least-
    squares factor onto the truth (sign and scale of rank-1 factors are not identifiable)."""
    rows = []
    for k, truth in enumerate(data.truth):
        grid = model.grids[k]
        keep = np.linspace(0, len(grid) - 1, min(points, len(grid))).astype(int)
        mean, sd = model.means[k][keep, 0], np.sqrt(model.covs[k][keep, 0, 0])
        target = truth(grid[keep])[:, 0]
        factor = float(mean @ target / (mean @ mean))
        mean, band = factor * mean, 2 * abs(factor) * sd
        rows += [{"kind": "curve", "dataset": "synthetic_k2", "function": f"u{k + 1}", "t": float(t), "mean": m,
                  "lower": m - b, "upper": m + b, "truth": float(v)}
                 for t, m, b, v in zip(grid[keep], mean, band, target)]
    return rows


def function_correlations(model: FunBaT, data: TensorData) -> dict:
    """|corr| between the posterior mean of u^k and the true u^k over the chain's index values (rank 1: the
    sign and scale are not identifiable, the shape is)."""
    out = {}
    for k, truth in enumerate(data.truth):
        grid = model.grids[k]
        out[f"corr_u{k + 1}"] = float(abs(np.corrcoef(model.factor_means(k, grid)[:, 0], truth(grid)[:, 0])[0, 1]))
    return out
