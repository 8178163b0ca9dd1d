"""FlowState's training recipe (parallel predictions from every context length, pinball loss) and its
multi-patch forecast, shared by the cpu experiment and the GIFT-Eval run."""

from collections.abc import Callable

import numpy as np
import torch
from omegaconf import DictConfig

from repro.core.context import RunContext
from repro.papers.flowstate.models import FlowState, causal_stats, patch_steps

Batches = Callable[[np.random.Generator, int], tuple[np.ndarray, float]]


def build_flowstate(cfg: DictConfig, seed: int, basis: str = "legs", degree: int | None = None) -> FlowState:
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


def optimize(model: torch.nn.Module, optimizer: torch.optim.Optimizer, loss: torch.Tensor, step: int, unit: str,
             ctx: RunContext) -> None:
    if not torch.isfinite(loss):
        raise FloatingPointError(f"{unit}: loss {loss.item()} at step {step}; lower train.lr")
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 100 == 0:
        ctx.log_metrics(step, unit=unit, loss=loss.item())


def fit_flowstate(model: FlowState, batches: Batches, cfg: DictConfig, seed: int, ctx: RunContext,
                  parallel: bool = True) -> None:
    """Adam on parallel-prediction pinball losses; batches(rng, size) -> (windows, s)."""
    t = cfg.train
    rng = np.random.default_rng(seed)
    device = next(model.parameters()).device
    levels = torch.tensor(list(cfg.quantiles), device=device)
    optimizer = torch.optim.Adam(model.parameters(), lr=t.lr)
    for step in ctx.progress(range(t.steps), desc=f"FlowState seed {seed}"):
        window, s = batches(rng, t.batch)
        window = torch.as_tensor(window, dtype=torch.float32, device=device)
        loss = parallel_pinball(model, window, s, t.min_context, levels, parallel)
        optimize(model, optimizer, loss, step, f"FlowState-{model.basis}-{seed}", ctx)


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
