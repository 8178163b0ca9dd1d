"""`repro train`: compose the grid, find or create the run dir, run the selected units, store their rows.

The framework owns the loop over a paper's units: seeding from the unit's name, threads, the device,
per-unit caching (an interrupted run resumes at the first unfinished unit), the ``unit_time_s`` and
``experiment`` columns, parallel workers (``workers=N``) and subsets (``unit=<glob>``), so that each unit
of a paper-scale grid can be its own Hydra job and all of them fill the same run directory.
"""

import contextlib
import importlib
import json
import math
import os
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import active_children, get_context
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
    """Every `key=value` must keep the type of the default (an int may stand for a float); a `+key` must
    name a key the paper reads (one it does not read would silently change nothing)."""
    for override in _user_overrides():
        key = override.split("=", 1)[0].lstrip("+~")
        if key in GROUPS or key.startswith("hydra"):
            continue
        if override.startswith("+") and OmegaConf.select(defaults, key, default=None) is None:
            raise ConfigError(f"{override}: {cfg.paper.slug} has no key {key}, so it would change nothing; "
                              f"see `repro train paper={cfg.paper.slug} --cfg job` for the keys it reads")
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


# Keys that count something that must happen at least once, and rates that must be positive, wherever
# they stand in a paper's config.
AT_LEAST_ONE = ("epochs", "batch_size", "steps", "max_steps", "replicates")
POSITIVE = ("lr", "learning_rate")


def check_ranges(cfg: DictConfig) -> None:
    """Root knobs and the paper's counts and rates in range, before any work."""
    if cfg.threads is not None and int(cfg.threads) < 1:
        raise ConfigError(f"threads={cfg.threads}: must be >= 1 (or null for all cores)")
    if int(cfg.workers) < 1:
        raise ConfigError(f"workers={cfg.workers}: must be >= 1")
    if cfg.precision not in ("fp32", "bf16"):
        raise ConfigError(f"precision={cfg.precision}: choose fp32 or bf16")

    def walk(node: object, prefix: str) -> None:
        if OmegaConf.is_dict(node):
            for key, value in node.items():
                path = f"{prefix}.{key}"
                if key in AT_LEAST_ONE and isinstance(value, int) and not isinstance(value, bool) and value < 1:
                    raise ConfigError(f"{path}={value}: must be >= 1")
                if key in POSITIVE and isinstance(value, int | float) and not isinstance(value, bool) \
                        and not value > 0:
                    raise ConfigError(f"{path}={value}: must be > 0")
                walk(value, path)

    walk(cfg.paper, "paper")


def paper_module(paper: DictConfig) -> ModuleType:
    """The paper's task module (``task:`` in its config) with ``units`` and ``run_unit``, and optionally
    ``prepare_data(cfg, data_dir, units)``, which fetches or checks the data those units read before any runs."""
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
    from repro.core.context import make_logger

    path = run_dir / "units" / f"{unit.file_stem}.csv"
    log = make_logger(run_dir, f"{run_dir.name}.{os.getpid()}")
    with unit_lock(path, log):
        reused = _stored_unit(path, log)
        if reused is not None:
            return {"unit": unit.name, "rows": reused, "reused": True, "cpu_s": 0.0, "peak_bytes": 0}
        return _compute_unit(cfg, run_dir, device, unit, position, path, log)


