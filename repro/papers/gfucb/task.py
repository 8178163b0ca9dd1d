"""Multitask bandit sweep (card: shared/papers/gfucb.md): regret vs rounds for several task counts M.

For each replicate and M: shared (GFUCB surrogate), independent per-task learners, oracle LinUCB with the true
representation, uniform random. Rows: per-task cumulative regret at checkpoint rounds (curve) and at T (final).
"""

import numpy as np
import torch
from omegaconf import DictConfig
from sklearn.datasets import load_digits

from repro.core.context import RunContext
from repro.core.errors import ConfigError
from repro.papers.gfucb.bandit import make_tasks, play

METHODS = ("shared", "independent", "oracle", "random")


def run(cfg: DictConfig, ctx: RunContext) -> list[dict]:
    unknown = sorted(set(cfg.methods) - set(METHODS))
    if unknown:
        raise ConfigError(f"paper.methods has unknown {unknown}; choose from {list(METHODS)}")
    digits = load_digits()
    images, labels = digits.data / 16.0, digits.target
    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # tiny batched matmuls: threads only add contention on a shared host
    try:
        rows = []
        for seed in ctx.replicate_seeds():
            for m in cfg.task_counts:
                rows += ctx.unit(f"M{m}-{seed}", lambda m=m, s=seed: sweep_point(cfg, images, labels, m, s))
                ctx.log.info("seed %d, M = %d done", seed, m)
        return rows
    finally:
        torch.set_num_threads(threads)


def sweep_point(cfg: DictConfig, images: np.ndarray, labels: np.ndarray, tasks: int, seed: int) -> list[dict]:
    theta = make_tasks(tasks, cfg.bandit.head_rank, 10, np.random.default_rng([seed, tasks, 0]))
    checkpoints = list(range(cfg.curve_every, cfg.bandit.rounds + 1, cfg.curve_every))
    rows = []
    for method in cfg.methods:
        # Same arm draws and noise for every method (common random numbers); its own init per method.
        rng = np.random.default_rng([seed, tasks, 1])
        generator = torch.Generator().manual_seed(int(seed) % 2**31)
        curve = play(method, images, labels, theta, cfg.bandit, rng, generator, checkpoints)
        base = {"method": method, "M": tasks, "seed": seed, "head_rank": cfg.bandit.head_rank}
        rows += [{**base, "kind": "curve", "round": t, "regret": r} for t, r in curve.items()]
        rows.append({**base, "kind": "final", "round": cfg.bandit.rounds, "regret_per_task": curve[cfg.bandit.rounds]})
    return rows
