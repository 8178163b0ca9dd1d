"""`repro train`: compose the grid, find or create the run dir, run the selected units, store their rows.

The framework owns the loop over a paper's units: seeding from the unit's name, threads, the device,
per-unit caching (an interrupted run resumes at the first unfinished unit), the ``unit_time_s`` and
``experiment`` columns, parallel workers (``workers=N``) and subsets (``unit=<glob>``), so that each unit
of a paper-scale grid can be its own Hydra job and all of them fill the same run directory.
"""

import importlib
import json
import math
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from types import ModuleType

import pandas as pd
from hydra import compose
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from repro.core import store
from repro.core.errors import ConfigError, ReproError
from repro.core.units import UNIT_COLUMNS, Unit, expand, select, validate

GROUPS = ("paper", "scale")


def defaults_config(cfg: DictConfig) -> DictConfig:
    """The paper's config at this scale with no other override: the reference for types and staleness."""
    return compose("config", overrides=[f"paper={cfg.paper.slug}", f"scale={cfg.scale.name}"])


def _user_overrides() -> list[str]:
    return list(HydraConfig.get().overrides.task)


def check_override_types(cfg: DictConfig, defaults: DictConfig) -> None:
    """Every `key=value` must keep the type of the default (an int may stand for a float)."""
    for override in _user_overrides():
        key = override.split("=", 1)[0].lstrip("+~")
        if key in GROUPS or key.startswith("hydra"):
            continue
        default = OmegaConf.select(defaults, key, default=None)
        value = OmegaConf.select(cfg, key, default=None)
        if default is None or value is None:
            continue
        expected = type(default)
        ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
        ok |= expected is float and isinstance(value, int) and not isinstance(value, bool)
        ok |= expected is str and isinstance(value, int | float)
        ok |= OmegaConf.is_list(default) and OmegaConf.is_list(value)
        ok |= OmegaConf.is_dict(default) and OmegaConf.is_dict(value)
        if not ok:
            raise ConfigError(f"{override}: {key} must be {expected.__name__} like its default "
                              f"{key}={default!r}; got {type(value).__name__}")


def check_ranges(cfg: DictConfig) -> None:
    """Root knobs in range before any work."""
    if cfg.threads is not None and int(cfg.threads) < 1:
        raise ConfigError(f"threads={cfg.threads}: must be >= 1 (or null for all cores)")
    if int(cfg.workers) < 1:
        raise ConfigError(f"workers={cfg.workers}: must be >= 1")


def paper_module(paper: DictConfig) -> ModuleType:
    """The paper's task module (``task:`` in its config) with ``units`` and ``run_unit``."""
    module = importlib.import_module(str(paper.task))
    for name in ("units", "run_unit"):
        if not callable(getattr(module, name, None)):
            raise ConfigError(f"{paper.task} defines no {name}(); a paper module needs units() and run_unit()")
    return module


def paper_units(cfg: DictConfig, module: ModuleType) -> list[Unit]:
    """The whole grid at this scale: the paper's units, stochastic ones once per replicate, validated."""
    replicates = int(cfg.paper.get("replicates") or cfg.scale.replicates)
    units = expand(module.units(cfg.paper), replicates)
    validate(units, getattr(module, "METHODS", None), str(cfg.paper.slug))
    return units


def _run_dir(cfg: DictConfig) -> Path:
    expected = store.runs_dir(cfg.results_dir, cfg.paper.slug) / store.run_id(cfg)
    if cfg.resume is None:
        return expected
    requested = Path(str(cfg.resume))
    if not (requested / "config.yaml").exists():
        raise ConfigError(f"resume={requested}: not a run directory (no config.yaml); "
                          f"pass a path under {store.runs_dir(cfg.results_dir, cfg.paper.slug)}")
    if requested.resolve() != expected.resolve():
        recorded = OmegaConf.load(requested / "overrides.yaml")
        raise ConfigError(f"resume={requested} was made with other settings; rerun with its overrides: "
                          f"repro train {' '.join(map(str, recorded))}")
    return requested


