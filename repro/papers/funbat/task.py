"""The FunBaT experiment: FunBaT and FunBaT-CP against the paper's Table 1 baselines that run on our data
(P-Tucker and Tucker-SVI on binned indices, FTT-ALS on the continuous indices), our Tucker/CP-ALS on binned
indices and GP regression, on the synthetic continuous-indexed tensors (cpu) or the paper's BeijingAir / US-TEMP
arrays (paper scale).
Metrics: test RMSE and MAE in original units; for rank-1 synthetic tasks also |corr| of the learned and true
functions.

Units: ``<dataset>/<method>`` and ``<dataset>/<binned method>/bins=<B>``, one per replicate; every method of a
replicate fits the same tensor (synthetic: generated from ``ctx.data_seed``; paper data: fold replicate % 5).
"""

import numpy as np
from omegaconf import DictConfig

from repro.core.context import RunContext
from repro.core.errors import ConfigError
from repro.core.train import plateaued
from repro.core.units import Unit, grid
from repro.papers.funbat.baselines import BinnedTucker, TuckerSVI, ftt_als, gp_regression
from repro.papers.funbat.data import PAPER_FILES, TensorData, paper_file, parse_fold, synthetic
from repro.papers.funbat.model import FunBaT
from repro.papers.funbat.statespace import Matern

CONTINUOUS = ("funbat", "funbat_cp", "ftt_als", "gp_regression")
BINNED = ("p_tucker", "tucker_als", "tucker_svi", "cp_als")
METHODS = (*CONTINUOUS, *BINNED)


def units(cfg: DictConfig) -> list[Unit]:
    for name in cfg.datasets:
        if name not in cfg.synthetic and name not in PAPER_FILES:
            raise ConfigError(f"paper.datasets has unknown {name!r}; define it under paper.synthetic or use one of "
                              f"{sorted(PAPER_FILES)}")
    methods = list(cfg.methods)
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ConfigError(f"paper.methods has unknown {unknown}; choose from {list(METHODS)}")
    found = []
    for name in cfg.datasets:
        found += grid(name, [m for m in methods if m in CONTINUOUS])
        found += grid(name, [m for m in methods if m in BINNED], bins=list(cfg.baselines.bins))
    return found


def run_unit(cfg: DictConfig, ctx: RunContext, u: Unit) -> list[dict]:
    name = u.experiment
    data = ctx.shared(name, lambda: load(cfg, ctx, name))
    # standardise targets with training statistics (US-TEMP in the paper); errors in original units
    centre, scale = (data.train_y.mean(), data.train_y.std()) if cfg.standardize else (0.0, 1.0)
    y = (data.train_y - centre) / scale
    ranks = ranks_for(cfg, name, data.train_index.shape[1])
    rng = np.random.default_rng(ctx.child_seed("init"))
    row = {"kind": "score", "bins": 0}   # bins 0: the method reads the continuous indices
    curves = []
    if u.method in ("funbat", "funbat_cp"):
        m = cfg.model
        model = FunBaT(ranks, Matern(m.nu, m.lengthscale, m.variance), u.method == "funbat_cp", m.prior_var, m.a0,
                       m.b0, m.damping, m.damping_tau, m.damping_core, m.init_noise_fraction)
        epochs = cfg.synthetic[name].get("epochs", m.epochs) if name in cfg.synthetic else m.epochs
        model.fit(data.train_index, y, data.test_index, epochs, rng)
        ctx.record_convergence(plateaued(model.train_rmse))
        prediction = model.predict(data.test_index)
        if data.truth is not None and max(ranks) == 1:
            row.update(function_correlations(model, data))
            if u.method == "funbat" and u.replicate == 0:
                curves = curve_rows(model, data, cfg.curve_points)
    elif u.method == "tucker_svi":
        s = cfg.baselines.svi
        row["bins"] = int(u.settings["bins"])
        model = TuckerSVI(ranks, row["bins"], s.epochs, s.batch, s.delay, s.forgetting, cfg.model.a0,
                          cfg.model.b0, cfg.model.init_noise_fraction).fit(data.train_index, y, rng)
        ctx.record_convergence(plateaued(model.train_rmse))
        prediction = model.predict(data.test_index)
    elif u.method == "p_tucker":
        p = cfg.baselines.p_tucker
        row["bins"] = int(u.settings["bins"])
        model = BinnedTucker(ranks, row["bins"], u.method, p.max_iterations, p.ridge, p.tolerance).fit(
            data.train_index, y, rng)
        ctx.record_convergence(model.stopped)   # P-Tucker's own stopping rule was met before the cap
        prediction = model.predict(data.test_index)
    elif u.method in BINNED:
        b = cfg.baselines
        row["bins"] = int(u.settings["bins"])
        model = BinnedTucker(ranks, row["bins"], u.method, b.iterations, b.ridge).fit(data.train_index, y, rng)
        ctx.record_convergence(plateaued(model.train_rmse))
        prediction = model.predict(data.test_index)
    elif u.method == "ftt_als":
        f = cfg.baselines.ftt
        model = ftt_als(data.train_index, y, max(ranks), list(f.degrees), f.sweeps, f.ridge, f.validation, rng)
        ctx.record_convergence(plateaued(model.train_rmse))
        row["degree"] = model.degree
        prediction = model.predict(data.test_index)
    else:
        gp = gp_regression(data.train_index, y, cfg.baselines.gp_max_points, rng)
        prediction = gp.predict(data.test_index)
    row.update(errors(prediction * scale + centre, data.test_y))
    ctx.log.info("%s: %s test RMSE %.4f", name, u.name, row["test/rmse"])
    return [row, *curves]


def load(cfg: DictConfig, ctx: RunContext, name: str) -> TensorData:
    if name in cfg.synthetic:
        spec = cfg.synthetic[name]
        return synthetic(spec.modes, spec.train, spec.test, spec.noise, ctx.data_seed("synthetic", name))
    pins = (cfg.get("data_pins") or {}).get(name)   # SHA-256 / git blob id of the authors' file
    return parse_fold(paper_file(name, ctx.data_dir, pins), fold=ctx.unit.replicate % 5)   # the authors' 5 splits


def ranks_for(cfg: DictConfig, name: str, modes: int) -> list[int]:
    rank = cfg.synthetic[name].rank if name in cfg.synthetic else cfg.model.rank
    return [int(rank)] * modes


def errors(prediction: np.ndarray, truth: np.ndarray) -> dict:
    residual = prediction - truth
    return {"test/rmse": float(np.sqrt(np.mean(residual**2))), "test/mae": float(np.mean(np.abs(residual)))}


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
        rows += [{"kind": "curve", "function": f"u{k + 1}", "t": float(t), "mean": m,
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
