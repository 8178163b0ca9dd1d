"""MIP hypernetworks: the proportionality at initialisation, then every parametrisation trained on the same
batches, an activation/normalisation ablation, and the per-step cost.

Grid:
- ``init/<variant>``: ||theta(gamma)|| and the hypernetwork's gradient norm per evaluation gamma, at init.
- ``train/<variant>/optimizer=..,lr=..``: one hypernetwork trained for ``train.steps``; a row per evaluation
  round (record=curve), the half-way point (record=half) and a summary row (record=final).
- ``ablation/<variant>/activation=..,normaliser=..``: the same training (Adam) with other hidden activations
  and with BatchNorm/LayerNorm in the default hypernetwork, for half the main budget.
- ``cost``: seconds per training step of the default and the MIP hypernetwork, measured side by side.
Every variant of a replicate sees the same batches and the same initial hypernetwork weights.
"""

import numpy as np
import torch
from omegaconf import DictConfig

from repro.core.context import RunContext
from repro.core.errors import ConfigError, NonFiniteError
from repro.core.train import fit_steps
from repro.core.units import Unit, grid, unit
from repro.papers.mip_hypernet.data import evaluation_set, grid_points, training_batch
from repro.papers.mip_hypernet.models import VARIANTS, HyperModel

METHODS = VARIANTS


def units(cfg: DictConfig) -> list[Unit]:
    train = [u for optimizer, lrs in cfg.train.lrs.items()
             for u in grid("train", cfg.methods, optimizer=[optimizer], lr=list(lrs))]
    a = cfg.ablation
    ablation = [*grid("ablation", a.methods, activation=a.activations, normaliser=["none"]),
                *grid("ablation", ["default"], activation=["leakyrelu"], normaliser=a.normalisers)]
    return [*grid("init", ["default", "mip"]), *train, *ablation, unit("cost")]


def run_unit(cfg: DictConfig, ctx: RunContext, u: Unit) -> list[dict]:
    if u.experiment == "init":
        return init_rows(cfg, ctx, u.method)
    if u.experiment == "cost":
        return cost_rows(cfg, ctx)
    s = u.settings
    if u.experiment == "train":
        return train_rows(cfg, ctx, u.method, s["optimizer"], float(s["lr"]), cfg.train.steps)
    a = cfg.ablation
    # Half the main budget: the ablation is compared with the main runs' half-way point (record=half).
    return train_rows(cfg, ctx, u.method, a.optimizer, float(a.lr), cfg.train.steps // 2, s["activation"],
                      s["normaliser"])


def build(cfg: DictConfig, ctx: RunContext, variant: str, activation: str = "leakyrelu",
          normaliser: str = "none") -> HyperModel:
    """The hypernetwork of one variant; the initial draw is shared by the variants of a replicate (paired)."""
    m = cfg.model
    with torch.random.fork_rng():
        torch.manual_seed(ctx.data_seed("init"))
        model = HyperModel(variant, m.width, m.gamma_dim, list(m.hidden), activation, normaliser)
    return model.to(ctx.device)


def make_optimizer(model: torch.nn.Module, name: str, lr: float, cfg: DictConfig) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr)
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=cfg.train.momentum)
    raise ValueError(f"unknown optimizer {name!r}; choose adam or sgd")