def run_unit_job(cfg: DictConfig, run_dir: Path, device: str, unit: Unit, position: str) -> dict:
    """Run one unit (in this process or a worker): its rows, wall and CPU seconds, peak CUDA memory.

    A unit finished before (its file is in units/) is read back instead of recomputed.
    """
    from repro.core.context import RunContext, make_logger, thread_limit
    from repro.core.seeding import seed_everything

    path = run_dir / "units" / f"{unit.file_stem}.csv"
    if path.exists():
        return {"unit": unit.name, "rows": store.read_unit(path), "reused": True, "cpu_s": 0.0, "peak_bytes": 0}
    log = make_logger(run_dir, f"{run_dir.name}.{os.getpid()}")
    ctx = RunContext(cfg, run_dir, device, unit, log, position)
    module = paper_module(cfg.paper)
    cuda = device.startswith("cuda")
    if cuda:
        import torch

        torch.cuda.reset_peak_memory_stats(device)
    log.info("%s %s: started (seed %d)", position, unit.name, ctx.seed)
    seed_everything(ctx.seed)
    cpu_start = time.process_time()
    with thread_limit(cfg.threads), ctx.stopwatch() as clock:
        rows = module.run_unit(cfg.paper, ctx, unit)
    _check_rows(rows, unit)
    for row in rows:
        for key, value in unit.columns().items():
            row.setdefault(key, value)
        row["unit"] = unit.name
        row["unit_time_s"] = clock.seconds
        if ctx.converged:
            row["converged"] = all(ctx.converged)
    store.write_unit(path, rows)
    peak = 0
    if cuda:
        import torch

        peak = int(torch.cuda.max_memory_allocated(device))
    log.info("%s %s: %d rows in %.1f s", position, unit.name, len(rows), clock.seconds)
    return {"unit": unit.name, "rows": rows, "reused": False, "cpu_s": time.process_time() - cpu_start,
            "peak_bytes": peak}


def _worker_job(container: dict, run_dir: str, device: str, unit: Unit, position: str) -> dict:
    import repro  # noqa: F401  (registers the config resolvers in a fresh worker)

    return run_unit_job(OmegaConf.create(container), Path(run_dir), device, unit, position)


def _run_units(cfg: DictConfig, run_dir: Path, device: str, units: list[Unit], log) -> list[dict]:
    total = len(units)
    workers = min(int(cfg.workers), total)
    start = time.perf_counter()
    results = []

    def report(done: int, result: dict) -> None:
        elapsed = time.perf_counter() - start
        eta = elapsed / done * (total - done)
        word = "reused" if result["reused"] else "done"
        log.info("unit %d of %d %s: %s (%.0f s elapsed, ETA %.0f s)", done, total, word, result["unit"],
                 elapsed, eta)

    if workers == 1:
        for k, unit in enumerate(units, 1):
            results.append(run_unit_job(cfg, run_dir, device, unit, f"[unit {k}/{total}]"))
            report(k, results[-1])
        return results
    container = OmegaConf.to_container(cfg, resolve=True)
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(_worker_job, container, str(run_dir), device, u, f"[unit {k}/{total}]")
                   for k, u in enumerate(units, 1)]
        for k, future in enumerate(futures, 1):
            results.append(future.result())
            report(k, results[-1])
    return results


