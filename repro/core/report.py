"""Per-paper reports (results/<slug>/README.md, table.csv, verdicts.json) and the suite summary."""

import json
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from repro.core import store
from repro.core.claims import Verdict, evaluate_claims
from repro.core.table import summarize, to_markdown, wide


def paper_rows(cfg: DictConfig, defaults_hash: str) -> pd.DataFrame:
    return store.load_rows(cfg.results_dir, cfg.paper.slug, cfg.scale.name, defaults_hash)


def tables(cfg: DictConfig, rows: pd.DataFrame) -> list[tuple[str, pd.DataFrame, pd.DataFrame]]:
    """(name, long summary, display table) for each table the paper declares."""
    out = []
    for spec in OmegaConf.to_container(cfg.paper.get("tables", []), resolve=True):
        summary = summarize(rows, spec)
        out.append((spec["name"], summary, wide(summary, spec)))
    return out


def verdicts(cfg: DictConfig, rows: pd.DataFrame) -> list[Verdict]:
    return evaluate_claims(OmegaConf.to_container(cfg.paper.get("claims", []), resolve=True), rows)


def write_table_files(cfg: DictConfig, rows: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    out_dir = store.paper_dir(cfg.results_dir, cfg.paper.slug)
    out_dir.mkdir(parents=True, exist_ok=True)
    made = tables(cfg, rows)
    long = [summary.assign(table=name) for name, summary, _ in made if not summary.empty]
    (pd.concat(long, ignore_index=True) if long else pd.DataFrame()).to_csv(out_dir / "table.csv", index=False)
    if cfg.get("latex"):
        (out_dir / "table.tex").write_text("\n".join(t.to_latex(index=False) for _, _, t in made))
    return [(name, table) for name, _, table in made]


def write_verdicts(cfg: DictConfig, found: list[Verdict], wall_time_s: float, cpu_time_s: float) -> None:
    out_dir = store.paper_dir(cfg.results_dir, cfg.paper.slug)
    out_dir.mkdir(parents=True, exist_ok=True)
    record = {"scale": cfg.scale.name, "wall_time_s": round(wall_time_s, 1), "cpu_time_s": round(cpu_time_s, 1),
              "verdicts": [v.as_dict() for v in found]}
    (out_dir / "verdicts.json").write_text(json.dumps(record, indent=2) + "\n")


def verdict_markdown(found: list[Verdict]) -> str:
    lines = ["| claim | verdict | ours | paper | where |", "|---|---|---|---|---|"]
    for v in found:
        lines.append(f"| **{v.id}**: {v.statement} | {v.status} | {v.ours} | {v.paper} | {v.ref} |")
    return "\n".join(lines) + "\n"


def write_paper_readme(cfg: DictConfig, rows: pd.DataFrame, found: list[Verdict], wall_time_s: float) -> Path:
    out_dir = store.paper_dir(cfg.results_dir, cfg.paper.slug)
    runs = rows["run_id"].nunique() if "run_id" in rows else 0
    parts = [f"# {cfg.paper.slug}: {cfg.paper.title}\n",
             f"Scale `{cfg.scale.name}`, {runs} run(s), {wall_time_s:.0f} s of wall time. "
             f"Regenerate with `repro train paper={cfg.paper.slug}` then `repro table`, `repro figures` "
             f"and `repro check` (or `python scripts/reproduce_all.py --paper {cfg.paper.slug}`).\n",
             "## Claims\n", verdict_markdown(found)]
    for name, _, table in tables(cfg, rows):
        parts += [f"## Table: {name}\n", "Ours: mean ± std over seeds; `(paper)`: the paper's number.\n",
                  to_markdown(table)]
    figures = sorted((out_dir / "figures").glob("*.png"))
    if figures:
        parts.append("## Figures\n")
        parts += [f"![{p.stem}](figures/{p.name})\n" for p in figures]
    path = out_dir / "README.md"
    path.write_text("\n".join(parts))
    return path


def write_suite_summary(results_dir: str | Path, papers: list[dict]) -> Path:
    """results/README.md: one row per paper with the scale it was run at, verdict counts and wall time."""
    lines = ["# Results\n", "Verdicts of each paper's claims from its stored runs (regenerate with "
             "`python scripts/reproduce_all.py`).\n",
             "Wall time is that of the stored runs; CPU time (of the run's main process) is the better guide "
             "when the machine was shared.\n",
             "| paper | title | scale | holds | does not hold | not run | wall time (s) | CPU time (s) |",
             "|---|---|---|---|---|---|---|---|"]
    for paper in papers:
        path = Path(results_dir) / paper["slug"] / "verdicts.json"
        if not path.exists():
            lines.append(f"| {paper['slug']} | {paper['title']} | — | — | — | — | — | — |")
            continue
        record = json.loads(path.read_text())
        counts = {s: sum(v["status"] == s for v in record["verdicts"]) for s in ("holds", "does not hold", "not run")}
        lines.append(f"| [{paper['slug']}]({paper['slug']}/README.md) | {paper['title']} | {record['scale']} | "
                     f"{counts['holds']} | {counts['does not hold']} | {counts['not run']} | "
                     f"{record['wall_time_s']:.0f} | {record.get('cpu_time_s', 0):.0f} |")
    path = Path(results_dir) / "README.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path
