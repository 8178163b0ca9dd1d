"""The experiment: train DAEs (and RCAEs in 1-D) at several corruption levels sigma, compare (r(x) - x) / sigma^2
with the exact score grad log p and r with the exact optimum of each criterion, and sample 2-D densities (the ring
of Gaussians, the authors' spiral and "ninja star") with Metropolis-Hastings chains driven by a trained DAE.

Units: ``score/<optimum|rcae_optimum|dae|rcae>/density=<mixture1d|ring2d>,sigma=<s>`` (one network per unit, so
each training has its own convergence flag) and ``sampling/<exact_mh|grad_mh|dae_mh|iid>/density=<name>``, each
once per replicate. Row kinds (column `kind`):
  score          per (density, method, sigma): relative squared score error
                 score_err = E_p ||(r(x) - x)/sigma^2 - grad log p||^2 / E_p ||grad log p||^2 (5 000 points from p),
                 the relative distances of r(x) - x to the exact DAE optimum's (Tweedie) and, in 1-D, to the exact
                 RCAE optimum's (boundary-value problem), and reconstruction errors ||r(x) - x||^2 at the antimode
                 and modes; methods `optimum` and `rcae_optimum` are those exact optima themselves
  curve          (r(x) - x)/sigma^2 on a 1-D grid, first replicate only (figure)
  mh             per sampler (and energy-difference rule, column `difference`): KL(histogram || p) on a grid,
                 acceptance rate
  sampler_score  the score error of the DAE that drives the chains
  field          r(x) - x of that DAE and of the exact optimum on a 2-D grid, first replicate only (figure)
  sample         a few chain states per sampler, first replicate only (figure)
"""

import numpy as np
from omegaconf import DictConfig

from repro.core.context import RunContext
from repro.core.errors import ConfigError
from repro.core.train import plateaued
from repro.core.units import Unit, grid
from repro.papers.rae_score.densities import GaussianMixture, NinjaStar, make_density, rcae_optimum
from repro.papers.rae_score.models import BatchedMLP, reconstruct, train_autoencoders
from repro.papers.rae_score.sampling import (
    EnergyDifference,
    exact_difference,
    first_order_difference,
    histogram_kl,
    metropolis,
    trapezoid_difference,
)

CRITERIA = ("dae", "rcae")
SAMPLERS = ("exact_mh", "grad_mh", "dae_mh", "iid")
METHODS = ("optimum", "rcae_optimum", *CRITERIA, *SAMPLERS)


def units(cfg: DictConfig) -> list[Unit]:
    """score/<optimum|rcae_optimum|dae|rcae>/density=<name>,sigma=<s> (one network per unit, so that each sigma's
    training has its own convergence flag), sampling/<sampler>/density=<name>; every unit once per replicate."""
    found = []
    for density, criteria in cfg.criteria.items():
        if set(criteria) - set(CRITERIA):
            raise ConfigError(f"paper.criteria.{density} = {list(criteria)}; criteria are dae and rcae")
        if not isinstance(make_density(density), GaussianMixture):
            raise ConfigError(f"paper.criteria.{density}: the score sweep needs a Gaussian mixture (exact optimum)")
        optima = ["optimum", *(["rcae_optimum"] if "rcae" in criteria else [])]
        found += grid("score", [*optima, *criteria], density=[density], sigma=list(cfg.sigmas))
    for density in cfg.sampling.densities:
        make_density(density)
    return found + grid("sampling", SAMPLERS, density=list(cfg.sampling.densities))


def run_unit(cfg: DictConfig, ctx: RunContext, u: Unit) -> list[dict]:
    if u.experiment == "score":
        return score_rows(cfg, ctx, u.settings["density"], u.method, float(u.settings["sigma"]))
    return sampling_rows(cfg, ctx, u.settings["density"], u.method)


def relative_score_error(estimate: np.ndarray, truth: np.ndarray) -> float:
    """E ||estimate - truth||^2 / E ||truth||^2 over the rows (points) of (n, d) arrays."""
    return float(((estimate - truth) ** 2).sum(-1).mean() / (truth**2).sum(-1).mean())


