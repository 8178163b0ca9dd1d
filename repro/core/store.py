"""The results store: one directory per run, keyed by a hash of its resolved config; aggregation on read.

A run directory ``<results_dir>/<slug>/runs/<run-id>/`` holds config.yaml, overrides.yaml, rows.csv,
metrics.jsonl, env.json, run.log, status.json and (git-ignored) checkpoints/ and units/.
Concurrent jobs each own their directory; nothing is shared until it is read.
"""

import hashlib
import json
import re
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig, OmegaConf

# Keys that say where, whether or how fast to run, not what is computed: they do not change a run's identity.
# `unit` and `workers` choose which units run and how many at once: jobs of one grid share one run dir.
NON_IDENTITY_KEYS = ("results_dir", "data_dir", "force", "resume", "latex", "unit", "workers")
# Wall-clock measurements differ between identical runs; everything else must not. They are named so:
# a `time` or `speedup` word (`train_time_s`, `time_exponent`, `alg3_speedup_x`) or a rate (`points_per_s`).
TIMING_COLUMN = re.compile(r"(^|[_/])(time|speedup)([_/]|$)|_per_s$")


def is_timing_column(name: str) -> bool:
    return bool(TIMING_COLUMN.search(name))


def config_hash(cfg: DictConfig, exclude: tuple[str, ...] = ()) -> str:
    """Hash of the resolved config without the keys in NON_IDENTITY_KEYS (and `exclude`)."""
    container = OmegaConf.to_container(cfg, resolve=True)
    for key in (*NON_IDENTITY_KEYS, *exclude):
        container.pop(key, None)
    blob = json.dumps(container, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:10]


def imported_modules(module: str) -> list[Path]:
    """Source files of ``module`` and of every ``repro`` module it imports, transitively (parsed, not run)."""
    import ast
    import importlib.util

    seen: dict[str, Path] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen or not name.startswith("repro"):
            continue
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):  # `from repro.x import function`: the name is not a module
            spec = None
        if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
            continue
        path = Path(spec.origin)
        seen[name] = path
        is_package = spec.submodule_search_locations is not None
        package = name if is_package else name.rpartition(".")[0]
        todo += [name.rsplit(".", i)[0] for i in range(1, name.count(".") + 1)]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                todo += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = importlib.util.resolve_name("." * node.level + (node.module or ""), package) \
                    if node.level else (node.module or "")
                todo.append(base)
                base_spec = importlib.util.find_spec(base) if base.startswith("repro") else None
                if base_spec is not None and base_spec.submodule_search_locations is not None:
                    todo += [f"{base}.{a.name}" for a in node.names]
    return [seen[k] for k in sorted(seen)]


