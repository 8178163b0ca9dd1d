"""The experiment: train DAEs (and RCAEs in 1-D) at several corruption levels sigma, compare (r(x) - x) / sigma^2
with the exact score grad log p, and sample the 2-D ring with a Metropolis-Hastings chain driven by the DAE.

Row kinds (column `kind`):
  score   per (density, criterion, sigma, seed): relative squared score error
          score_err = E_p ||(r(x) - x)/sigma^2 - grad log p||^2 / E_p ||grad log p||^2 (5 000 points from p),
          its distance to the exact DAE optimum, and reconstruction errors ||r(x) - x||^2 at the antimode / modes;
          criterion `optimum` is the exact DAE optimum r* (Tweedie), i.e. the bias of the method itself
  curve   (r(x) - x)/sigma^2 on a 1-D grid, first replicate only (figure)
  mh      per (sampler, seed): KL(histogram || p) on the grid, acceptance rate
  sample  a few MH states per sampler, first replicate only (figure)
"""

import time

import numpy as np
from omegaconf import DictConfig

from repro.core.context import RunContext
from repro.core.errors import ConfigError
from repro.papers.rae_score.densities import GaussianMixture, make_density
from repro.papers.rae_score.models import reconstruct, train_autoencoders
from repro.papers.rae_score.sampling import exact_difference, histogram_kl, metropolis, trapezoid_difference


def run(cfg: DictConfig, ctx: RunContext) -> list[dict]:
    for density, criteria in cfg.criteria.items():
        make_density(density)
        if set(criteria) - {"dae", "rcae"}:
            raise ConfigError(f"paper.criteria.{density} = {list(criteria)}; criteria are dae and rcae")
    rows = []
    for index, seed in enumerate(ctx.replicate_seeds()):
        for density, criteria in cfg.criteria.items():
            for criterion in ["optimum", *criteria]:
                rows += ctx.unit(f"{density}-{criterion}-{seed}",
                                 lambda d=density, c=criterion, s=seed, i=index: score_rows(cfg, ctx, d, c, s, i))
        rows += ctx.unit(f"sampling-{seed}", lambda s=seed, i=index: sampling_rows(cfg, ctx, s, i))
    return rows


def relative_score_error(estimate: np.ndarray, truth: np.ndarray) -> float:
    """E ||estimate - truth||^2 / E ||truth||^2 over the rows (points) of (n, d) arrays."""
    return float(((estimate - truth) ** 2).sum(-1).mean() / (truth**2).sum(-1).mean())


def reconstructions(cfg: DictConfig, ctx: RunContext, p: GaussianMixture, criterion: str, seed: int,
                    points: np.ndarray) -> np.ndarray:
    """(len(sigmas), n, d) r(x) of the exact optimum or of networks trained at every sigma."""
    sigmas = list(cfg.sigmas)
    if criterion == "optimum":
        return np.stack([p.dae_optimum(points, s) for s in sigmas])
    t = cfg.train
    train_x = p.sample(t.points, np.random.default_rng(ctx.child_seed("train-data", seed)))
    start = time.perf_counter()
    model = train_autoencoders(criterion, train_x, sigmas, t.hidden, t.steps, t.batch_size, t.lr,
                               ctx.child_seed("init", criterion, seed))
    ctx.log.info("%s on %s, seed %d: %d networks trained in %.1f s", criterion, p.dim, seed, len(sigmas),
                 time.perf_counter() - start)
    return reconstruct(model, points)


