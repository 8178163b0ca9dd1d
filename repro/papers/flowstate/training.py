"""FlowState's training recipe (parallel predictions from every context length, pinball loss) and its
multi-patch forecast, shared by the cpu experiment and the GIFT-Eval run."""

from collections.abc import Callable

import numpy as np
import torch
from omegaconf import DictConfig

from repro.core.context import RunContext
from repro.core.errors import ConfigError
from repro.core.train import FitResult, fit
from repro.papers.flowstate.models import FlowState, causal_stats, patch_steps

Batches = Callable[[np.random.Generator, int], tuple[np.ndarray, float]]


def build_flowstate(cfg: DictConfig, seed: int, basis: str = "legs", degree: int | None = None) -> FlowState:
    """FlowState with the config's sizes; ``seed`` sets its initialisation (pass ``ctx.child_seed("init")``)."""
    m = cfg.model
    return FlowState(m.width, m.states, m.block, m.layers, degree or m.degree, len(cfg.quantiles), m.patch, seed,
                     basis)


def parallel_pinball(model: FlowState, window: torch.Tensor, s: float, min_context: float,
                     levels: torch.Tensor, parallel: bool = True) -> torch.Tensor:
    """The paper's training loss on windows (B, context + floor(patch / s)) at scale s: every position t of
    the context from floor(min_context / s) - 1 on forecasts the next patch, in the units of its own causal
    RevIN statistics; the mean pinball loss over positions, steps and quantile levels. parallel=False (the
    ablation) keeps only the last position."""
    context = window.shape[1] - patch_steps(model.patch, s)
    steps = min(model.max_steps(s), window.shape[1] - context)
    first = max(1, int(min_context / s)) - 1 if parallel else context - 1
    values = window[:, :context]
    z = model.normalised_forecasts(values, torch.tensor([s], device=window.device), steps, first=first)
    mean, std = causal_stats(values)
    targets = window[:, :context + steps].unfold(1, steps, 1)[:, first + 1:]          # (B, L', steps)
    diff = ((targets - mean[:, first:, None]) / std[:, first:, None])[..., None] - z  # (B, L', steps, Q)
    return (diff * (levels - (diff < 0).to(diff.dtype))).mean()


def fit_flowstate(ctx: RunContext, model: FlowState, batches: Batches, validation: tuple[np.ndarray, float],
                  cfg: DictConfig, parallel: bool = True) -> FitResult:
    """Adam on parallel-prediction pinball losses through the framework's ``fit``: an "epoch" is
    ``train.eval_every`` steps on batches(rng, size) -> (windows, s), then the pinball loss on the fixed
    validation windows (model selection and the convergence flag). Batches of epoch e come from
    ``ctx.child_seed("batches", e)``, so a resumed run sees the same ones."""
    t = cfg.train
    if t.steps % t.eval_every:
        raise ConfigError(f"paper.train.steps={t.steps} must be a multiple of paper.train.eval_every={t.eval_every}")
    device = next(model.parameters()).device
    levels = torch.tensor(list(cfg.quantiles), device=device)
    optimizer = torch.optim.Adam(model.parameters(), lr=t.lr)
    val_window = torch.as_tensor(validation[0], dtype=torch.float32, device=device)

    def epoch_batches(epoch: int):
        rng = np.random.default_rng(ctx.child_seed("batches", epoch))
        for _ in range(t.eval_every):
            window, s = batches(rng, t.batch)
            yield torch.as_tensor(window, dtype=torch.float32, device=device), s

    def loss_fn(model: FlowState, batch) -> torch.Tensor:
        window, s = batch
        return parallel_pinball(model, window, s, t.min_context, levels, parallel)

    def evaluate(model: FlowState) -> dict[str, float]:     # always the full parallel loss, comparable across ablations
        return {"val/pinball": parallel_pinball(model, val_window, validation[1], t.min_context, levels).item()}

    return fit(ctx, "", model, optimizer, epoch_batches, loss_fn, t.steps // t.eval_every, evaluate,
               select="val/pinball")


def forecast_rollout(model: FlowState, context: torch.Tensor, s: float, horizon: int) -> torch.Tensor:
    """Quantile forecasts (B, horizon, Q): one decoder patch at a time, the median of each patch appended
    to the context before the next (the official code instead feeds masked steps, which needs a
    missing-value channel)."""
    median = model.quantiles // 2
    out, x, done = [], context, 0
    while done < horizon:
        steps = min(model.max_steps(s), horizon - done)
        q = model.forecast(x, s, steps)
        out.append(q)
        x = torch.cat([x, q[..., median]], 1)[:, -context.shape[1]:]
        done += steps
    return torch.cat(out, 1)
