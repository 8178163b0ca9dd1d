"""A minimal paper module for the framework's tests: two methods over a setting, one deterministic unit."""

import random

import numpy as np
import torch

from repro.core.units import grid, unit

METHODS = ("a", "b")


def units(cfg) -> list:
    return [unit("exact", stochastic=False), *grid("draws", cfg.methods, n=cfg.ns)]


def run_unit(cfg, ctx, u) -> list[dict]:
    if u.experiment == "exact":
        return [{"value": 1.0}]
    shared = ctx.shared("data", lambda: float(np.random.default_rng(ctx.data_seed("data")).random()))
    return [{"torch": float(torch.rand(1)), "numpy": float(np.random.rand()), "python": random.random(),
             "data": shared, "child": ctx.child_seed("init"), "seed": ctx.seed}]