def squared_errors(model: HyperModel, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Mean squared error of each gamma's primary network over its points, shape (batch,)."""
    gamma, x, y = batch
    return ((model(gamma, x) - y) ** 2).mean(dim=1)


def init_rows(cfg: DictConfig, ctx: RunContext, variant: str) -> list[dict]:
    """||theta(gamma)|| and ||d loss(gamma) / d w|| at initialisation for each evaluation gamma."""
    model = build(cfg, ctx, variant)
    gamma, x, y = evaluation_set(grid_points(cfg.data.points, ctx.device), list(cfg.data.eval_gammas))
    rows = []
    for k, value in enumerate(cfg.data.eval_gammas):
        one = (gamma[k:k + 1], x[k:k + 1], y[k:k + 1])
        model.zero_grad()
        squared_errors(model, one).sum().backward()
        gradient = torch.sqrt(sum((p.grad ** 2).sum() for p in model.hyper.parameters()))
        with torch.no_grad():
            theta_norm = model.hyper(one[0]).norm()
        rows.append({"gamma": float(value), "theta_norm": float(theta_norm), "grad_norm": float(gradient)})
    return rows


def upswing(curve: list[float]) -> float:
    """Total upward movement of log10(loss) along the evaluation curve, in decades (0 for a monotone descent):
    the instability the paper attributes to the default parametrisation."""
    logs = np.log10(np.asarray(curve))
    return float(np.clip(np.diff(logs), 0, None).sum())


def train_rows(cfg: DictConfig, ctx: RunContext, variant: str, optimizer_name: str, lr: float, steps: int,
               activation: str = "leakyrelu", normaliser: str = "none") -> list[dict]:
    d = cfg.data
    points = grid_points(d.points, ctx.device)
    evaluation = evaluation_set(points, list(d.eval_gammas))
    low = evaluation[0].squeeze(1) <= d.low_gamma
    high = evaluation[0].squeeze(1) >= d.high_gamma
    model = build(cfg, ctx, variant, activation, normaliser)
    optimizer = make_optimizer(model, optimizer_name, lr, cfg)

    def batch_at(step: int) -> tuple[torch.Tensor, ...]:
        return training_batch(points, d.gammas_per_step, d.points_per_gamma, ctx.data_seed("batch", step))

    def loss_fn(model: HyperModel, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return squared_errors(model, batch).mean()

    def evaluate(model: HyperModel) -> dict[str, float]:
        errors = squared_errors(model, evaluation)
        return {"eval/mse": float(errors.mean()), "eval/mse_low": float(errors[low].mean()),
                "eval/mse_high": float(errors[high].mean())}

    every = cfg.train.every
    if cfg.train.steps % (2 * every):
        raise ConfigError(f"train.steps={cfg.train.steps} must be a multiple of 2 x train.every={every} (the "
                          "half-way point and the ablation's length are evaluation rounds)")
    try:
        result = fit_steps(ctx, "", model, optimizer, batch_at, loss_fn, steps, every, evaluate)
    except NonFiniteError as error:
        # A diverged training is an outcome of the comparison (the paper: the default can "prevent any
        # learning"), not a crash of the run: it is recorded and counts as unconverged.
        ctx.log.warning("%s", error)
        ctx.record_convergence(False)
        return [{"record": "final", "step": steps, "diverged": 1, "eval/mse": float("nan")}]
    curve = [{"record": "curve", "step": (k + 1) * every, "eval/mse": h["eval/mse"],
              "train/loss": h["train/loss"]} for k, h in enumerate(result.history)]
    rounds = len(result.history)
    half = {"record": "half", "step": (rounds // 2) * every, "eval/mse": result.history[rounds // 2 - 1]["eval/mse"]}
    last = result.history[-1]
    final = {"record": "final", "step": steps, "diverged": 0, "eval/mse": last["eval/mse"],
             "eval/mse_low": last["eval/mse_low"], "eval/mse_high": last["eval/mse_high"],
             "eval/upswing": upswing([h["eval/mse"] for h in result.history]),
             "eval/best_mse": min(h["eval/mse"] for h in result.history)}
    ctx.log.info("%s %s lr=%g %s/%s: final eval mse %.4g", variant, optimizer_name, lr, activation, normaliser,
                 final["eval/mse"])
    return [*curve, half, final]


def cost_rows(cfg: DictConfig, ctx: RunContext) -> list[dict]:
    """Seconds per Adam step of the default and the MIP hypernetwork, measured in this process on the same
    batches, the two steps interleaved (after a warm-up) so that a change of machine load hits both alike."""
    c, d = cfg.cost, cfg.data
    points = grid_points(d.points, ctx.device)
    batches = [training_batch(points, d.gammas_per_step, d.points_per_gamma, ctx.data_seed("cost", k))
               for k in range(c.steps)]
    models = {variant: build(cfg, ctx, variant) for variant in ("default", "mip")}
    optimizers = {v: torch.optim.Adam(m.parameters(), lr=cfg.train.lrs.adam[0]) for v, m in models.items()}
    seconds = dict.fromkeys(models, 0.0)
    for k, batch in enumerate(batches):
        for variant, model in models.items():
            with ctx.stopwatch() as clock:
                adam_step(model, optimizers[variant], batch)
            if k >= c.warmup:
                seconds[variant] += clock.seconds
    return [{"method": v, "time_per_step_s": seconds[v] / (c.steps - c.warmup)} for v in models]


def adam_step(model: HyperModel, optimizer: torch.optim.Optimizer, batch: tuple[torch.Tensor, ...]) -> None:
    optimizer.zero_grad()
    squared_errors(model, batch).mean().backward()
    optimizer.step()
