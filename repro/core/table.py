"""Tables of our numbers (mean ± std over seeds) beside the paper's, from a paper's result rows.

A table in conf/paper/<slug>.yaml::

    tables:
      - name: cycles
        index: [method]                     # one table row per value (sweep columns are added)
        metrics: [test/mae, ood/mae]        # one column per metric
        where: {task: cycles}               # optional row filter
        reported: {spe: {test/mae: 0.069}}  # optional: the paper's numbers, keyed by the index value
"""

import numpy as np
import pandas as pd

from repro.core.claims import select
from repro.core.errors import ConfigError

# Columns of the long summary besides the index; an index column must not reuse these names.
SUMMARY_COLUMNS = ("metric", "mean", "std", "n_rows", "paper")
ABSENT = "—"   # an index cell of a row that has no value for that column


def sweep_columns(rows: pd.DataFrame, spec: dict) -> list[str]:
    """Columns added by the store for overrides that vary across runs (see store.load_rows)."""
    return [c for c in rows.attrs.get("sweep_columns", []) if c not in spec["index"]]


def summarize(rows: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """Long table: one line per (index values, metric) with mean, std, n_rows and the paper's number."""
    clash = set(spec["index"]) & set(SUMMARY_COLUMNS)
    if clash:
        raise ConfigError(f"table {spec.get('name')!r}: index columns {sorted(clash)} clash with the summary's "
                          f"own columns {SUMMARY_COLUMNS}; rename them in the rows")
    where = spec.get("where") or {}
    if rows.empty or not set(where) <= set(rows.columns):
        return pd.DataFrame(columns=[*spec["index"], *SUMMARY_COLUMNS])
    chosen = select(rows, where)
    metrics = [m for m in spec["metrics"] if m in chosen.columns]
    if chosen.empty or not metrics:
        return pd.DataFrame(columns=[*spec["index"], *SUMMARY_COLUMNS])
    keys = [*spec["index"], *sweep_columns(chosen, spec)]
    # A row without a value for an index column (a baseline with no `m`, say) is shown with a dash there
    # instead of being dropped by the grouping.
    chosen = chosen.assign(**{key: chosen[key].astype(object).where(chosen[key].notna(), ABSENT)
                              if key in chosen.columns else ABSENT
                              for key in keys if key not in chosen.columns or chosen[key].isna().any()})
    long = chosen.melt(id_vars=keys, value_vars=metrics, var_name="metric").dropna(subset=["value"])
    stats = long.groupby([*keys, "metric"], sort=False)["value"].agg(["mean", "std", "count"]).reset_index()
    stats = stats.rename(columns={"count": "n_rows"})
    stats["std"] = stats["std"].fillna(0.0)
    reported = spec.get("reported") or {}

    def paper_value(line: pd.Series) -> float:
        label = "/".join(str(line[k]) for k in spec["index"])
        return float((reported.get(label) or {}).get(line["metric"], np.nan))

    stats["paper"] = stats.apply(paper_value, axis=1) if len(stats) else []
    return stats


def _fmt(mean: float, std: float, n: int) -> str:
    return f"{mean:.4g} ± {std:.2g}" if n > 1 else f"{mean:.4g}"


def wide(summary: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """Display form: a row per index value, `metric` columns as 'mean ± std', and 'metric (paper)'."""
    if summary.empty:
        return pd.DataFrame()
    keys = [c for c in summary.columns if c not in SUMMARY_COLUMNS]
    summary = summary.assign(ours=[_fmt(m, s, n) for m, s, n in zip(summary["mean"], summary["std"],
                                                                    summary["n_rows"])])
    table = summary.pivot_table(index=keys, columns="metric", values="ours", aggfunc="first", sort=False)
    order = [m for m in spec["metrics"] if m in table.columns]
    table = table[order]
    if summary["paper"].notna().any():
        paper = summary.pivot_table(index=keys, columns="metric", values="paper", aggfunc="first", sort=False)
        for metric in order:
            column = paper[metric] if metric in paper.columns else pd.Series(np.nan, index=table.index)
            table[f"{metric} (paper)"] = column.reindex(table.index).map(lambda v: "—" if pd.isna(v) else f"{v:.4g}")
        table = table[[c for m in order for c in (m, f"{m} (paper)")]]
    return table.reset_index()


def _cell(value: object) -> str:
    """Integers stored as floats (a column with gaps) print as integers."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def to_markdown(table: pd.DataFrame) -> str:
    """A GitHub Markdown table (no optional `tabulate` dependency)."""
    if table.empty:
        return "_no rows_\n"
    header = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    body = ["| " + " | ".join(map(_cell, row)) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"