def score_rows(cfg: DictConfig, ctx: RunContext, density: str, criterion: str, seed: int,
               index: int) -> list[dict]:
    p = make_density(density)
    test_x = p.sample(cfg.eval.test_points, np.random.default_rng(ctx.child_seed("test-data", density, seed)))
    special = {"antimode": np.zeros((1, p.dim)), "modes": p.means}
    grid = np.linspace(*cfg.eval.curve_range, cfg.eval.curve_points)[:, None]
    stacked = np.concatenate([test_x, special["antimode"], special["modes"], grid]) if p.dim == 1 else \
        np.concatenate([test_x, special["antimode"], special["modes"]])
    recon = reconstructions(cfg, ctx, p, criterion, seed, stacked)
    n, k = len(test_x), len(p.means)
    true_score = p.score(test_x)
    rows = []
    for m, sigma in enumerate(cfg.sigmas):
        r = recon[m]
        optimum = p.dae_optimum(test_x, sigma)
        recon_sq = ((r - stacked) ** 2).sum(-1)
        rows.append({
            "kind": "score", "density": density, "criterion": criterion, "sigma": sigma, "seed": seed,
            "score_err": relative_score_error((r[:n] - test_x) / sigma**2, true_score),
            "dist_to_optimum": relative_score_error(r[:n] - test_x, optimum - test_x),
            "recon_mean": float(recon_sq[:n].mean()),
            "recon_antimode": float(recon_sq[n]),
            "recon_modes": float(recon_sq[n + 1:n + 1 + k].mean()),
            "recon_antimode_ratio": float(recon_sq[n] / recon_sq[:n].mean()),
            "log_density_gap": float(p.log_prob(p.means).mean() - p.log_prob(special["antimode"])[0]),
        })
        if p.dim == 1 and index == 0:
            offset = n + 1 + k
            rows += [{"kind": "curve", "density": density, "criterion": criterion, "sigma": sigma, "seed": seed,
                      "x": float(x), "score_estimate": float((r[offset + i, 0] - x) / sigma**2),
                      "score_true": float(p.score(np.array([[x]]))[0, 0])}
                     for i, x in enumerate(grid[:, 0])]
    return rows


def sampling_rows(cfg: DictConfig, ctx: RunContext, seed: int, index: int) -> list[dict]:
    """Exact-energy MH, DAE-driven MH (trapezoid energy differences), and i.i.d. samples of p on the ring."""
    s = cfg.sampling
    p = make_density(s.density)
    t = cfg.train
    train_x = p.sample(t.points, np.random.default_rng(ctx.child_seed("train-data", seed)))
    model = train_autoencoders("dae", train_x, [s.sigma], t.hidden, t.steps, t.batch_size, t.lr,
                               ctx.child_seed("init", "sampling", seed))

    def learned_score(x: np.ndarray) -> np.ndarray:
        return (reconstruct(model, x)[0] - x) / s.sigma**2

    rng = np.random.default_rng(ctx.child_seed("chains", seed))
    start = rng.uniform(-s.start_half_width, s.start_half_width, (s.chains, p.dim))
    samplers = {"exact_mh": exact_difference(p.log_prob), "dae_mh": trapezoid_difference(learned_score)}
    rows = []
    kept = {}
    for name, difference in samplers.items():
        begin = time.perf_counter()
        states = metropolis(start, s.steps, s.proposal_std, np.random.default_rng(ctx.child_seed(name, seed)),
                            difference)
        moved = (np.abs(np.diff(states, axis=0)).sum(-1) > 0).mean()
        kept[name] = states[s.burn_in:].reshape(-1, p.dim)
        rows.append({"kind": "mh", "sampler": name, "seed": seed, "acceptance": float(moved),
                     "kl": histogram_kl(kept[name], p.log_prob, s.grid_half_width, s.bins),
                     "sampling_time_s": time.perf_counter() - begin})
    kept["iid"] = p.sample(len(kept["exact_mh"]), np.random.default_rng(ctx.child_seed("iid", seed)))
    rows.append({"kind": "mh", "sampler": "iid", "seed": seed,
                 "kl": histogram_kl(kept["iid"], p.log_prob, s.grid_half_width, s.bins)})
    ctx.log.info("sampling seed %d: %s", seed, {r["sampler"]: round(r["kl"], 4) for r in rows})
    if index == 0:
        for name, samples in kept.items():
            chosen = samples[np.random.default_rng(0).choice(len(samples), s.stored_samples, replace=False)]
            rows += [{"kind": "sample", "sampler": name, "seed": seed, "x1": a, "x2": b} for a, b in chosen]
    return rows
