"""Claims: a paper's statement, its reported number, and a predicate checked over result rows.

A claim in conf/paper/<slug>.yaml::

    - id: spe_bounded
      statement: SPE's sensitivity stays bounded as the perturbation shrinks
      paper: "bounded (Theorem 3.1)"          # the paper's number or statement
      ref: "Sec. 3, Thm 3.1"                   # where it stands in the paper
      check: {kind: slope, x: eps, y: ratio, where: {method: spe}, log: true, within: [-0.2, 0.2]}
      scale: paper                              # optional: only checkable on scale=paper rows

Check kinds (``where`` filters rows by equality, or membership when given a list):

- ``compare``:   agg(metric | a) <op> factor * agg(metric | b)
- ``threshold``: agg(metric | where) <op> value
- ``slope``:     least-squares slope of y on x (log10-log10 when ``log``) lies ``within`` [lo, hi]
                 (null for an open end); the 95% confidence interval is reported beside it
- ``order``:     agg(metric) over the values of column ``by`` is increasing in the listed ``order``

``agg`` is mean (default), median, max or min over the selected rows (seeds, settings).
Every verdict is holds / does not hold / not run (no rows selected) with the numbers that decided it.
"""

import operator
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats

from repro.core.errors import ConfigError

OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
AGGS = {"mean": np.mean, "median": np.median, "max": np.max, "min": np.min}
HOLDS, FAILS, NOT_RUN = "holds", "does not hold", "not run"


@dataclass
class Verdict:
    id: str
    statement: str
    status: str
    ours: str
    paper: str
    ref: str

    def as_dict(self) -> dict:
        return asdict(self)


class _NotRun(Exception):
    pass


def select(rows: pd.DataFrame, where: dict | None) -> pd.DataFrame:
    """Rows matching every key of `where` (equality, or membership for lists)."""
    mask = pd.Series(True, index=rows.index)
    for key, value in (where or {}).items():
        if key not in rows.columns:
            raise _NotRun(f"no column {key!r} in the rows")
        values = list(value) if isinstance(value, list | tuple) else [value]
        column = rows[key]
        mask &= column.isin(values) | column.astype(str).isin([str(v) for v in values])
    return rows[mask]


def _values(rows: pd.DataFrame, metric: str, where: dict | None) -> np.ndarray:
    if metric not in rows.columns:
        raise _NotRun(f"no column {metric!r} in the rows")
    values = select(rows, where)[metric].dropna().to_numpy(dtype=float)
    if values.size == 0:
        raise _NotRun(f"no rows with {metric} where {where}")
    return values


def _describe(where: dict | None) -> str:
    return ",".join(f"{k}={v}" for k, v in (where or {}).items()) or "all"


def _compare(rows: pd.DataFrame, check: dict) -> tuple[bool, str]:
    agg = AGGS[check.get("agg", "mean")]
    a = agg(_values(rows, check["metric"], check.get("a")))
    b = agg(_values(rows, check["metric"], check.get("b")))
    factor = float(check.get("factor", 1.0))
    op = check.get("op", "<")
    scaled = f"{factor:g} x " if factor != 1.0 else ""
    text = (f"{check['metric']}: {a:.4g} [{_describe(check.get('a'))}] {op} "
            f"{scaled}{b:.4g} [{_describe(check.get('b'))}]")
    return bool(OPS[op](a, factor * b)), text


def _threshold(rows: pd.DataFrame, check: dict) -> tuple[bool, str]:
    name = check.get("agg", "mean")
    value = AGGS[name](_values(rows, check["metric"], check.get("where")))
    op, bound = check.get("op", "<"), float(check["value"])
    text = f"{name} {check['metric']} [{_describe(check.get('where'))}] = {value:.4g} {op} {bound:g}"
    return bool(OPS[op](value, bound)), text


