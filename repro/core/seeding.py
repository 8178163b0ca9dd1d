"""A root seed and child seeds derived from it by name, so adding a component never shifts the others."""

import hashlib
import random

import numpy as np
import torch


def child_seed(root: int, *names: object) -> int:
    """A 31-bit seed determined by the root seed and a path of names (e.g. ("data", "train"))."""
    key = "/".join([str(root), *map(str, names)]).encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:4], "little") & 0x7FFFFFFF


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch global generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
