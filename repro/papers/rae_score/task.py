"""The experiment: train DAEs (and RCAEs in 1-D) at several corruption levels sigma, compare (r(x) - x) / sigma^2
with the exact score grad log p, and sample the 2-D ring with a Metropolis-Hastings chain driven by the DAE.

Units: ``score/<optimum|dae|rcae>/density=<mixture1d|ring2d>,sigma=<s>`` (one network, so each training has
its own convergence flag) and ``sampling/<exact_mh|dae_mh|iid>``, each once per replicate. Row kinds (column `kind`):
  score   per (density, method, sigma): relative squared score error
          score_err = E_p ||(r(x) - x)/sigma^2 - grad log p||^2 / E_p ||grad log p||^2 (5 000 points from p),
          its distance to the exact DAE optimum, and reconstruction errors ||r(x) - x||^2 at the antimode / modes;
          method `optimum` is the exact DAE optimum r* (Tweedie), i.e. the bias of the method itself
  curve   (r(x) - x)/sigma^2 on a 1-D grid, first replicate only (figure)
  mh      per sampler: KL(histogram || p) on the grid, acceptance rate
  sample  a few MH states per sampler, first replicate only (figure)
"""

import numpy as np
from omegaconf import DictConfig

from repro.core.context import RunContext
from repro.core.errors import ConfigError
from repro.core.train import plateaued
from repro.core.units import Unit, grid
from repro.papers.rae_score.densities import GaussianMixture, make_density
from repro.papers.rae_score.models import reconstruct, train_autoencoders
from repro.papers.rae_score.sampling import exact_difference, histogram_kl, metropolis, trapezoid_difference

CRITERIA = ("dae", "rcae")
SAMPLERS = ("exact_mh", "dae_mh", "iid")
METHODS = ("optimum", *CRITERIA, *SAMPLERS)


def units(cfg: DictConfig) -> list[Unit]:
    """score/<optimum|dae|rcae>/density=<name>,sigma=<s> (one network per unit, so that each sigma's training
    has its own convergence flag), sampling/<exact_mh|dae_mh|iid>; every unit once per replicate."""
    found = []
    for density, criteria in cfg.criteria.items():
        make_density(density)
        if set(criteria) - set(CRITERIA):
            raise ConfigError(f"paper.criteria.{density} = {list(criteria)}; criteria are dae and rcae")
        found += grid("score", ["optimum", *criteria], density=[density], sigma=list(cfg.sigmas))
    return found + grid("sampling", SAMPLERS)


def run_unit(cfg: DictConfig, ctx: RunContext, u: Unit) -> list[dict]:
    if u.experiment == "score":
        return score_rows(cfg, ctx, u.settings["density"], u.method, float(u.settings["sigma"]))
    return sampling_rows(cfg, ctx, u.method)


def relative_score_error(estimate: np.ndarray, truth: np.ndarray) -> float:
    """E ||estimate - truth||^2 / E ||truth||^2 over the rows (points) of (n, d) arrays."""
    return float(((estimate - truth) ** 2).sum(-1).mean() / (truth**2).sum(-1).mean())


