"""Per-paper reports (README.md, table.csv, verdicts.json, figures) and the suite summary.

Reports of the canonical cpu scale go to results/<slug>/; those of other scales to
results/<slug>/scale-<scale>/, so that a smoke run never overwrites the committed results.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from repro.core import store
from repro.core.claims import STATUSES, Verdict, count, count_text, evaluate_claims
from repro.core.errors import ReproError
from repro.core.table import summarize, to_markdown, wide


@dataclass
class Report:
    verdicts: list[Verdict]
    tables: list[tuple[str, pd.DataFrame]]
    paths: list[Path] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)   # runs not pooled, and why


def paper_rows(cfg: DictConfig, defaults_hash: str, code: str | None = None) -> pd.DataFrame:
    """Rows of the finished runs made from the current default config and, when given, the current code."""
    return store.load_rows(cfg.results_dir, cfg.paper.slug, cfg.scale.name, defaults_hash, code)


def verdict_rows(rows: pd.DataFrame, default_device: str) -> pd.DataFrame:
    """The rows a verdict pools: the paper's default config (any seed), on one device."""
    if rows.empty:
        return rows
    chosen = rows[rows["run_id"].isin(rows.attrs.get("default_runs", []))]
    devices = chosen["device"].unique() if "device" in chosen else []
    if len(devices) > 1:
        keep = default_device if default_device in devices else sorted(devices)[0]
        chosen = chosen[chosen["device"] == keep]
    return chosen


def tables(cfg: DictConfig, rows: pd.DataFrame) -> list[tuple[str, pd.DataFrame, pd.DataFrame]]:
    """(name, long summary, display table) for each table the paper declares."""
    out = []
    for spec in OmegaConf.to_container(cfg.paper.get("tables", []), resolve=True):
        summary = summarize(rows, spec)
        out.append((spec["name"], summary, wide(summary, spec)))
    return out


def verdicts(cfg: DictConfig, rows: pd.DataFrame) -> list[Verdict]:
    device = "cuda" if str(cfg.device).startswith("cuda") else "cpu"
    claims = OmegaConf.to_container(cfg.paper.get("claims", []), resolve=True)
    return evaluate_claims(claims, verdict_rows(rows, device), str(cfg.scale.name))


def refresh(cfg: DictConfig, draw: bool) -> Report:
    """Tables, verdicts (and figures when ``draw``) of a paper at a scale from its stored runs."""
    from repro.core.runner import defaults_config

    defaults_hash = store.defaults_hash(defaults_config(cfg))
    code = store.code_hash(str(cfg.paper.task))
    rows = paper_rows(cfg, defaults_hash, code)
    out_dir = store.report_dir(cfg.results_dir, cfg.paper.slug, cfg.scale.name)
    if rows.empty and (out_dir / "verdicts.json").exists():
        # Never replace a report with one of "not run" verdicts because the runs it came from are stale.
        left_out = store.other_runs(cfg.results_dir, cfg.paper.slug, cfg.scale.name, code)
        raise ReproError(f"{cfg.paper.slug}: no finished {cfg.scale.name}-scale run made by the current code and "
                         f"config ({len(left_out)} left out: {'; '.join(left_out) or 'none stored'}); run "
                         f"`repro train paper={cfg.paper.slug} scale={cfg.scale.name}` to refresh {out_dir} "
                         "(left unchanged)")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    if draw and not rows.empty:
        from repro.core.figures import save_figure
        from repro.core.registry import figure_functions

        for name, draw_figure in figure_functions(cfg.paper).items():
            paths += save_figure(draw_figure(rows), out_dir / "figures", name)
    found = verdicts(cfg, rows)
    made = tables(cfg, rows)
    long = [summary.assign(table=name) for name, summary, _ in made if not summary.empty]
    (pd.concat(long, ignore_index=True) if long else pd.DataFrame()).to_csv(out_dir / "table.csv", index=False)
    paths.append(out_dir / "table.csv")
    if cfg.get("latex"):
        (out_dir / "table.tex").write_text("\n".join(t.to_latex(index=False) for _, _, t in made))
        paths.append(out_dir / "table.tex")
    wall, cpu = store.total_times(cfg.results_dir, cfg.paper.slug, cfg.scale.name, defaults_hash)
    record = {"scale": cfg.scale.name, "wall_time_s": round(wall, 1), "cpu_time_s": round(cpu, 1),
              "counts": count(found), "verdicts": [v.as_dict() for v in found]}
    (out_dir / "verdicts.json").write_text(json.dumps(record, indent=2) + "\n")
    paths.append(out_dir / "verdicts.json")
    paths.append(write_paper_readme(cfg, out_dir, rows, made, found, wall))
    from repro.cli import papers

    write_suite_summary(cfg.results_dir, papers())
    left_out = store.other_runs(cfg.results_dir, cfg.paper.slug, cfg.scale.name, code)
    return Report(found, [(name, table) for name, _, table in made], paths, left_out)


