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

from repro.core.errors import ReproError

# Keys that say where, whether or how fast to run, not what is computed: they do not change a run's identity.
# `unit` and `workers` choose which units run and how many at once: jobs of one grid share one run dir.
NON_IDENTITY_KEYS = ("results_dir", "data_dir", "force", "resume", "latex", "unit", "workers",
                     "loader_workers")
# Keys of a paper's config that say how its results are presented and judged, not what is computed: editing a
# claim or a figure re-judges the stored rows (`repro check`) instead of making a new run.
PRESENTATION_KEYS = ("title", "field", "arxiv", "code", "tables", "figures", "claims", "optimized_metric")
# Wall-clock measurements differ between identical runs; everything else must not. They are named so:
# a `time` or `speedup` word (`train_time_s`, `time_exponent`, `alg3_speedup_x`) or a rate (`points_per_s`).
TIMING_COLUMN = re.compile(r"(^|[_/])(time|speedup)([_/]|$)|_per_s$")


def is_timing_column(name: str) -> bool:
    return bool(TIMING_COLUMN.search(name))


def config_hash(cfg: DictConfig, exclude: tuple[str, ...] = ()) -> str:
    """Hash of the resolved config without the keys in NON_IDENTITY_KEYS (and `exclude`) and without the
    paper's PRESENTATION_KEYS."""
    container = OmegaConf.to_container(cfg, resolve=True)
    for key in (*NON_IDENTITY_KEYS, *exclude):
        container.pop(key, None)
    if isinstance(container.get("paper"), dict):
        for key in PRESENTATION_KEYS:
            container["paper"].pop(key, None)
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
    """The run's status.json; ``corrupt`` (with the reason) when it cannot be read, ``missing`` when absent."""
    path = run_dir / "status.json"
    if not path.exists():
        return {"status": "missing"}
    try:
        status = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        return {"status": "corrupt", "error": f"{path}: {error}"}
    return status if isinstance(status, dict) and "status" in status else {"status": "corrupt",
                                                                             "error": f"{path}: not a status record"}


def _unique_tmp(path: Path) -> Path:
    import os
    import uuid

    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def write_status(run_dir: Path, **status: object) -> None:
    import os
    import socket

    status.setdefault("pid", os.getpid())
    status.setdefault("host", socket.gethostname())
    tmp = _unique_tmp(run_dir / "status.json")
    tmp.write_text(json.dumps(status, indent=2, default=str))
    tmp.replace(run_dir / "status.json")


def refuse_symlinks(run_dir: Path) -> None:
    """A run directory holds only what repro wrote: a planted symbolic link would redirect a write."""
    if run_dir.is_symlink():
        raise ReproError(f"{run_dir} is a symbolic link; remove it (repro writes runs only into real directories)")
    if run_dir.exists():
        for path in run_dir.rglob("*"):
            if path.is_symlink():
                raise ReproError(f"{path} is a symbolic link that repro did not make; remove it and rerun")


def is_stale_running(status: dict) -> bool:
    """A run recorded as running whose process on this host is gone (killed, or the machine restarted)."""
    import os
    import socket

    if status.get("status") != "running" or status.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(status.get("pid", 0)), 0)
    except (ProcessLookupError, ValueError):
        return True
    except PermissionError:
        return False
    return int(status.get("pid", 0)) <= 0


def write_rows(run_dir: Path, rows: list[dict]) -> str:
    return write_csv(run_dir / "rows.csv", rows)


def write_csv(path: Path, rows: list[dict]) -> str:
    """Atomically (a uniquely named temporary file, then a rename: concurrent writers never clash, and a
    planted link at ``path`` is replaced, not followed); returns the file's SHA-256."""
    tmp = _unique_tmp(path)
    pd.DataFrame(rows).to_csv(tmp, index=False)
    digest = file_sha256(tmp)
    tmp.replace(path)
    return digest


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_unit(path: Path, rows: list[dict]) -> None:
    """The unit's rows and, beside them, their count and hash (checked whenever they are read back)."""
    digest = write_csv(path, rows)
    seal = _unique_tmp(path.with_suffix(".json"))
    seal.write_text(json.dumps({"rows": len(rows), "sha256": digest}))
    seal.replace(path.with_suffix(".json"))