@contextlib.contextmanager
def unit_lock(path: Path, log) -> Iterator[None]:
    """One process computes a unit at a time: another run of the same config waits, then reuses its rows.

    The lock is released by the operating system when its process dies, so it never goes stale.
    """
    import fcntl

    with open(path.with_suffix(".lock"), "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("%s is being computed by another process: waiting for it", path.stem)
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _stored_unit(path: Path, log) -> list[dict] | None:
    """A finished unit's verified rows; a damaged unit file is reported by path and recomputed."""
    if not path.exists():
        return None
    try:
        return store.read_unit(path)
    except ReproError as error:
        log.warning("%s; recomputing the unit", error)
        path.unlink()
        return None


def _compute_unit(cfg: DictConfig, run_dir: Path, device: str, unit: Unit, position: str, path: Path,
                  log) -> dict:
    from repro.core.context import RunContext, thread_limit
    from repro.core.seeding import seed_everything

    ctx = RunContext(cfg, run_dir, device, unit, log, position)
    module = paper_module(cfg.paper)
    cuda = device.startswith("cuda")
    if cuda:
        import torch

        torch.cuda.reset_peak_memory_stats(device)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = bool(cfg.tf32)
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
    pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"))
    try:
        futures = [pool.submit(_worker_job, container, str(run_dir), device, u, f"[unit {k}/{total}]")
                   for k, u in enumerate(units, 1)]
        for k, future in enumerate(futures, 1):
            results.append(future.result())
            report(k, results[-1])
    except KeyboardInterrupt:
        # Ctrl-C or SIGTERM: stop now. A plain shutdown would first run every queued unit to its end; the
        # stopped units keep their last checkpoints, and rerunning the command resumes them.
        pool.shutdown(wait=False, cancel_futures=True)
        for worker in active_children():
            worker.terminate()
        raise
    finally:
        # After a failed unit the units already queued still run to the end, so their rows are kept.
        pool.shutdown()
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
    store.refuse_symlinks(run_dir)
    previous = store.read_status(run_dir)
    code = store.code_hash(str(cfg.paper.task))
    if previous["status"] == "corrupt" and not cfg.force:
        raise ConfigError(f"{previous['error']}; rerun with force=true to redo this run")
    stale = previous["status"] != "corrupt" and previous.get("code_hash", code) != code
    if stale:
        print(f"the code {cfg.paper.slug} imports changed since {run_dir} was made: starting it afresh")
    elif previous["status"] == "done" and not cfg.force:
        print(f"reusing finished run {run_dir} (force=true reruns it)")
        return _job_result(cfg, run_dir, previous)
    if store.is_stale_running(previous):
        print(f"{run_dir} was recorded as running by a process that is gone: continuing it")
    rebuild = (cfg.force or stale) and run_dir.exists()
    if rebuild and cfg.unit is not None:
        raise ConfigError(f"force=true (or changed code) with unit={cfg.unit} would redo only part of {run_dir}; "
                          "run it without unit= first")
    # Data the chosen units read is fetched (or found missing) before any unit computes: an offline paper-scale
    # run stops at once with the file to place, not after an hour of the units that need no download.
    prepare_data = getattr(module, "prepare_data", None)
    if prepare_data is not None:
        prepare_data(cfg.paper, Path(str(cfg.data_dir)), chosen)
    # A forced or stale run is built aside and replaces the old one only once it has finished, so an
    # interrupted `force=true` loses nothing.
    work_dir = run_dir.with_name(f"{run_dir.name}.new-{os.getpid()}") if rebuild else run_dir
    if rebuild:
        shutil.rmtree(work_dir, ignore_errors=True)
        previous = {"status": "missing"}
    for sub in ("units", "checkpoints"):
        (work_dir / sub).mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, work_dir / "config.yaml", resolve=True)
    OmegaConf.save(OmegaConf.create(_user_overrides()), work_dir / "overrides.yaml")
    status = {"scale": cfg.scale.name, "seed": cfg.seed, "device": device,
              "defaults_hash": store.defaults_hash(defaults), "code_hash": code,
              "units_total": len(grid), "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    store.write_status(work_dir, status="running", **status)

    from repro.core.context import make_logger

    log = make_logger(work_dir, f"{run_dir.name}.main")
    if previous["status"] in ("running", "failed", "interrupted", "partial", "corrupt"):
        log.info("continuing the unfinished run in %s at its first unfinished unit", run_dir)
    log.info("paper=%s scale=%s seed=%s device=%s threads=%s workers=%s: %d of %d units -> %s",
             cfg.paper.slug, cfg.scale.name, cfg.seed, device, cfg.threads, cfg.workers, len(chosen),
             len(grid), run_dir)
    start, cpu_start = time.perf_counter(), time.process_time()
    try:
        with sigterm_as_interrupt():
            results = _run_units(cfg, work_dir, device, chosen, log)
    except BaseException as error:
        state = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
        store.write_status(work_dir, status=state, error=f"{type(error).__name__}: {error}",
                           wall_time_s=time.perf_counter() - start, **status)
        log.error("run %s: %s: %s", state, type(error).__name__, error)
        if rebuild:
            log.error("the previous run in %s is untouched", run_dir)
        raise
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu_start + sum(r["cpu_s"] for r in results if _ran_elsewhere(cfg))
    peak = max((r["peak_bytes"] for r in results), default=0)
    if device.startswith("cuda") and peak == 0 and not any(r["reused"] for r in results) \
            and not cfg.paper.get("cpu_only"):
        store.write_status(work_dir, status="failed", error=f"ignored device={device}", **status)
        raise ReproError(f"{cfg.paper.slug} ignored device={device}: its units allocated no CUDA memory; "
                         "move its models and tensors to ctx.device (or declare cpu_only: <reason> in its config)")
    (work_dir / "env.json").write_text(json.dumps(capture_env(device, peak), indent=2) + "\n")
    done_units = store.finished_units(work_dir)
    finished = {u.name for u in grid} <= done_units
    record = {}
    if finished:
        rows = store.rows_in_grid_order(work_dir, grid)
        record = {"rows_total": len(rows), "rows_sha256": store.write_rows(work_dir, rows)}
    state = "done" if finished else "partial"
    store.write_status(work_dir, status=state, wall_time_s=wall, cpu_time_s=cpu, units_done=len(done_units),
                       peak_cuda_bytes=peak, **record, **status)
    log.info("%s: %d of %d units finished, %.1f s wall, %.1f s CPU", state, len(done_units), len(grid), wall, cpu)
    if rebuild:
        replace_run(work_dir, run_dir)
    return _job_result(cfg, run_dir, store.read_status(run_dir))


def replace_run(new: Path, old: Path) -> None:
    """Swap a rebuilt run in for the old one: two renames, then the old copy is removed."""
    retired = old.with_name(f"{old.name}.old-{os.getpid()}")
    old.replace(retired)
    new.replace(old)
    shutil.rmtree(retired, ignore_errors=True)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (SLURM's pre-emption, `docker stop`) ends the run like Ctrl-C: recorded as interrupted."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    before = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


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
    if not set(where) <= set(rows.columns):     # a column this scale's grid does not have: nothing to optimise
        return math.nan
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