def verdict_markdown(found: list[Verdict]) -> str:
    lines = [f"Verdicts: {count_text(count(found))}.\n",
             "| claim | verdict | ours (95% interval over replicates) | paper | suite's criterion | where |",
             "|---|---|---|---|---|---|"]
    for v in found:
        lines.append(f"| **{v.id}**: {v.statement} | {v.status} | {v.ours} | {v.paper} | {v.criterion} | {v.ref} |")
    return "\n".join(lines) + "\n"


def write_paper_readme(cfg: DictConfig, out_dir: Path, rows: pd.DataFrame, made: list, found: list[Verdict],
                       wall_time_s: float) -> Path:
    """README.md of a scale: an optional hand-written preface (``PREFACE.md`` beside it), then the report."""
    runs = sorted(rows["run_id"].unique()) if "run_id" in rows else []
    pooled = sorted({r for v in found for r in v.runs})
    preface = out_dir / "PREFACE.md"
    parts = [f"# {cfg.paper.slug}: {cfg.paper.title}\n"]
    if preface.exists():
        parts.append(preface.read_text())
    parts += [f"## Results at scale `{cfg.scale.name}`\n",
              f"{len(runs)} run(s), {wall_time_s:.0f} s of wall time. Verdicts pool the run(s) "
              f"{', '.join(f'`{r}`' for r in pooled) or '—'} (the default config; other runs are tabled only). "
              f"Regenerate with `repro train paper={cfg.paper.slug} scale={cfg.scale.name}` "
              f"(or `python scripts/reproduce_all.py --paper {cfg.paper.slug}`).\n",
              "## Claims\n", verdict_markdown(found)]
    for name, _, table in made:
        parts += [f"## Table: {name}\n", "Ours: mean ± std over replicates; `(paper)`: the paper's number.\n",
                  to_markdown(table)]
    figures = sorted((out_dir / "figures").glob("*.png"))
    if figures:
        parts.append("## Figures\n")
        parts += [f"![{p.stem}](figures/{p.name})\n" for p in figures]
    path = out_dir / "README.md"
    path.write_text("\n".join(parts))
    return path


def write_suite_summary(results_dir: str | Path, papers: list[dict]) -> Path:
    """results/README.md: one row per paper with its cpu-scale verdict counts and times."""
    header = " | ".join(STATUSES)
    lines = ["# Results\n", "Verdicts of each paper's claims from its stored cpu-scale runs (regenerate with "
             "`python scripts/reproduce_all.py`).\n",
             "Wall time is that of the stored runs; CPU time is the better guide when the machine was shared.\n",
             f"| paper | title | scale | {header} | wall time (s) | CPU time (s) |",
             "|---|---|---|" + "---|" * len(STATUSES) + "---|---|"]
    totals = dict.fromkeys(STATUSES, 0)
    for paper in papers:
        path = Path(results_dir) / paper["slug"] / "verdicts.json"
        if not path.exists():
            lines.append(f"| {paper['slug']} | {paper['title']} | — |" + " — |" * len(STATUSES) + " — | — |")
            continue
        record = json.loads(path.read_text())
        counts = count(record["verdicts"])
        totals = {s: totals[s] + counts[s] for s in STATUSES}
        cells = " | ".join(str(counts[s]) for s in STATUSES)
        lines.append(f"| [{paper['slug']}]({paper['slug']}/README.md) | {paper['title']} | {record['scale']} | "
                     f"{cells} | {record['wall_time_s']:.0f} | {record.get('cpu_time_s', 0):.0f} |")
    lines.append(f"\nAll papers: {count_text(totals)}.")
    path = Path(results_dir) / "README.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path