def train_data(cfg: DictConfig, ctx: RunContext, p: GaussianMixture, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Training and held-out validation points of p, the same for every criterion of this replicate."""
    t = cfg.train
    return (p.sample(t.points, np.random.default_rng(ctx.data_seed("train", name))),
            p.sample(t.val_points, np.random.default_rng(ctx.data_seed("val", name))))


def trained(cfg: DictConfig, ctx: RunContext, p: GaussianMixture, name: str, criterion: str,
            sigmas: list[float]):
    """Networks trained at every sigma given (side by side); records whether every validation loss curve
    plateaued."""
    t = cfg.train
    train_x, val_x = train_data(cfg, ctx, p, name)
    result = train_autoencoders(criterion, train_x, val_x, sigmas, t.hidden, t.steps, t.batch_size, t.lr,
                                ctx.child_seed("init"), ctx.device)
    flags = [plateaued(list(result.val_losses[:, m])) for m in range(len(sigmas))]
    ctx.log.info("%s on %s: validation losses %s, plateaued %s", criterion, name,
                 np.round(result.val_losses[-1], 5).tolist(), flags)
    ctx.record_convergence(all(flags))
    return result.model


def reconstruction(cfg: DictConfig, ctx: RunContext, p: GaussianMixture, name: str, criterion: str, sigma: float,
                   points: np.ndarray) -> np.ndarray:
    """(n, d) r(x) of the exact optimum or of a network trained at sigma."""
    if criterion == "optimum":
        return p.dae_optimum(points, sigma)
    return reconstruct(trained(cfg, ctx, p, name, criterion, [sigma]), points)[0]


def score_rows(cfg: DictConfig, ctx: RunContext, density: str, criterion: str, sigma: float) -> list[dict]:
    p = make_density(density)
    test_x = p.sample(cfg.eval.test_points, np.random.default_rng(ctx.data_seed("test", density)))
    special = {"antimode": np.zeros((1, p.dim)), "modes": p.means}
    curve = np.linspace(*cfg.eval.curve_range, cfg.eval.curve_points)[:, None]
    stacked = np.concatenate([test_x, special["antimode"], special["modes"], *([curve] if p.dim == 1 else [])])
    r = reconstruction(cfg, ctx, p, density, criterion, sigma, stacked)
    n, k = len(test_x), len(p.means)
    optimum = p.dae_optimum(test_x, sigma)
    recon_sq = ((r - stacked) ** 2).sum(-1)
    rows = [{
        "kind": "score",
        "score_err": relative_score_error((r[:n] - test_x) / sigma**2, p.score(test_x)),
        "dist_to_optimum": relative_score_error(r[:n] - test_x, optimum - test_x),
        "recon_mean": float(recon_sq[:n].mean()),
        "recon_antimode": float(recon_sq[n]),
        "recon_modes": float(recon_sq[n + 1:n + 1 + k].mean()),
        "recon_antimode_ratio": float(recon_sq[n] / recon_sq[:n].mean()),
        "log_density_gap": float(p.log_prob(p.means).mean() - p.log_prob(special["antimode"])[0]),
    }]
    if p.dim == 1 and ctx.unit.replicate == 0:
        offset = n + 1 + k
        rows += [{"kind": "curve", "x": float(x), "score_estimate": float((r[offset + i, 0] - x) / sigma**2),
                  "score_true": float(p.score(np.array([[x]]))[0, 0])}
                 for i, x in enumerate(curve[:, 0])]
    return rows


def sampling_rows(cfg: DictConfig, ctx: RunContext, sampler: str) -> list[dict]:
    """Exact-energy MH, DAE-driven MH (trapezoid energy differences), or i.i.d. samples of p on the ring.

    The chains of both samplers start from the same points (shared by the replicate)."""
    s = cfg.sampling
    p = make_density(s.density)
    if sampler == "iid":
        count = (s.steps - s.burn_in) * s.chains
        kept = p.sample(count, np.random.default_rng(ctx.child_seed("iid")))
        rows = [{"kind": "mh",
                 "kl": histogram_kl(kept, p.log_prob, s.grid_half_width, s.bins)}]
    else:
        if sampler == "exact_mh":
            difference = exact_difference(p.log_prob)
        else:
            model = trained(cfg, ctx, p, s.density, "dae", [s.sigma])

            def learned_score(x: np.ndarray) -> np.ndarray:
                return (reconstruct(model, x)[0] - x) / s.sigma**2

            difference = trapezoid_difference(learned_score)
        start = np.random.default_rng(ctx.data_seed("chains")).uniform(-s.start_half_width, s.start_half_width,
                                                                        (s.chains, p.dim))
        with ctx.stopwatch() as clock:
            states = metropolis(start, s.steps, s.proposal_std, np.random.default_rng(ctx.child_seed("proposals")),
                                difference)
        moved = (np.abs(np.diff(states, axis=0)).sum(-1) > 0).mean()
        kept = states[s.burn_in:].reshape(-1, p.dim)
        rows = [{"kind": "mh", "acceptance": float(moved),
                 "kl": histogram_kl(kept, p.log_prob, s.grid_half_width, s.bins),
                 "sampling_time_s": clock.seconds}]
    ctx.log.info("%s: KL %.4f", sampler, rows[0]["kl"])
    if ctx.unit.replicate == 0:
        chosen = kept[np.random.default_rng(ctx.child_seed("stored")).choice(len(kept), s.stored_samples,
                                                                            replace=False)]
        rows += [{"kind": "sample", "x1": a, "x2": b} for a, b in chosen]
    return rows