def fit_slope(x: np.ndarray, y: np.ndarray, log: bool) -> tuple[float, float, float]:
    """Least-squares slope of y on x and its 95% confidence interval (lo, hi); on log-log axes points with
    x <= 0 or y <= 0 cannot be placed and are left out (``_slope`` reports how many)."""
    if log:
        keep = (x > 0) & (y > 0)
        x, y = np.log10(x[keep]), np.log10(y[keep])
    if x.size < 3 or np.ptp(x) == 0:
        raise _NotRun("fewer than 3 distinct points to fit a slope")
    fit = stats.linregress(x, y)
    half = stats.t.ppf(0.975, x.size - 2) * fit.stderr
    return float(fit.slope), float(fit.slope - half), float(fit.slope + half)


def _slope(rows: pd.DataFrame, check: dict) -> tuple[bool, str]:
    chosen = select(rows, check.get("where"))
    for column in (check["x"], check["y"]):
        if column not in chosen.columns:
            raise _NotRun(f"no column {column!r} in the rows")
    chosen = chosen[[check["x"], check["y"]]].dropna()
    x, y = chosen[check["x"]].to_numpy(float), chosen[check["y"]].to_numpy(float)
    slope, lo, hi = fit_slope(x, y, bool(check.get("log", False)))
    dropped = int(((x <= 0) | (y <= 0)).sum()) if check.get("log") else 0
    low, high = (float("-inf") if b is None else float(b) for b in check["within"])
    kind = "log-log slope" if check.get("log") else "slope"
    text = (f"{kind} of {check['y']} on {check['x']} [{_describe(check.get('where'))}] = {slope:.3f} "
            f"(95% CI {lo:.3f} to {hi:.3f}); expected within [{low:g}, {high:g}]"
            + (f"; {dropped} non-positive points left out of the log-log fit" if dropped else ""))
    return low <= slope <= high, text


def _order(rows: pd.DataFrame, check: dict) -> tuple[bool, str]:
    agg = AGGS[check.get("agg", "mean")]
    means = [agg(_values(rows, check["metric"], {**(check.get("where") or {}), check["by"]: level}))
             for level in check["order"]]
    text = f"{check['metric']}: " + " <= ".join(f"{lvl} {m:.4g}" for lvl, m in zip(check["order"], means))
    return all(a <= b for a, b in zip(means, means[1:])), text


KINDS = {"compare": _compare, "threshold": _threshold, "slope": _slope, "order": _order}
REQUIRED = {"compare": ("metric", "a", "b"), "threshold": ("metric", "value"), "slope": ("x", "y", "within"),
            "order": ("metric", "by", "order")}


def validate_claim(claim: dict) -> None:
    """Raise ConfigError when a claim is malformed (checked by the config integrity test, no rows needed)."""
    for key in ("id", "statement", "paper", "ref", "check"):
        if key not in claim:
            raise ConfigError(f"claim {claim.get('id', '?')}: missing key {key!r}")
    check = claim["check"]
    kind = check.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"claim {claim['id']}: check kind {kind!r} is not one of {sorted(KINDS)}")
    missing = [k for k in REQUIRED[kind] if k not in check]
    if missing:
        raise ConfigError(f"claim {claim['id']}: {kind} check needs {missing}")
    if check.get("op", "<") not in OPS or check.get("agg", "mean") not in AGGS:
        raise ConfigError(f"claim {claim['id']}: op must be one of {list(OPS)}, agg one of {list(AGGS)}")


def evaluate_claim(claim: dict, rows: pd.DataFrame) -> Verdict:
    validate_claim(claim)
    base = {"id": claim["id"], "statement": claim["statement"], "paper": str(claim["paper"]),
            "ref": str(claim["ref"])}
    if rows.empty:
        return Verdict(status=NOT_RUN, ours="no stored results at this scale", **base)
    check = claim["check"]
    try:
        holds, text = KINDS[check["kind"]](rows, check)
    except _NotRun as reason:
        return Verdict(status=NOT_RUN, ours=str(reason), **base)
    return Verdict(status=HOLDS if holds else FAILS, ours=text, **base)


def evaluate_claims(claims: list[dict], rows: pd.DataFrame) -> list[Verdict]:
    return [evaluate_claim(claim, rows) for claim in claims]
