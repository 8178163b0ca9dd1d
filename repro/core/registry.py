"""Resolve the code a paper's config names: its task and its figure functions."""

from collections.abc import Callable

from hydra.utils import get_method
from omegaconf import DictConfig


def figure_functions(paper: DictConfig) -> dict[str, Callable]:
    """name -> function(rows: DataFrame) -> matplotlib Figure, from `figures:` in the paper config."""
    return {name: get_method(target) for name, target in (paper.get("figures") or {}).items()}