def train_data(cfg: DictConfig, ctx: RunContext, p: GaussianMixture | NinjaStar,
               name: str) -> tuple[np.ndarray, np.ndarray]:
    """Training and held-out validation points of p, the same for every criterion of this replicate."""
    t = cfg.train
    return (p.sample(t.points, np.random.default_rng(ctx.data_seed("train", name))),
            p.sample(t.val_points, np.random.default_rng(ctx.data_seed("val", name))))


def trained(cfg: DictConfig, ctx: RunContext, p: GaussianMixture | NinjaStar, name: str, criterion: str,
            sigma: float) -> BatchedMLP:
    """A network trained with the criterion at corruption level sigma; records whether its validation loss
    plateaued."""
    t = cfg.train
    train_x, val_x = train_data(cfg, ctx, p, name)
    result = train_autoencoders(criterion, train_x, val_x, [sigma], t.hidden, t.steps, t.batch_size, t.lr,
                                ctx.child_seed("init"), ctx.device)
    flag = plateaued(list(result.val_losses[:, 0]))
    ctx.log.info("%s on %s at sigma %g: validation loss %.5g, plateaued %s", criterion, name, sigma,
                 result.val_losses[-1, 0], flag)
    ctx.record_convergence(flag)
    return result.model


def score_rows(cfg: DictConfig, ctx: RunContext, density: str, method: str, sigma: float) -> list[dict]:
    p = make_density(density)
    test_x = p.sample(cfg.eval.test_points, np.random.default_rng(ctx.data_seed("test", density)))
    if p.dim == 1:  # the RCAE optimum is solved on [-w, w] only: every method is scored there (p mass outside 3e-5)
        test_x = test_x[np.abs(test_x[:, 0]) < cfg.eval.rcae_half_width]
    special = {"antimode": np.zeros((1, p.dim)), "modes": p.means}
    curve = np.linspace(*cfg.eval.curve_range, cfg.eval.curve_points)[:, None]
    stacked = np.concatenate([test_x, special["antimode"], special["modes"], *([curve] if p.dim == 1 else [])])
    rcae_best = rcae_optimum(p, sigma, cfg.eval.rcae_half_width) if p.dim == 1 else None
    if method == "optimum":
        r = p.dae_optimum(stacked, sigma)
    elif method == "rcae_optimum":
        r = rcae_best(stacked[:, 0])[:, None]
    else:
        r = reconstruct(trained(cfg, ctx, p, density, method, sigma), stacked)[0]
    n, k = len(test_x), len(p.means)
    recon_sq = ((r - stacked) ** 2).sum(-1)
    row = {
        "kind": "score",
        "score_err": relative_score_error((r[:n] - test_x) / sigma**2, p.score(test_x)),
        "dist_to_optimum": relative_score_error(r[:n] - test_x, p.dae_optimum(test_x, sigma) - test_x),
        "recon_mean": float(recon_sq[:n].mean()),
        "recon_antimode": float(recon_sq[n]),
        "recon_modes": float(recon_sq[n + 1:n + 1 + k].mean()),
        "recon_antimode_ratio": float(recon_sq[n] / recon_sq[:n].mean()),
        "log_density_gap": float(p.log_prob(p.means).mean() - p.log_prob(special["antimode"])[0]),
    }
    if rcae_best is not None:
        row["dist_to_rcae_optimum"] = relative_score_error(r[:n] - test_x, rcae_best(test_x[:, 0])[:, None] - test_x)
    rows = [row]
    if p.dim == 1 and ctx.unit.replicate == 0:
        offset = n + 1 + k
        rows += [{"kind": "curve", "x": float(x), "score_estimate": float((r[offset + i, 0] - x) / sigma**2),
                  "score_true": float(p.score(np.array([[x]]))[0, 0])}
                 for i, x in enumerate(curve[:, 0])]
    return rows


