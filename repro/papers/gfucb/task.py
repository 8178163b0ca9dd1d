"""Multitask bandit sweep: regret vs rounds for several task counts M.

Grid: ``bandit/<method>/M=<m>``, once per replicate. Every method of a replicate and M plays the same tasks
(theta) and sees the same offered arms and reward noise (common random numbers from ``ctx.data_seed``);
the networks' initialisation is the unit's own. Rows: per-task cumulative regret at checkpoint rounds
(kind ``curve``) and at T (kind ``final``).
"""

from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig
from sklearn.datasets import load_digits

from repro.core.context import RunContext
from repro.core.errors import ConfigError
from repro.core.units import Unit, grid
from repro.papers.gfucb.bandit import make_tasks, play
from repro.papers.gfucb.mnist import load_mnist

METHODS = ("shared", "independent", "oracle", "random")


def units(cfg: DictConfig) -> list[Unit]:
    return grid("bandit", cfg.methods, M=list(cfg.task_counts))


def digits() -> tuple[np.ndarray, np.ndarray]:
    data = load_digits()
    return data.data / 16.0, data.target


def images_and_labels(cfg: DictConfig, ctx: RunContext) -> tuple[np.ndarray, np.ndarray]:
    """The image pool: scikit-learn's 8 x 8 digits (cpu scale) or MNIST's 60 000 training images (paper
    scale, read once per process and replicate from data_dir/mnist)."""
    if cfg.dataset == "digits":
        return ctx.shared("digits", digits)
    if cfg.dataset == "mnist":
        return ctx.shared("mnist", lambda: load_mnist(Path(ctx.data_dir) / "mnist", ctx.log))
    raise ConfigError(f"paper.dataset = {cfg.dataset!r}; use digits or mnist")


def run_unit(cfg: DictConfig, ctx: RunContext, u: Unit) -> list[dict]:
    images, labels = images_and_labels(cfg, ctx)
    tasks = int(u.settings["M"])
    theta = make_tasks(tasks, cfg.bandit.head_rank, 10, np.random.default_rng(ctx.data_seed("tasks", tasks)))
    checkpoints = list(range(cfg.curve_every, cfg.bandit.rounds + 1, cfg.curve_every))
    rng = np.random.default_rng(ctx.data_seed("arms", tasks))
    generator = torch.Generator().manual_seed(ctx.child_seed("init"))
    curve = play(u.method, images, labels, theta, cfg.bandit, rng, generator, checkpoints, ctx.device)
    base = {"head_rank": cfg.bandit.head_rank}
    rows = [{**base, "kind": "curve", "round": t, "regret": r} for t, r in curve.items()]
    rows.append({**base, "kind": "final", "round": cfg.bandit.rounds, "regret_per_task": curve[cfg.bandit.rounds]})
    ctx.log.info("%s, M = %d: per-task regret %.2f", u.method, tasks, curve[cfg.bandit.rounds])
    return rows
