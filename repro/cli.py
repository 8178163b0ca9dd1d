"""`repro <subcommand> [hydra overrides]`: list, train, table, figures, check."""

import math
import sys
from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig

from repro import CONF_DIR, ROOT
from repro.core.errors import ReproError

USAGE = """usage: repro <subcommand> [key=value ...] [-m] [--cfg job] [--help]

subcommands:
  list                        every paper: slug, title, field, verdicts of its stored results
  train paper=<slug>          run the paper's experiment (scale=smoke|cpu|paper, seed=, device=, force=true)
  table paper=<slug>          ours (mean ± std over seeds) beside the paper's numbers
  figures paper=<slug>        redraw the paper's figures from stored results
  check paper=<slug>          does each claim hold in the stored results?

examples:
  repro train paper=spe
  repro train -m paper=spe seed=0,1,2 hydra/launcher=joblib
  repro check paper=spe scale=smoke
  repro train paper=hippo unit='delay/*' workers=2   # a subset of the grid, two units at a time
"""


def papers() -> list[dict]:
    """The registry: every conf/paper/*.yaml, its title and field read from the header lines (no YAML parse,
    no paper code imported: `repro list` stays as fast as a bare start-up)."""
    found = []
    for path in sorted((CONF_DIR / "paper").glob("*.yaml")):
        meta = {"slug": path.stem, "title": "", "field": ""}
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("title", "field"):
                    meta[key] = value.strip().strip('"')
                if meta["title"] and meta["field"]:
                    break
        found.append(meta)
    return found


def list_papers(args: list[str]) -> int:
    import json

    results_dir = ROOT / "results"
    for arg in args:
        if arg.startswith("results_dir="):
            results_dir = Path(arg.split("=", 1)[1])
        else:
            print(f"repro list: unknown argument {arg!r}; the only option is results_dir=<path>", file=sys.stderr)
            return 2
    print(f"{'slug':<20} {'field':<34} {'verdicts (holds/fails/inconclusive/not run)':<44} title")
    for paper in papers():
        path = results_dir / paper["slug"] / "verdicts.json"
        verdicts = "not run"
        if path.exists():
            try:
                record = json.loads(path.read_text())
                statuses = [v["status"] for v in record["verdicts"]]
            except (ValueError, KeyError, TypeError):
                verdicts = f"unreadable {path.name}"
            else:
                numbers = "/".join(str(statuses.count(s)) for s in
                                   ("holds", "does not hold", "inconclusive", "not run"))
                verdicts = f"{numbers} of {len(statuses)} ({record['scale']})"
        print(f"{paper['slug']:<20} {paper['field'][:33]:<34} {verdicts:<44} {paper['title']}")
    return 0


def _train(cfg: DictConfig) -> object:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from repro.core.runner import train

    result = train(cfg)
    if HydraConfig.get().mode != RunMode.MULTIRUN:
        report = _report(cfg, draw=True)
        for verdict in report.verdicts:
            print(f"[{verdict.status:^13}] {verdict.id}: {verdict.ours}")
        for path in report.paths:
            if path.suffix != ".pdf":
                print(f"wrote {path}")
    return result


def _report(cfg: DictConfig, draw: bool):
    from repro.core import report, store

    out = report.refresh(cfg, draw)
    for note in out.left_out:
        print(f"left out of the tables: {note}", file=sys.stderr)
    if not out.verdicts or all(v.status == "not run" for v in out.verdicts):
        runs = store.finished_runs(cfg.results_dir, cfg.paper.slug, cfg.scale.name)
        if not runs:
            print(f"no finished {cfg.scale.name}-scale runs of {cfg.paper.slug} under {cfg.results_dir}; "
                  f"run `repro train paper={cfg.paper.slug} scale={cfg.scale.name}` first", file=sys.stderr)
    return out


def _table(cfg: DictConfig) -> None:
    from repro.core.table import to_markdown

    out = _report(cfg, draw=False)
    for name, table in out.tables:
        print(f"\n## {cfg.paper.slug}: {name} (scale={cfg.scale.name})\n")
        print(to_markdown(table))


def _figures(cfg: DictConfig) -> None:
    out = _report(cfg, draw=True)
    for path in out.paths:
        print(path)


def _check(cfg: DictConfig) -> None:
    from repro.core.claims import count, count_text

    out = _report(cfg, draw=False)
    for verdict in out.verdicts:
        print(f"[{verdict.status:^13}] {verdict.id}: {verdict.statement}\n"
              f"                ours:      {verdict.ours}\n"
              f"                paper:     {verdict.paper} ({verdict.ref})\n"
              f"                criterion: {verdict.criterion}")
    print(f"{cfg.paper.slug} ({cfg.scale.name}): {count_text(count(out.verdicts))}")


COMMANDS: dict[str, Callable[[DictConfig], object]] = {
    "train": _train, "table": _table, "figures": _figures, "check": _check}


def _data_errors() -> tuple[type[BaseException], ...]:
    import json
    import pickle

    import yaml

    return (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, UnicodeDecodeError,
            json.JSONDecodeError, yaml.YAMLError, pickle.UnpicklingError, EOFError)


DATA_ERRORS = _data_errors()


def describe_data_error(error: BaseException) -> str:
    """One line for an unreadable or missing file: what went wrong, where, and what to do."""
    path = getattr(error, "filename", None) or getattr(error, "doc", None) and "a JSON file"
    where = f" in {path}" if path else ""
    return (f"{type(error).__name__}{where}: {error}; check or delete that file "
            "(a run directory is rebuilt by rerunning with force=true)")