def chain_rows(cfg: DictConfig, ctx: RunContext, p: GaussianMixture | NinjaStar, setting: DictConfig,
               difference_name: str, difference: EnergyDifference) -> tuple[dict, np.ndarray]:
    """Random-walk MH chains with the given energy difference, started from points shared by the replicate;
    the KL of their states after burn-in to p on the grid, and those states."""
    s = cfg.sampling
    starts = np.random.default_rng(ctx.data_seed("chains", ctx.unit.settings["density"]))
    start = starts.uniform(-setting.half_width, setting.half_width, (s.chains, p.dim))
    states = metropolis(start, s.steps, setting.proposal_std,
                        np.random.default_rng(ctx.child_seed("proposals", difference_name)), difference)
    kept = states[s.burn_in:].reshape(-1, p.dim)
    row = {"kind": "mh", "difference": difference_name,
           "acceptance": float((np.abs(np.diff(states, axis=0)).sum(-1) > 0).mean()),
           "kl": histogram_kl(kept, p.log_prob, setting.half_width, s.bins)}
    ctx.log.info("%s (%s): KL %.4f, acceptance %.3f", ctx.unit.method, difference_name, row["kl"], row["acceptance"])
    return row, kept


def stored(cfg: DictConfig, ctx: RunContext, kept: np.ndarray, difference_name: str) -> list[dict]:
    """A few states for the figure (first replicate only)."""
    if ctx.unit.replicate != 0:
        return []
    chosen = np.random.default_rng(ctx.child_seed("stored", difference_name)).choice(
        len(kept), cfg.sampling.stored_samples, replace=False)
    return [{"kind": "sample", "difference": difference_name, "x1": a, "x2": b} for a, b in kept[chosen]]


def sampling_rows(cfg: DictConfig, ctx: RunContext, density: str, sampler: str) -> list[dict]:
    """One sampler on one 2-D density: i.i.d. samples of p (the KL floor of the sample size); MH with exact energy
    differences; MH with the authors' first-order difference from the exact gradient (`grad_mh`); MH driven by a
    DAE trained at the density's sigma, with the first-order and the trapezoid difference of its score estimate."""
    s, setting = cfg.sampling, cfg.sampling.densities[density]
    p = make_density(density)
    if sampler == "iid":
        kept = p.sample((s.steps - s.burn_in) * s.chains, np.random.default_rng(ctx.child_seed("iid")))
        return [{"kind": "mh", "difference": "none", "kl": histogram_kl(kept, p.log_prob, setting.half_width,
                                                                         s.bins)}, *stored(cfg, ctx, kept, "none")]
    if sampler == "exact_mh":
        row, kept = chain_rows(cfg, ctx, p, setting, "exact", exact_difference(p.log_prob))
        return [row, *stored(cfg, ctx, kept, "exact")]
    if sampler == "grad_mh":
        row, kept = chain_rows(cfg, ctx, p, setting, "first_order", first_order_difference(p.score))
        return [row, *stored(cfg, ctx, kept, "first_order")]
    sigma = float(setting.sigma)
    model = trained(cfg, ctx, p, density, "dae", sigma)

    def learned_score(x: np.ndarray) -> np.ndarray:  # grad log p ~ (r(x) - x) / sigma^2, the paper's main result
        return (reconstruct(model, x)[0] - x) / sigma**2

    test_x = p.sample(cfg.eval.test_points, np.random.default_rng(ctx.data_seed("test", density)))
    rows = [{"kind": "sampler_score", "sigma": sigma,
             "score_err": relative_score_error(learned_score(test_x), p.score(test_x))}]
    for name, rule in (("first_order", first_order_difference), ("trapezoid", trapezoid_difference)):
        row, kept = chain_rows(cfg, ctx, p, setting, name, rule(learned_score))
        rows += [row, *stored(cfg, ctx, kept, name)]
    if ctx.unit.replicate == 0:
        axis = np.linspace(-setting.half_width, setting.half_width, s.field_points)
        points = np.stack(np.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)
        learned = reconstruct(model, points)[0] - points
        target = (p.dae_optimum(points, sigma) - points if isinstance(p, GaussianMixture)
                 else sigma**2 * p.score(points))
        rows += [{"kind": "field", "x1": a, "x2": b, "learned1": u, "learned2": v, "target1": e, "target2": f}
                 for (a, b), (u, v), (e, f) in zip(points, learned, target)]
    return rows
