"""FlowState's training recipe (parallel predictions from every context length, contiguous patch masking,
pinball loss), shared by the cpu experiment and the GIFT-Eval run."""

from collections.abc import Callable

import numpy as np
import torch
from omegaconf import DictConfig

from repro.core.context import RunContext
from repro.core.errors import ConfigError
from repro.core.train import FitResult, fit
from repro.papers.flowstate.models import FlowState, causal_stats, patch_steps, with_missing

Batches = Callable[[np.random.Generator, int], tuple[np.ndarray, float]]


def build_flowstate(cfg: DictConfig, seed: int, basis: str = "legs", degree: int | None = None) -> FlowState:
    """FlowState with the config's sizes; ``seed`` sets its initialisation (pass ``ctx.child_seed("init")``)."""
    m = cfg.model
    return FlowState(m.width, m.states, m.block, m.layers, degree or m.degree, len(cfg.quantiles), m.patch, seed,
                     basis)


def contiguous_patch_mask(window: np.ndarray, context: int, span: int, probability: float,
                          rng: np.random.Generator) -> np.ndarray:
    """Contiguous patch masking (CPM) of training inputs: a copy of `window` (B, T) where, with the given
    probability, one span of U{1..span} steps at a uniform start inside the first `context` steps is set to
    NaN (missing). The released code has no training loop, so this law of spans is ours; the masked steps
    remain the targets of the positions before them."""
    out = np.array(window, dtype=float)
    for row, hit in enumerate(rng.random(len(out)) < probability):
        if hit:
            length = int(rng.integers(1, span + 1))
            start = int(rng.integers(0, context - length + 1))
            out[row, start:start + length] = np.nan
    return out


def parallel_pinball(model: FlowState, window: torch.Tensor, s: float, min_context: float,
                     levels: torch.Tensor, parallel: bool = True, inputs: torch.Tensor | None = None
                     ) -> torch.Tensor:
    """The paper's training loss on windows (B, context + floor(patch / s)) at scale s: every position t of
    the context from floor(min_context / s) - 1 on forecasts the next patch, in the units of its own causal
    RevIN statistics; the mean pinball loss over positions, steps and quantile levels, missing (NaN) targets
    left out. `inputs`: the window the model reads (CPM-masked; `window` itself when None). parallel=False
    (the ablation) keeps only the last position."""
    context = window.shape[1] - patch_steps(model.patch, s)
    steps = min(model.max_steps(s), window.shape[1] - context)
    first = max(1, int(min_context / s)) - 1 if parallel else context - 1
    values = (window if inputs is None else inputs)[:, :context]
    z = model.normalised_forecasts(values, torch.tensor([s], device=window.device), steps, first=first)
    mean, std = causal_stats(*with_missing(values))
    targets = window[:, :context + steps].unfold(1, steps, 1)[:, first + 1:]          # (B, L', steps)
    observed = ~targets.isnan()
    targets = torch.where(observed, targets, torch.zeros_like(targets))
    diff = ((targets - mean[:, first:, None]) / std[:, first:, None])[..., None] - z  # (B, L', steps, Q)
    loss = diff * (levels - (diff < 0).to(diff.dtype))
    return (loss * observed[..., None]).sum() / (observed.sum() * len(levels)).clamp(min=1)


def fit_flowstate(ctx: RunContext, model: FlowState, batches: Batches, validation: tuple[np.ndarray, float],
                  cfg: DictConfig, parallel: bool = True) -> FitResult:
    """Adam on parallel-prediction pinball losses through the framework's ``fit``: an "epoch" is
    ``train.eval_every`` steps on batches(rng, size) -> (windows, s), their inputs masked by CPM
    (``train.cpm_probability``, spans up to one patch), then the pinball loss on the fixed, unmasked
    validation windows (model selection and the convergence flag). Batches of epoch e come from
    ``ctx.child_seed("batches", e)``, so a resumed run sees the same ones."""
    t = cfg.train
    if t.steps % t.eval_every:
        raise ConfigError(f"paper.train.steps={t.steps} must be a multiple of paper.train.eval_every={t.eval_every}")
    device = next(model.parameters()).device
    levels = torch.tensor(list(cfg.quantiles), device=device)
    optimizer = torch.optim.Adam(model.parameters(), lr=t.lr)
    val_window = torch.as_tensor(validation[0], dtype=torch.float32, device=device)

    def tensor(x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(x, dtype=torch.float32, device=device)

    def epoch_batches(epoch: int):
        rng = np.random.default_rng(ctx.child_seed("batches", epoch))
        for _ in range(t.eval_every):
            window, s = batches(rng, t.batch)
            span = model.max_steps(s)
            masked = contiguous_patch_mask(window, window.shape[1] - span, span, t.cpm_probability, rng)
            yield tensor(window), tensor(masked), s

    def loss_fn(model: FlowState, batch) -> torch.Tensor:
        window, masked, s = batch
        return parallel_pinball(model, window, s, t.min_context, levels, parallel, masked)

    def evaluate(model: FlowState) -> dict[str, float]:     # always the full parallel loss, comparable across ablations
        return {"val/pinball": parallel_pinball(model, val_window, validation[1], t.min_context, levels).item()}

    return fit(ctx, "", model, optimizer, epoch_batches, loss_fn, t.steps // t.eval_every, evaluate,
               select="val/pinball")
