"""`repro <subcommand> [hydra overrides]`: list, train, table, figures, check."""

import sys
from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

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
"""


def papers() -> list[dict]:
    """The registry: every conf/paper/*.yaml, read as plain YAML (no paper code is imported)."""
    found = []
    for path in sorted((CONF_DIR / "paper").glob("*.yaml")):
        meta = OmegaConf.load(path)
        found.append({"slug": path.stem, "title": str(meta.get("title", "")), "field": str(meta.get("field", ""))})
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
    print(f"{'slug':<20} {'field':<34} {'verdicts':<28} title")
    for paper in papers():
        path = results_dir / paper["slug"] / "verdicts.json"
        verdicts = "not run"
        if path.exists():
            record = json.loads(path.read_text())
            statuses = [v["status"] for v in record["verdicts"]]
            verdicts = (f"{statuses.count('holds')}/{len(statuses)} hold ({record['scale']})"
                        if statuses else f"no claims ({record['scale']})")
        print(f"{paper['slug']:<20} {paper['field'][:33]:<34} {verdicts:<28} {paper['title']}")
    return 0


def _train(cfg: DictConfig) -> object:
    from repro.core.runner import train

    return train(cfg)


def _report(cfg: DictConfig, draw: bool) -> tuple:
    from repro.core import report, store
    from repro.core.runner import defaults_config

    defaults_hash = store.defaults_hash(defaults_config(cfg))
    rows = report.paper_rows(cfg, defaults_hash)
    if rows.empty:
        print(f"no finished {cfg.scale.name}-scale runs of {cfg.paper.slug} under {cfg.results_dir}; "
              f"run `repro train paper={cfg.paper.slug} scale={cfg.scale.name}` first", file=sys.stderr)
    if draw and not rows.empty:
        from repro.core.figures import save_figure
        from repro.core.registry import figure_functions

        out = store.paper_dir(cfg.results_dir, cfg.paper.slug) / "figures"
        for name, draw_figure in figure_functions(cfg.paper).items():
            for path in save_figure(draw_figure(rows), out, name):
                print(path)
    found = report.verdicts(cfg, rows)
    made = report.write_table_files(cfg, rows)
    wall, cpu = store.total_times(cfg.results_dir, cfg.paper.slug, cfg.scale.name, defaults_hash)
    report.write_verdicts(cfg, found, wall, cpu)
    report.write_paper_readme(cfg, rows, found, wall)
    report.write_suite_summary(cfg.results_dir, papers())
    return made, found


def _table(cfg: DictConfig) -> None:
    from repro.core.table import to_markdown

    made, _ = _report(cfg, draw=False)
    for name, table in made:
        print(f"\n## {cfg.paper.slug}: {name} (scale={cfg.scale.name})\n")
        print(to_markdown(table))


def _figures(cfg: DictConfig) -> None:
    _report(cfg, draw=True)


def _check(cfg: DictConfig) -> None:
    _, found = _report(cfg, draw=False)
    for verdict in found:
        print(f"[{verdict.status:^13}] {verdict.id}: {verdict.statement}\n"
              f"                ours:  {verdict.ours}\n"
              f"                paper: {verdict.paper} ({verdict.ref})")


COMMANDS: dict[str, Callable[[DictConfig], object]] = {
    "train": _train, "table": _table, "figures": _figures, "check": _check}


def _guarded(command: Callable[[DictConfig], object]) -> Callable[[DictConfig], object]:
    """In a single run, a ReproError prints one line and exits 2. In a multirun it propagates, so the
    launcher records the job as failed, the other jobs go on, and the sweep exits non-zero."""
    def job(cfg: DictConfig) -> object:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        try:
            return command(cfg)
        except ReproError as error:
            if HydraConfig.get().mode == RunMode.MULTIRUN:
                raise
            print(f"repro: error: {error}", file=sys.stderr)
            sys.exit(2)

    return job


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
    import hydra

    sys.argv = [f"repro {name}", *rest]
    app = hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")(_guarded(COMMANDS[name]))
    app()
    return 0


if __name__ == "__main__":
    sys.exit(main())
