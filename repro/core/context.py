"""The context handed to a paper's ``run_unit``: its unit, seeds, device, files, logging and timing."""

import contextlib
import json
import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from omegaconf import DictConfig

from repro.core.seeding import child_seed
from repro.core.units import Unit

T = TypeVar("T")

# Values shared by the units of one replicate in one process (data sets, say): built once, reused.
_SHARED: dict[tuple, Any] = {}


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


class Stopwatch:
    """Wall seconds of a block; on CUDA the device is synchronised at both ends so queued kernels count.
    ``cpu_seconds`` is this process's CPU time over the block (all its threads): unlike wall time it does not
    grow when other jobs share the machine."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.seconds = float("nan")
        self.cpu_seconds = float("nan")

    def _sync(self) -> None:
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize(self.device)

    def __enter__(self) -> "Stopwatch":
        self._sync()
        self._start, self._cpu_start = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sync()
        self.seconds = time.perf_counter() - self._start
        self.cpu_seconds = time.process_time() - self._cpu_start


class RunContext:
    """Everything a unit may use from the framework; a unit writes files only through it.

    Seeds: ``seed`` is this unit's own seed (the framework has already seeded python, numpy and torch
    with it); ``child_seed(*names)`` derives one for a component of the unit; ``data_seed(*names)`` is
    the same for every unit of one replicate, so methods compared in a replicate see the same data.
    """

    def __init__(self, cfg: DictConfig, run_dir: Path, device: str, unit: Unit, log: logging.Logger,
                 position: str = "") -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.device = device
        self.unit = unit
        self.root_seed = int(cfg.seed)
        self.seed = child_seed(self.root_seed, "unit", unit.name)
        self.scale = str(cfg.scale.name)
        self.data_dir = Path(cfg.data_dir)
        self.threads = cfg.get("threads")
        self.precision = str(cfg.get("precision", "fp32"))
        self.compile = bool(cfg.get("compile", False))
        self.loader_workers = int(cfg.get("loader_workers") or 0)
        self.log = log
        self.position = position
        self.converged: list[bool] = []

    def child_seed(self, *names: object) -> int:
        """A seed for one component of this unit (e.g. ``ctx.child_seed("init")``)."""
        return child_seed(self.seed, *names)

    def data_seed(self, *names: object) -> int:
        """A seed shared by all units of this replicate (the same data for every method and setting)."""
        return child_seed(self.root_seed, "replicate", self.unit.replicate, *names)

    def shared(self, name: str, build: Callable[[], T]) -> T:
        """``build()`` once per process for this replicate and name (e.g. a data set every method trains on).

        Keep ``build`` a function of the config and ``data_seed`` only, so that sharing changes nothing.
        """
        key = (str(self.run_dir), self.unit.replicate, name)
        if key not in _SHARED:
            _SHARED[key] = build()
        return _SHARED[key]

    def progress(self, iterable: Iterable[T], desc: str, total: int | None = None) -> Iterator[T]:
        """A tqdm bar on a terminal; elsewhere a line in run.log every ~10% with the elapsed time and ETA."""
        label = f"{self.position} {desc}".strip()
        if sys.stderr.isatty():
            from tqdm.auto import tqdm

            yield from tqdm(iterable, desc=label, total=total, leave=False)
            return
        total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        step = max(1, total // 10) if total else None
        start = time.perf_counter()
        for i, item in enumerate(iterable):
            yield item
            if step and ((i + 1) % step == 0 or i + 1 == total):
                elapsed = time.perf_counter() - start
                eta = elapsed / (i + 1) * (total - i - 1)
                self.log.info("%s: step %d/%d (%.0f s, ETA %.0f s)", label, i + 1, total, elapsed, eta)

    def log_metrics(self, step: int, **metrics: Any) -> None:
        """Append one line to metrics.jsonl (per-step curves; result rows are returned, not logged)."""
        record = {"unit": self.unit.name, "step": step, "time": time.time(), **metrics}
        with open(self.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record, default=float) + "\n")

    def checkpoint_path(self, name: str = "") -> Path:
        """Where the training loop keeps a checkpoint of this unit (``name`` tells several trainings apart)."""
        stem = self.unit.file_stem + (f"__{name}" if name else "")
        return self.run_dir / "checkpoints" / f"{stem}.pt"

    def stopwatch(self) -> Stopwatch:
        """``with ctx.stopwatch() as clock: ...`` then ``clock.seconds``: timing that counts queued GPU work."""
        return Stopwatch(self.device)

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast of the forward pass when ``precision=bf16``; nothing at fp32."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        import torch

        return torch.autocast(device_type=self.device.split(":")[0], dtype=torch.bfloat16)

    def loader_options(self) -> dict[str, Any]:
        """DataLoader keywords for real data sets: worker processes and pinned memory on a GPU."""
        workers = self.loader_workers
        return {"num_workers": workers, "persistent_workers": workers > 0,
                "pin_memory": self.device.startswith("cuda")}

    def record_convergence(self, converged: bool) -> None:
        """Called by the training loop; a unit's rows say whether every training in it converged."""
        self.converged.append(bool(converged))


@contextlib.contextmanager
def thread_limit(threads: int | None) -> Iterator[None]:
    """Torch and BLAS/OpenMP pools limited to ``threads`` (None: all cores) for the block."""
    import os

    import torch
    from threadpoolctl import threadpool_limits

    count = int(threads) if threads else os.cpu_count() or 1
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    with threadpool_limits(count):
        try:
            yield
        finally:
            torch.set_num_threads(before)
