"""The AF-KAN experiment: every network trained at the same layer widths, AF-KAN's ablations, and a
side-by-side timing of one training step.

Grid: ``main/<method>`` per data set (AF-KAN, MLP, ReLU-KAN, the B-spline KAN, FastKAN and three ablations
of AF-KAN), ``activation``, ``function`` and ``grid_order`` (AF-KAN with one setting changed), and
``speed`` (one unit timing every network on the same batches, alternating between them).
"""

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from sklearn.metrics import f1_score

from repro.core.context import RunContext
from repro.core.errors import ConfigError
from repro.core.train import fit
from repro.core.units import Unit, grid, unit
from repro.papers.afkan.data import digits_splits, load_idx_dataset
from repro.papers.afkan.models import METHODS, build_model, flops_per_sample, used_parameters

DATASETS = ("digits", "mnist", "fashion_mnist")
__all__ = ["METHODS", "units", "run_unit"]


def units(cfg: DictConfig) -> list[Unit]:
    unknown = set(cfg.data.datasets) - set(DATASETS)
    if unknown:
        raise ConfigError(f"paper.data.datasets holds {sorted(unknown)}; choose from {DATASETS}")
    ablations = cfg.ablations
    return [*grid("main", cfg.methods, dataset=list(cfg.data.datasets)),
            *grid("activation", ["af_kan"], dataset=[cfg.data.datasets[0]], activation=list(ablations.activations)),
            *grid("function", ["af_kan"], dataset=[cfg.data.datasets[0]], function=list(ablations.functions)),
            *grid("grid_order", ["af_kan"], dataset=[cfg.data.datasets[0]], grid=list(ablations.grids),
                  order=list(ablations.orders)),
            unit("speed", dataset=cfg.data.datasets[0])]


def run_unit(cfg: DictConfig, ctx: RunContext, u: Unit) -> list[dict]:
    dataset = u.settings["dataset"]
    splits = ctx.shared(f"splits-{dataset}", lambda: load_splits(cfg, ctx, dataset))
    if u.experiment == "speed":
        return time_steps(cfg, ctx, splits)
    overrides = {k: v for k, v in u.settings.items() if k in ("activation", "function", "grid", "order")}
    return [train_one(cfg, ctx, splits, u.method, overrides)]


def load_splits(cfg: DictConfig, ctx: RunContext, dataset: str) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    if dataset == "digits":
        arrays = digits_splits(tuple(cfg.data.fractions), ctx.data_seed("split"))
    else:
        arrays = load_idx_dataset(ctx.data_dir, dataset, cfg.data.validation, ctx.data_seed("split"))
    return {name: (torch.tensor(x, dtype=torch.float32, device=ctx.device),
                   torch.tensor(y, dtype=torch.long, device=ctx.device)) for name, (x, y) in arrays.items()}


def model_width(cfg: DictConfig) -> list[int]:
    return [cfg.model.inputs, *cfg.model.hidden, 10]


def predict(model: torch.nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Logits in fixed consecutive batches: L2MM normalises over the batch, so the batch size is part of the
    evaluation protocol (the official script evaluates in batches of the training batch size, in order)."""
    return torch.cat([model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])


def scores(model: torch.nn.Module, split: tuple[torch.Tensor, torch.Tensor], batch_size: int) -> dict[str, float]:
    x, y = split
    logits = predict(model, x, batch_size)
    guess = logits.argmax(1)
    return {"loss": float(F.cross_entropy(logits, y)), "acc": float((guess == y).float().mean()),
            "f1": float(f1_score(y.cpu().numpy(), guess.cpu().numpy(), average="macro"))}


def exponential_decay(optimizer: torch.optim.Optimizer, gamma: float, steps_per_epoch: int
                      ) -> torch.optim.lr_scheduler.LambdaLR:
    """ExponentialLR(gamma) stepped once per epoch, written per step because fit steps the scheduler per batch."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: gamma ** (step // steps_per_epoch))


def train_one(cfg: DictConfig, ctx: RunContext, splits: dict, method: str, overrides: dict) -> dict:
    t = cfg.train
    torch.manual_seed(ctx.child_seed("init"))
    model = build_model(method, model_width(cfg), OmegaConf.to_container(cfg.model), overrides).to(ctx.device)
    x_train, y_train = splits["train"]
    params = used_parameters(model, x_train[:t.batch_size], y_train[:t.batch_size])
    optimizer = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    steps_per_epoch = -(-len(x_train) // t.batch_size)
    scheduler = exponential_decay(optimizer, t.gamma, steps_per_epoch)

    def batches(epoch: int):
        order = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(ctx.child_seed("batches", epoch)))
        order = order.to(ctx.device)
        return ((x_train[order[i:i + t.batch_size]], y_train[order[i:i + t.batch_size]])
                for i in range(0, len(order), t.batch_size))

    def loss_fn(model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return F.cross_entropy(model(batch[0]), batch[1])

    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        val = scores(model, splits["val"], t.eval_batch_size)
        return {"val/loss": val["loss"], "val/acc": val["acc"]}

    with ctx.stopwatch() as clock:
        result = fit(ctx, "", model, optimizer, batches, loss_fn, t.epochs, evaluate, select="val/loss",
                     scheduler=scheduler)
    model.eval()
    with torch.no_grad():
        test = scores(model, splits["test"], t.eval_batch_size)
    row = {"method": method, "params": params, "flops": flops_per_sample(model),
           "train_time_per_epoch_s": clock.seconds / t.epochs, "best_epoch": result.best_epoch,
           "val/acc": result.best_metrics["val/acc"], "test/acc": test["acc"], "test/f1": test["f1"]}
    if method.startswith("af_kan"):
        # Nothing keeps a_j < b_j during training: record the narrowest learned interval.
        row["min_interval_width"] = min(float((layer.high - layer.low).min()) for layer in model.layers)
    ctx.log.info("%s %s: %s", method, overrides, {k: round(v, 4) for k, v in row.items() if k != "method"})
    return row


def time_steps(cfg: DictConfig, ctx: RunContext, splits: dict) -> list[dict]:
    """Seconds per training step (forward, backward, AdamW) of each network on the same batches, measured in
    alternation so that every network sees the same machine load."""
    s, t = cfg.speed, cfg.train
    x_train, y_train = splits["train"]
    generator = torch.Generator().manual_seed(ctx.child_seed("speed-batches"))
    starts = torch.randint(0, len(x_train) - t.batch_size, (s.steps,), generator=generator).tolist()
    networks = {}
    for method in s.methods:
        torch.manual_seed(ctx.child_seed("init", method))
        model = build_model(method, model_width(cfg), OmegaConf.to_container(cfg.model)).to(ctx.device)
        networks[method] = (model, torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay))
    seconds = {method: [] for method in networks}
    for round_index in range(s.warmup + s.rounds):
        for method, (model, optimizer) in networks.items():
            with ctx.stopwatch() as clock:
                for start in starts:
                    optimizer.zero_grad()
                    x, y = x_train[start:start + t.batch_size], y_train[start:start + t.batch_size]
                    F.cross_entropy(model(x), y).backward()
                    optimizer.step()
            if round_index >= s.warmup:
                seconds[method].append(clock.seconds / s.steps)
    reference = float(np.median(seconds["mlp"]))
    return [{"method": method, "step_time_s": float(np.median(times)),
             "time_ratio_to_mlp": float(np.median(times)) / reference} for method, times in seconds.items()]