def _guarded(name: str, command: Callable[[DictConfig], object]) -> Callable[[DictConfig], object]:
    """In a single run, a ReproError prints one line and exits 2. In a multirun each job leaves a record
    for the sweep manifest; a failing job is recorded, the other jobs go on, and the sweep exits non-zero."""
    def job(cfg: DictConfig) -> object:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        multirun = HydraConfig.get().mode == RunMode.MULTIRUN
        try:
            try:
                result = command(cfg)
            except DATA_ERRORS as error:
                raise ReproError(describe_data_error(error)) from error
        except KeyboardInterrupt:
            print("repro: interrupted; run the same command to resume", file=sys.stderr)
            sys.exit(130)
        except Exception as error:
            if multirun:
                # Recorded, not raised: Hydra's sweepers stop a sweep at a raised error. The sweep's end
                # lists the failures and exits non-zero; NaN marks the trial failed for Optuna.
                from repro.core.sweep import record_job

                record_job(cfg, name, None, error)
                print(f"repro: error in job {HydraConfig.get().job.num}: {type(error).__name__}: {error}",
                      file=sys.stderr)
                return math.nan
            if not isinstance(error, ReproError):
                raise
            print(f"repro: error: {error}", file=sys.stderr)
            sys.exit(2)
        if multirun:
            from repro.core.sweep import record_job

            record_job(cfg, name, result, None)
        return result

    return job


def root_keys() -> list[str]:
    """The top-level keys of conf/config.yaml (read as text: cheap), plus the config groups and hydra."""
    import re

    keys = re.findall(r"^([A-Za-z_]\w*):", (CONF_DIR / "config.yaml").read_text(), flags=re.MULTILINE)
    return [k for k in keys if k not in ("defaults", "hydra")] + ["paper", "scale", "hydra"]


def _unknown_choice(args: list[str]) -> str | None:
    """`paper=` is required and, like `scale=`, must name a config file (each value of a comma-separated sweep):
    one line with the choices instead of Hydra's multi-line listing."""
    given = {key: value for key, _, value in (a.partition("=") for a in args) if key in ("paper", "scale")}
    if "paper" not in given:
        return "which paper? add paper=<slug> (`repro list` shows them)"
    for group, value in given.items():
        choices = sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
        if "(" in value:          # a Hydra sweep expression such as glob(*) is Hydra's to expand
            continue
        unknown = [v for v in value.split(",") if v not in choices]
        if unknown:
            return f"unknown {group} {', '.join(unknown)}; choose from {', '.join(choices)}"
    return None


def _path_problem(args: list[str]) -> str | None:
    """results_dir= and data_dir= must be folders (or not exist yet): Hydra writes under results_dir first."""
    for key, _, value in (a.partition("=") for a in args):
        if key in ("results_dir", "data_dir") and Path(value).exists() and not Path(value).is_dir():
            return f"{key}={value} is a file, not a folder; pass a folder (it is created if missing)"
    return None


def _composition_problem(args: list[str]) -> str | None:
    """Compose the config with the overrides first (a sweep's lists aside), so that what Hydra would report in
    several lines (an unknown nested key, a malformed value) becomes one line with the fix."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    single = [a for a in args if "=" in a and not a.startswith("-") and "," not in a.partition("=")[2]
              and "(" not in a]
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            compose("config", overrides=single)
    except (HydraException, OmegaConfBaseException, ValueError) as error:
        first = next((line.strip() for line in str(error).splitlines() if line.strip()), str(error))
        if "not in struct" in str(error) or "Could not override" in first:
            key = first.split("'")[1] if first.count("'") >= 2 else first
            return (f"{key} is not a key of this configuration; `repro train paper=<slug> --cfg job` prints "
                    "every key")
        return f"{first} (check the override's spelling and value)"
    return None


def _misplaced_keys(args: list[str]) -> str | None:
    """A key of the paper given without its `paper.` prefix (``train.lr=...``) gets a hint naming the real key."""
    known = root_keys()
    for arg in args:
        if "=" not in arg or arg.startswith(("-", "+", "~")):
            continue
        key = arg.split("=", 1)[0]
        if key.split(".")[0].split("/")[0] not in known:
            return (f"{key} is not a root key ({', '.join(known[:-1])}); a paper's settings live under "
                    f"paper.: did you mean paper.{key}=...? (`repro train paper=<slug> --cfg job` lists them)")
    return None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    name, rest = args[0], args[1:]
    if name == "list":
        return list_papers(rest)
    if name not in COMMANDS:
        print(f"repro: unknown subcommand {name!r}; choose one of list, {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    if any(a in ("-h", "--help") for a in rest) and not any(a.startswith("paper=") for a in rest):
        print(USAGE)
        print("papers: " + ", ".join(p["slug"] for p in papers()))
        print(f"\n`repro {name} paper=<slug> --help` shows that paper's configuration groups and keys.")
        return 0
    problem = _misplaced_keys(rest) or _unknown_choice(rest) or _path_problem(rest) or _composition_problem(rest)
    if problem:
        print(f"repro: error: {problem}", file=sys.stderr)
        return 2
    import hydra

    sys.argv = [f"repro {name}", *rest]
    app = hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")(
        _guarded(name, COMMANDS[name]))
    app()
    return 0


if __name__ == "__main__":
    sys.exit(main())
