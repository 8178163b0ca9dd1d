"""`repro train`: validate overrides, find or create the run dir, run the paper's task, store its rows."""

import json
import shutil
import time
from pathlib import Path

from hydra import compose
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from repro.core import store
from repro.core.errors import ConfigError, ReproError

GROUPS = ("paper", "scale")


def defaults_config(cfg: DictConfig) -> DictConfig:
    """The paper's config at this scale with no other override: the reference for types and staleness."""
    choices = HydraConfig.get().runtime.choices
    return compose("config", overrides=[f"{g}={choices[g]}" for g in GROUPS])


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


def train(cfg: DictConfig) -> dict:
    """Run one job; return its status (Hydra's launchers collect it)."""
    from repro.core.context import RunContext, resolve_device
    from repro.core.env import capture_env
    from repro.core.seeding import seed_everything

    defaults = defaults_config(cfg)
    check_override_types(cfg, defaults)
    device = resolve_device(str(cfg.device))
    if cfg.get("threads"):
        import torch
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(int(cfg.threads))
        threadpool_limits(int(cfg.threads))  # numpy/scipy BLAS and OpenMP pools too
    run_dir = _run_dir(cfg)
    previous = store.read_status(run_dir)
    code = store.code_hash(cfg.paper.slug)
    stale = previous.get("code_hash", code) != code
    if stale:
        print(f"the code of repro/papers/{cfg.paper.slug} changed since {run_dir} was made: starting it afresh")
    elif previous["status"] == "done" and not cfg.force:
        print(f"reusing finished run {run_dir} (force=true reruns it)")
        return previous
    if (cfg.force or stale) and run_dir.exists():
        shutil.rmtree(run_dir)
        previous = {"status": "missing"}
    run_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    OmegaConf.save(OmegaConf.create(_user_overrides()), run_dir / "overrides.yaml")
    (run_dir / "env.json").write_text(json.dumps(capture_env(device), indent=2) + "\n")
    status = {"scale": cfg.scale.name, "seed": cfg.seed, "defaults_hash": store.defaults_hash(defaults),
              "code_hash": code, "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    store.write_status(run_dir, status="running", **status)

    ctx = RunContext(cfg, run_dir, device)
    if previous["status"] in ("running", "failed", "interrupted"):
        ctx.log.info("continuing the unfinished run in %s from its checkpoints", run_dir)
    ctx.log.info("paper=%s scale=%s seed=%s device=%s -> %s", cfg.paper.slug, cfg.scale.name, cfg.seed,
                 device, run_dir)
    seed_everything(cfg.seed)
    task = instantiate(cfg.paper.task)
    start, cpu_start = time.perf_counter(), time.process_time()
    try:
        rows = task(cfg=cfg.paper, ctx=ctx)
        _check_rows(rows)
    except BaseException as error:
        state = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
        store.write_status(run_dir, status=state, error=f"{type(error).__name__}: {error}",
                           wall_time_s=time.perf_counter() - start, cpu_time_s=time.process_time() - cpu_start,
                           **status)
        ctx.log.error("run %s: %s: %s", state, type(error).__name__, error)
        raise
    store.write_rows(run_dir, rows)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    store.write_status(run_dir, status="done", wall_time_s=wall, cpu_time_s=cpu, rows=len(rows), **status)
    ctx.log.info("done: %d rows in %.1f s (%.1f s of CPU time in this process)", len(rows), wall, cpu)
    return store.read_status(run_dir)


def _check_rows(rows: object) -> None:
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise ReproError("the task must return a non-empty list of dict rows")
