"""The run context handed to every task: seeds, device, run directory, logging, progress, checkpoints."""

import json
import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
from omegaconf import DictConfig

from repro.core.seeding import child_seed

T = TypeVar("T")


def resolve_device(requested: str) -> str:
    """`auto` takes CUDA when present; an explicit CUDA request without CUDA is an error, not a fallback."""
    import torch

    from repro.core.errors import ConfigError

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={requested} but torch sees no CUDA device; use device=cpu or device=auto")
    if requested != "cpu" and not requested.startswith("cuda"):
        raise ConfigError(f"device={requested!r} is not one of auto, cpu, cuda, cuda:<i>")
    return requested


def make_logger(run_dir: Path, name: str) -> logging.Logger:
    logger = logging.getLogger(f"repro.run.{name}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")
    file_handler = logging.FileHandler(run_dir / "run.log")
    file_handler.setFormatter(fmt)
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(fmt)
    logger.addHandler(file_handler)
    logger.addHandler(console)
    return logger


class RunContext:
    """Everything a task may use from the framework; a task writes files only through it.

    Attributes: ``cfg`` (the whole composed config), ``run_dir``, ``seed`` (root seed), ``device``
    (resolved string), ``scale`` (smoke | cpu | paper), ``log`` (a logger writing run.log and stderr).
    """

    def __init__(self, cfg: DictConfig, run_dir: Path, device: str) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.seed = int(cfg.seed)
        self.device = device
        self.scale = str(cfg.scale.name)
        self.data_dir = Path(cfg.data_dir)
        self.log = make_logger(self.run_dir, self.run_dir.name)
        (self.run_dir / "checkpoints").mkdir(exist_ok=True)
        (self.run_dir / "units").mkdir(exist_ok=True)

    def child_seed(self, *names: object) -> int:
        """A seed for one component (e.g. ``ctx.child_seed("data", "train")``), derived from the root."""
        return child_seed(self.seed, *names)

    def replicate_seeds(self) -> list[int]:
        """One seed per replicate of the experiment at this scale (``scale.replicates`` of them)."""
        return [self.child_seed("replicate", i) for i in range(int(self.cfg.scale.replicates))]

    def progress(self, iterable: Iterable[T], desc: str, total: int | None = None) -> Iterator[T]:
        """A tqdm bar on a terminal; elsewhere (logs, CI, sweeps) a line in run.log every ~10%."""
        if sys.stderr.isatty():
            from tqdm.auto import tqdm

            yield from tqdm(iterable, desc=desc, total=total, leave=False)
            return
        total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        step = max(1, total // 10) if total else None
        start = time.perf_counter()
        for i, item in enumerate(iterable):
            yield item
            if step and ((i + 1) % step == 0 or i + 1 == total):
                self.log.info("%s: %d/%d (%.0f s)", desc, i + 1, total, time.perf_counter() - start)

    def log_metrics(self, step: int, **metrics: Any) -> None:
        """Append one line to metrics.jsonl (per-step curves; result rows are returned, not logged)."""
        record = {"step": step, "time": time.time(), **metrics}
        with open(self.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record, default=float) + "\n")

    def checkpoint_path(self, unit: str) -> Path:
        """Where the training loop keeps the checkpoint of one unit of work (see repro.core.train)."""
        return self.run_dir / "checkpoints" / f"{unit}.pt"

    def unit(self, name: str, compute: Callable[[], list[dict]]) -> list[dict]:
        """Rows of one unit of work (a method x replicate, say), computed once per run directory.

        A finished unit's rows are stored; when an interrupted run resumes, finished units are read back
        and only the rest is computed, so the resumed run ends with the same rows.
        """
        path = self.run_dir / "units" / f"{name}.csv"
        if path.exists():
            self.log.info("unit %s: finished before, reusing its rows", name)
            return pd.read_csv(path).to_dict("records")
        rows = compute()
        tmp = path.with_suffix(".tmp")
        pd.DataFrame(rows).to_csv(tmp, index=False)
        tmp.replace(path)
        return rows
