"""A generic torch training loop that tasks may use (not must).

It gives every paper the same guarantees: a NaN/inf guard that names the step, a checkpoint after each
epoch, exact resumption (model, optimiser, scheduler, CPU and CUDA RNG states and the best-so-far state),
model selection on a validation metric, per-epoch metrics in metrics.jsonl, a progress bar, and a
convergence flag recorded on the unit (its rows get ``converged``).
"""

import copy
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

from repro.core.context import RunContext
from repro.core.errors import ConfigError, NonFiniteError, ReproError


@dataclass
class FitResult:
    best_epoch: int
    best_metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)


# Converged: over the last quarter of the epochs the monitored score improved on the best before by less
# than this fraction of it (the validation loss has plateaued).
PLATEAU_FRACTION = 0.25
PLATEAU_TOLERANCE = 0.01


def plateaued(scores: list[float], fraction: float = PLATEAU_FRACTION, tolerance: float = PLATEAU_TOLERANCE) -> bool:
    """Whether a lower-is-better score curve has flattened: fewer than 4 points never counts as converged."""
    n = len(scores)
    if n < 4:
        return False
    tail = max(1, math.ceil(n * fraction))
    before, last = min(scores[: n - tail]), min(scores[n - tail:])
    return bool(before - last <= tolerance * abs(before))


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def fit(
    ctx: RunContext,
    name: str,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Callable[[int], Iterable[Any]],
    loss_fn: Callable[[torch.nn.Module, Any], torch.Tensor],
    epochs: int,
    evaluate: Callable[[torch.nn.Module], dict[str, float]] | None = None,
    select: str | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    grad_clip: float | None = None,
    patience: int | None = None,
) -> FitResult:
    """Train `model` for `epochs` and return the metrics at the epoch of best `select` (lowest).

    ``patience``: stop early once the selected score has not improved for that many epochs (the usual
    early-stopping rule of forecasting codebases); None trains every epoch.

    batches(epoch) yields the epoch's batches; derive any shuffling from the epoch number so that a
    resumed run sees the same order. loss_fn(model, batch) returns a scalar loss. evaluate(model) returns
    metrics (e.g. {"val/mae": ..., "test/mae": ...}); the model is left holding the best state. ``name``
    tells apart several trainings inside one unit (it names the checkpoint).
    """
    unit = f"{ctx.unit.name}{'/' + name if name else ''}"
    path = ctx.checkpoint_path(name)
    start, history, best = 0, [], None
    if path.exists():
        try:
            # weights_only: a checkpoint is tensors and plain containers; a file that asks to run code is refused.
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:
            raise ReproError(f"{path} is not a checkpoint repro can load safely ({type(error).__name__}); "
                             "delete it to restart this unit's training") from error
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        _set_rng_state(state["rng"])
        start, history, best = state["epoch"], state["history"], state["best"]
        ctx.log.info("unit %s: resuming from checkpoint at epoch %d", unit, start)

    # The compiled module shares its parameters with `model`; checkpoints hold `model`'s state.
    forward = torch.compile(model) if ctx.compile else model
    for epoch in ctx.progress(range(start, epochs), desc=unit, total=epochs - start):
        if patience is not None and best is not None and epoch - best["epoch"] > patience:
            break   # also on resumption: the stopping rule is a function of the stored history
        model.train()
        total, count = 0.0, 0
        for step, batch in enumerate(batches(epoch)):
            optimizer.zero_grad()
            with ctx.autocast():
                loss = loss_fn(forward, batch)
            if not torch.isfinite(loss):
                raise NonFiniteError(
                    f"{unit}: loss became {loss.item()} at epoch {epoch}, step {step}; "
                    "lower the learning rate (train.lr=...) or check the inputs of this unit"
                )
            loss.backward()
            if grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            total, count = total + loss.item(), count + 1
        record = {"epoch": epoch, "train/loss": total / max(count, 1)}
        if evaluate is not None:
            model.eval()
            with torch.no_grad():
                record.update(evaluate(model))
        record = {k: v if isinstance(v, int | str) else float(v) for k, v in record.items()}
        history.append(record)
        ctx.log_metrics(epoch, unit=unit, **record)
        score = record.get(select, record["train/loss"]) if select else record["train/loss"]
        if best is None or score < best["score"] or math.isnan(best["score"]):
            best = {"score": score, "epoch": epoch, "metrics": record,
                    "model": copy.deepcopy(model.state_dict())}
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "rng": _rng_state(), "epoch": epoch + 1, "history": history, "best": best}, tmp)
        tmp.replace(path)

    if best is None:
        raise ConfigError(f"{unit}: no epoch ran (epochs={epochs}); set train.epochs >= 1")
    model.load_state_dict(best["model"])
    ctx.record_convergence(plateaued([h.get(select, h["train/loss"]) if select else h["train/loss"]
                                      for h in history]))
    return FitResult(best_epoch=best["epoch"], best_metrics=best["metrics"], history=history)


def fit_steps(
    ctx: RunContext,
    name: str,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batch_at: Callable[[int], Any],
    loss_fn: Callable[[torch.nn.Module, Any], torch.Tensor],
    steps: int,
    every: int,
    evaluate: Callable[[torch.nn.Module], dict[str, float]] | None = None,
    select: str | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    grad_clip: float | None = None,
) -> FitResult:
    """The training loop for papers that count steps: validation, checkpoint and convergence check every
    ``every`` steps (a round), exact resume at the last round. batch_at(step) returns that step's batch
    (derive its randomness from the step number). ``best_epoch`` of the result counts rounds."""
    if every < 1 or steps < every:
        raise ConfigError(f"{name or ctx.unit.name}: steps={steps} and every={every} need 1 <= every <= steps")
    rounds = steps // every

    def batches(round_index: int) -> Iterable[Any]:
        return (batch_at(round_index * every + k) for k in range(every))

    return fit(ctx, name, model, optimizer, batches, loss_fn, rounds, evaluate, select, scheduler, grad_clip)