def code_hash(module: str) -> str:
    """Hash of the source of a paper's task module and every repro module it imports: a finished run made
    by other code is stale."""
    from repro import ROOT

    digest = hashlib.sha256()
    for path in imported_modules(module):
        digest.update(str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def run_id(cfg: DictConfig) -> str:
    return f"{cfg.scale.name}-seed{cfg.seed}-{config_hash(cfg)}"


def defaults_hash(default_cfg: DictConfig) -> str:
    """Identity of a paper's default config at a scale (seed aside): runs made from an older version of
    the config carry another value and are left out of tables instead of being mixed in."""
    return config_hash(default_cfg, exclude=("seed", "device"))


def paper_dir(results_dir: str | Path, slug: str) -> Path:
    return Path(results_dir) / slug


def report_dir(results_dir: str | Path, slug: str, scale: str) -> Path:
    """Where a scale's reports go: the canonical cpu scale at results/<slug>/, others in a subfolder (so a
    smoke `repro table` never overwrites the committed cpu-scale results)."""
    base = paper_dir(results_dir, slug)
    return base if scale == "cpu" else base / f"scale-{scale}"


def runs_dir(results_dir: str | Path, slug: str) -> Path:
    return paper_dir(results_dir, slug) / "runs"


def read_status(run_dir: Path) -> dict:
    path = run_dir / "status.json"
    return json.loads(path.read_text()) if path.exists() else {"status": "missing"}


def write_status(run_dir: Path, **status: object) -> None:
    tmp = run_dir / "status.json.tmp"
    tmp.write_text(json.dumps(status, indent=2, default=str))
    tmp.replace(run_dir / "status.json")


def write_rows(run_dir: Path, rows: list[dict]) -> None:
    write_csv(run_dir / "rows.csv", rows)


def write_csv(path: Path, rows: list[dict]) -> None:
    """Atomically: a uniquely named temporary file, then a rename (concurrent writers never clash)."""
    import os
    import uuid

    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    pd.DataFrame(rows).to_csv(tmp, index=False)
    tmp.replace(path)


def write_unit(path: Path, rows: list[dict]) -> None:
    write_csv(path, rows)


def read_unit(path: Path) -> list[dict]:
    return pd.read_csv(path).to_dict("records")


def finished_units(run_dir: Path) -> set[str]:
    """Names of the units whose rows are stored in the run directory."""
    return {p.name[: -len(".csv")].replace("__", "/") for p in (run_dir / "units").glob("*.csv")}


def rows_in_grid_order(run_dir: Path, grid: list) -> list[dict]:
    rows = []
    for u in grid:
        rows += read_unit(run_dir / "units" / f"{u.file_stem}.csv")
    return rows


def finished_runs(results_dir: str | Path, slug: str, scale: str, defaults: str | None = None) -> list[Path]:
    """Run dirs of this paper at this scale whose status is done (and made from the current default
    config when `defaults` is given), oldest first."""
    root = runs_dir(results_dir, slug)
    if not root.exists():
        return []
    runs = []
    for run_dir in sorted(root.iterdir()):
        status = read_status(run_dir)
        current = defaults is None or status.get("defaults_hash") == defaults
        if status.get("status") == "done" and status.get("scale") == scale and current:
            runs.append(run_dir)
    return runs


def _overrides(run_dir: Path) -> dict[str, str]:
    path = run_dir / "overrides.yaml"
    items = OmegaConf.load(path) if path.exists() else []
    pairs = (str(item).split("=", 1) for item in items if "=" in str(item))
    return {key.lstrip("+~"): value for key, value in pairs}


def load_rows(results_dir: str | Path, slug: str, scale: str, defaults: str | None = None) -> pd.DataFrame:
    """All rows of the finished runs of a paper at a scale, as one long table.

    Overrides that differ between runs (a sweep over ``model.pe_dim``, say) become columns, so that
    tables group by them; the root seed never does, since replicates are averaged over.
    """
    frames, overrides = [], {}
    for run_dir in finished_runs(results_dir, slug, scale, defaults):
        rows_path = run_dir / "rows.csv"
        if not rows_path.exists() or rows_path.stat().st_size == 0:
            continue
        frame = pd.read_csv(rows_path)
        frame["run_id"] = run_dir.name
        frame["scale"] = scale
        frame["device"] = str(read_status(run_dir).get("device", "cpu")).split(":")[0]
        frames.append(frame)
        overrides[run_dir.name] = _overrides(run_dir)
    if not frames:
        return pd.DataFrame()
    rows = pd.concat(frames, ignore_index=True)
    ignored = {"paper", "scale", "seed", "device", *NON_IDENTITY_KEYS}
    if rows["device"].nunique() > 1:  # a CPU run and a CUDA run of a seed are not two replicates
        overrides = {r: {**o, "device": str(rows.loc[rows.run_id == r, "device"].iloc[0])}
                     for r, o in overrides.items()}
        ignored.discard("device")
    keys = sorted({k for o in overrides.values() for k in o} - ignored)
    swept = [key for key in keys if len({o.get(key) for o in overrides.values()}) > 1]
    for key in swept:
        rows[key] = rows["run_id"].map(lambda r, key=key: overrides[r].get(key, "default"))
    rows.attrs["sweep_columns"] = swept
    # Runs that differ from the paper's default config only by seed (and where or how they ran): the
    # runs a verdict may pool. A sweep's other runs are tabled beside them, never averaged into a verdict.
    rows.attrs["default_runs"] = sorted(r for r, o in overrides.items() if not set(o) - ignored - {"device"})
    return rows


def total_times(results_dir: str | Path, slug: str, scale: str, defaults: str | None = None) -> tuple[float, float]:
    """Wall and CPU seconds summed over the finished runs (CPU time is 0 for runs that predate recording it)."""
    statuses = [read_status(r) for r in finished_runs(results_dir, slug, scale, defaults)]
    return sum(s.get("wall_time_s", 0.0) for s in statuses), sum(s.get("cpu_time_s", 0.0) for s in statuses)