def train(cfg: DictConfig) -> float | dict:
    """Run one job. Returns the paper's optimised metric (for sweepers) or, without one, the run status."""
    from repro.core.env import capture_env

    defaults = defaults_config(cfg)
    check_override_types(cfg, defaults)
    check_ranges(cfg)
    from repro.core.context import resolve_device

    device = resolve_device(str(cfg.device))
    module = paper_module(cfg.paper)
    grid = paper_units(cfg, module)
    chosen = select(grid, cfg.unit, str(cfg.paper.slug))
    run_dir = _run_dir(cfg)
    previous = store.read_status(run_dir)
    code = store.code_hash(str(cfg.paper.task))
    stale = previous.get("code_hash", code) != code
    if stale:
        print(f"the code {cfg.paper.slug} imports changed since {run_dir} was made: starting it afresh")
    elif previous["status"] == "done" and not cfg.force:
        print(f"reusing finished run {run_dir} (force=true reruns it)")
        return _job_result(cfg, run_dir, store.read_status(run_dir))
    if (cfg.force or stale) and run_dir.exists():
        shutil.rmtree(run_dir)
        previous = {"status": "missing"}
    for sub in ("units", "checkpoints"):
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    OmegaConf.save(OmegaConf.create(_user_overrides()), run_dir / "overrides.yaml")
    status = {"scale": cfg.scale.name, "seed": cfg.seed, "device": device,
              "defaults_hash": store.defaults_hash(defaults), "code_hash": code,
              "units_total": len(grid), "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    store.write_status(run_dir, status="running", **status)

    from repro.core.context import make_logger

    log = make_logger(run_dir, f"{run_dir.name}.main")
    if previous["status"] in ("running", "failed", "interrupted", "partial"):
        log.info("continuing the unfinished run in %s at its first unfinished unit", run_dir)
    log.info("paper=%s scale=%s seed=%s device=%s threads=%s workers=%s: %d of %d units -> %s",
             cfg.paper.slug, cfg.scale.name, cfg.seed, device, cfg.threads, cfg.workers, len(chosen),
             len(grid), run_dir)
    start, cpu_start = time.perf_counter(), time.process_time()
    try:
        results = _run_units(cfg, run_dir, device, chosen, log)
    except BaseException as error:
        state = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
        store.write_status(run_dir, status=state, error=f"{type(error).__name__}: {error}",
                           wall_time_s=time.perf_counter() - start, **status)
        log.error("run %s: %s: %s", state, type(error).__name__, error)
        raise
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu_start + sum(r["cpu_s"] for r in results if _ran_elsewhere(cfg))
    peak = max((r["peak_bytes"] for r in results), default=0)
    if device.startswith("cuda") and peak == 0 and not any(r["reused"] for r in results) \
            and not cfg.paper.get("cpu_only"):
        store.write_status(run_dir, status="failed", error=f"ignored device={device}", **status)
        raise ReproError(f"{cfg.paper.slug} ignored device={device}: its units allocated no CUDA memory; "
                         "move its models and tensors to ctx.device (or declare cpu_only: <reason> in its config)")
    (run_dir / "env.json").write_text(json.dumps(capture_env(device, peak), indent=2) + "\n")
    done_units = store.finished_units(run_dir)
    finished = {u.name for u in grid} <= done_units
    if finished:
        rows = store.rows_in_grid_order(run_dir, grid)
        store.write_rows(run_dir, rows)
    state = "done" if finished else "partial"
    store.write_status(run_dir, status=state, wall_time_s=wall, cpu_time_s=cpu, units_done=len(done_units),
                       rows=sum(len(r["rows"]) for r in results), peak_cuda_bytes=peak, **status)
    log.info("%s: %d of %d units finished, %.1f s wall, %.1f s CPU", state, len(done_units), len(grid), wall, cpu)
    return _job_result(cfg, run_dir, store.read_status(run_dir))


def _ran_elsewhere(cfg: DictConfig) -> bool:
    """With workers, units' CPU time is spent in child processes and reported by them."""
    return int(cfg.workers) > 1


def optimized_metric(cfg: DictConfig, rows: pd.DataFrame) -> float:
    """The paper's ``optimized_metric`` ({metric, where}) averaged over the run's rows, for sweepers."""
    from repro.core.claims import select as select_rows

    spec = cfg.paper.get("optimized_metric")
    if spec is None or rows.empty or spec.metric not in rows:
        return math.nan
    where = OmegaConf.to_container(spec.get("where") or {}, resolve=True)
    values = select_rows(rows, where)[spec.metric].dropna()
    return float(values.mean()) if len(values) else math.nan


def _job_result(cfg: DictConfig, run_dir: Path, status: dict) -> float | dict:
    if cfg.paper.get("optimized_metric") is None:
        return status
    path = run_dir / "rows.csv"
    return optimized_metric(cfg, pd.read_csv(path) if path.exists() else pd.DataFrame())


def _check_rows(rows: object, unit: Unit) -> None:
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise ReproError(f"unit {unit.name}: run_unit must return a non-empty list of dict rows")
    for row in rows:
        for key in ("unit", "unit_time_s", "converged"):
            if key in row:
                raise ReproError(f"unit {unit.name}: column {key!r} is the framework's ({UNIT_COLUMNS})")