def verify(path: Path, expected_rows: int | None, expected_sha: str | None) -> pd.DataFrame:
    """Read a stored CSV, failing with its path when it was truncated, duplicated, edited or is undecodable."""
    fix = "delete it (or rerun with force=true) to recompute"
    if expected_sha is not None and file_sha256(path) != expected_sha:
        raise ReproError(f"{path} does not match the hash recorded when it was written (edited, truncated or "
                         f"duplicated); {fix}")
    try:
        frame = pd.read_csv(path)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as error:
        raise ReproError(f"{path} cannot be read as CSV ({error}); {fix}") from error
    if expected_rows is not None and len(frame) != expected_rows:
        raise ReproError(f"{path} has {len(frame)} rows, {expected_rows} were written; {fix}")
    return frame


def read_unit(path: Path) -> list[dict]:
    seal_path = path.with_suffix(".json")
    try:
        seal = json.loads(seal_path.read_text())
    except (OSError, ValueError) as error:
        raise ReproError(f"{seal_path} (the record of {path.name}) is missing or unreadable ({error}); "
                         "delete the unit's files to recompute it") from error
    return verify(path, seal.get("rows"), seal.get("sha256")).to_dict("records")


def finished_units(run_dir: Path) -> set[str]:
    """Names of the units whose rows are stored in the run directory."""
    return {p.name[: -len(".csv")].replace("__", "/") for p in (run_dir / "units").glob("*.csv")}


def rows_in_grid_order(run_dir: Path, grid: list) -> list[dict]:
    rows = []
    for u in grid:
        rows += read_unit(run_dir / "units" / f"{u.file_stem}.csv")
    return rows


def finished_runs(results_dir: str | Path, slug: str, scale: str, defaults: str | None = None,
                  code: str | None = None) -> list[Path]:
    """Run dirs of this paper at this scale whose status is done, made from the current default config
    (when `defaults` is given) and by the current code (when `code` is given), oldest first."""
    root = runs_dir(results_dir, slug)
    if not root.exists():
        return []
    runs = []
    for run_dir in sorted(p for p in root.iterdir() if p.is_dir() and "." not in p.name):
        status = read_status(run_dir)
        current = (defaults is None or status.get("defaults_hash") == defaults) and (
            code is None or status.get("code_hash") == code)
        if status.get("status") == "done" and status.get("scale") == scale and current:
            runs.append(run_dir)
    return runs


def other_runs(results_dir: str | Path, slug: str, scale: str, code: str) -> list[str]:
    """One line per run of this scale left out of the tables: stale code, unfinished, stale `running`."""
    root = runs_dir(results_dir, slug)
    notes = []
    for run_dir in sorted(p for p in root.iterdir() if p.is_dir()) if root.exists() else []:
        status = read_status(run_dir)
        if status.get("scale") not in (scale, None):
            continue
        if status["status"] == "done" and status.get("code_hash") != code:
            notes.append(f"{run_dir.name}: made by other code (left out; rerun it to refresh)")
        elif is_stale_running(status):
            notes.append(f"{run_dir.name}: recorded as running but its process is gone (stale; run the same "
                         "command to resume it)")
        elif status["status"] not in ("done",):
            notes.append(f"{run_dir.name}: {status['status']} (left out until it finishes)")
    return notes


def read_overrides(run_dir: Path) -> list[str]:
    """The stored command-line overrides, read as plain YAML strings: never interpolated or resolved."""
    import yaml

    path = run_dir / "overrides.yaml"
    if not path.exists():
        return []
    try:
        items = yaml.safe_load(path.read_text()) or []
    except yaml.YAMLError as error:
        raise ReproError(f"{path} is not valid YAML ({error}); delete the run directory {run_dir}") from error
    if not isinstance(items, list):
        raise ReproError(f"{path} is not a list of overrides; delete the run directory {run_dir}")
    return [str(item) for item in items]


def _overrides(run_dir: Path) -> dict[str, str]:
    pairs = (item.split("=", 1) for item in read_overrides(run_dir) if "=" in item)
    return {key.lstrip("+~"): value for key, value in pairs}


def load_rows(results_dir: str | Path, slug: str, scale: str, defaults: str | None = None,
              code: str | None = None) -> pd.DataFrame:
    """All rows of the finished runs of a paper at a scale, as one long table.

    Overrides that differ between runs (a sweep over ``model.pe_dim``, say) become columns, so that
    tables group by them; the root seed never does, since replicates are averaged over.
    """
    frames, overrides = [], {}
    for run_dir in finished_runs(results_dir, slug, scale, defaults, code):
        status = read_status(run_dir)
        rows_path = run_dir / "rows.csv"
        if not rows_path.exists():
            raise ReproError(f"{rows_path} is missing from a finished run; delete {run_dir} or rerun with force=true")
        frame = verify(rows_path, status.get("rows_total"), status.get("rows_sha256"))
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
