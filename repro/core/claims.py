"""Claims: a paper's statement, its own number or words, and a predicate decided over replicates.

A claim in conf/paper/<slug>.yaml::

    - id: spe_stable
      statement: SPE's sensitivity stays bounded as the perturbation shrinks
      paper: "bounded (Theorem 3.1)"           # only the paper's own number or words
      ref: "Sec. 3, Thm 3.1"                    # where it stands in the paper
      criterion: "log-log slope within ±0.1"    # optional: the suite's reading (derived from check if absent)
      check: {kind: slope, x: eps, y: ratio, where: {method: spe}, log: true, within: [-0.1, 0.1]}
      scale: paper                              # optional: decided only at that scale (or a list of scales)
      deterministic: true                       # optional: the quantity has no randomness (one value decides)

Check kinds (``where`` filters rows by equality, or membership when given a list):

- ``compare``:   agg(metric | a) <op> factor * agg(metric | b)
- ``threshold``: agg(metric | where) <op> value
- ``slope``:     least-squares slope of y on x (log10-log10 when ``log``) lies ``within`` [lo, hi]
                 (null for an open end)
- ``order``:     agg(metric) over the values of column ``by`` is non-decreasing in the listed ``order``

``agg`` (mean, median, max or min) reduces the selected rows of one replicate to one number; replicates
are the (run, replicate) pairs of the rows. The decisive quantity gets a 95% Student-t interval over
replicates (paired by replicate where both sides of a comparison have the same replicates):

- holds: the interval lies wholly on the claimed side (a slope interval wholly inside the window);
- does not hold: wholly on the other side (wholly outside the window);
- inconclusive: it straddles, a stochastic quantity has one replicate, or a unit it rests on did not
  finish training (``converged`` false);
- not run: no rows at this scale, or the claim belongs to another scale.

A quantity with zero spread over two or more replicates (or one marked ``deterministic``) decides exactly.
"""

import math
import operator
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from repro.core.errors import ConfigError

OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
AGGS = {"mean": np.mean, "median": np.median, "max": np.max, "min": np.min}
HOLDS, FAILS, INCONCLUSIVE, NOT_RUN = "holds", "does not hold", "inconclusive", "not run"
STATUSES = (HOLDS, FAILS, INCONCLUSIVE, NOT_RUN)
REPLICATE_KEYS = ("run_id", "replicate")


@dataclass
class Verdict:
    id: str
    statement: str
    status: str
    ours: str
    paper: str
    ref: str
    criterion: str = ""
    runs: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


class _NotRun(Exception):
    pass


@dataclass
class Interval:
    """A decisive quantity: estimate, 95% interval, replicates, and whether it varies at all."""

    estimate: float
    lo: float
    hi: float
    n: int
    exact: bool

    def text(self) -> str:
        if self.exact:
            return f"{self.estimate:.4g} (exact, n={self.n})"
        if self.n < 2:
            return f"{self.estimate:.4g} (one replicate, no interval)"
        return f"{self.estimate:.4g} (95% CI {self.lo:.4g} to {self.hi:.4g}, n={self.n})"


def mean_interval(values: np.ndarray, deterministic: bool = False) -> Interval:
    """Student-t 95% interval of the mean; zero spread (or a deterministic quantity) gives a point."""
    values = np.asarray(values, dtype=float)
    n = values.size
    mean = float(values.mean())
    spread = float(values.std(ddof=1)) if n > 1 else math.nan
    if deterministic or (n > 1 and spread == 0.0):
        return Interval(mean, mean, mean, n, True)
    if n < 2:
        return Interval(mean, -math.inf, math.inf, n, False)
    half = float(stats.t.ppf(0.975, n - 1)) * spread / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n, False)


def decide_sign(interval: Interval, op: str) -> str:
    """Does ``quantity <op> 0`` hold over the interval? (op one of <, <=, >, >=)."""
    if interval.exact:
        return HOLDS if OPS[op](interval.estimate, 0.0) else FAILS
    if interval.n < 2:
        return INCONCLUSIVE
    if op in ("<", "<="):
        return HOLDS if OPS[op](interval.hi, 0.0) else FAILS if not OPS[op](interval.lo, 0.0) else INCONCLUSIVE
    return HOLDS if OPS[op](interval.lo, 0.0) else FAILS if not OPS[op](interval.hi, 0.0) else INCONCLUSIVE


def decide_window(interval: Interval, low: float, high: float) -> str:
    """Does the quantity lie in [low, high]? Wholly inside holds, wholly outside fails."""
    if interval.exact:
        return HOLDS if low <= interval.estimate <= high else FAILS
    if low <= interval.lo and interval.hi <= high:
        return HOLDS
    if interval.hi < low or interval.lo > high:
        return FAILS
    return INCONCLUSIVE


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


def per_replicate(rows: pd.DataFrame, metric: str, where: dict | None, agg: str) -> pd.Series:
    """agg(metric) of the selected rows of each replicate, indexed by (run_id, replicate)."""
    if metric not in rows.columns:
        raise _NotRun(f"no column {metric!r} in the rows")
    chosen = select(rows, where)
    chosen = chosen[chosen[metric].notna()]
    if chosen.empty:
        raise _NotRun(f"no rows with {metric} where {_describe(where)}")
    keys = [k for k in REPLICATE_KEYS if k in chosen.columns]
    if not keys:
        return pd.Series([AGGS[agg](chosen[metric].to_numpy(float))])
    return chosen.groupby(keys)[metric].agg(lambda v: AGGS[agg](v.to_numpy(float)))


def _describe(where: dict | None) -> str:
    return ",".join(f"{k}={v}" for k, v in (where or {}).items()) or "all"


def _unconverged(rows: pd.DataFrame, wheres: list[dict | None]) -> list[str]:
    """Units among the selections whose training did not converge."""
    if "converged" not in rows.columns:
        return []
    found = []
    for where in wheres:
        chosen = select(rows, where)
        flags = chosen["converged"].astype(str).str.lower()
        found += sorted(set(chosen.loc[flags.isin(["false", "0", "0.0"]), "unit"].astype(str))
                        if "unit" in chosen else [])
    return sorted(set(found))


def difference(a: pd.Series, b: pd.Series, factor: float, deterministic: bool) -> Interval:
    """Interval of a - factor * b: paired over common replicates; a side with one value is a constant."""
    common = a.index.intersection(b.index)
    if len(common) == len(a) == len(b) and len(common) > 0:
        return mean_interval((a[common] - factor * b[common]).to_numpy(float), deterministic)
    if len(b) == 1:
        return mean_interval(a.to_numpy(float) - factor * float(b.iloc[0]), deterministic)
    if len(a) == 1:
        return mean_interval(float(a.iloc[0]) - factor * b.to_numpy(float), deterministic)
    # Unpaired: Welch's interval of the difference of means.
    ia, ib = mean_interval(a.to_numpy(float)), mean_interval(factor * b.to_numpy(float))
    est = ia.estimate - ib.estimate
    if ia.exact and ib.exact:
        return Interval(est, est, est, min(ia.n, ib.n), True)
    va, vb = a.var(ddof=1) / len(a), (factor ** 2) * b.var(ddof=1) / len(b)
    dof = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    half = float(stats.t.ppf(0.975, dof)) * math.sqrt(va + vb)
    return Interval(est, est - half, est + half, min(len(a), len(b)), False)


def _compare(rows: pd.DataFrame, check: dict, deterministic: bool) -> tuple[str, str]:
    agg = check.get("agg", "mean")
    a = per_replicate(rows, check["metric"], check.get("a"), agg)
    b = per_replicate(rows, check["metric"], check.get("b"), agg)
    factor = float(check.get("factor", 1.0))
    op = check.get("op", "<")
    gap = difference(a, b, factor, deterministic)
    scaled = f"{factor:g} x " if factor != 1.0 else ""
    text = (f"{check['metric']}: {a.mean():.4g} [{_describe(check.get('a'))}] vs {scaled}{b.mean():.4g} "
            f"[{_describe(check.get('b'))}]; difference {gap.text()}, claimed {op} 0")
    return decide_sign(gap, op), text


def _threshold(rows: pd.DataFrame, check: dict, deterministic: bool) -> tuple[str, str]:
    agg = check.get("agg", "mean")
    values = per_replicate(rows, check["metric"], check.get("where"), agg)
    op, bound = check.get("op", "<"), float(check["value"])
    interval = mean_interval(values.to_numpy(float), deterministic)
    shifted = Interval(interval.estimate - bound, interval.lo - bound, interval.hi - bound, interval.n,
                       interval.exact)
    text = f"{agg} {check['metric']} [{_describe(check.get('where'))}] = {interval.text()}; claimed {op} {bound:g}"
    return decide_sign(shifted, op), text


def fit_slope(x: np.ndarray, y: np.ndarray, log: bool) -> Interval:
    """Least-squares slope of y on x with its 95% interval; on log-log axes points with x <= 0 or y <= 0
    cannot be placed and are left out (``_slope`` reports how many)."""
    if log:
        keep = (x > 0) & (y > 0)
        x, y = np.log10(x[keep]), np.log10(y[keep])
    if x.size < 3 or np.ptp(x) == 0:
        raise _NotRun("fewer than 3 distinct points to fit a slope")
    if np.ptp(y) == 0:  # a flat line: slope exactly 0 (linregress's interval would be 0/0)
        return Interval(0.0, 0.0, 0.0, x.size, True)
    fit = stats.linregress(x, y)
    if fit.stderr == 0.0:
        return Interval(float(fit.slope), float(fit.slope), float(fit.slope), x.size, True)
    half = float(stats.t.ppf(0.975, x.size - 2)) * fit.stderr
    return Interval(float(fit.slope), float(fit.slope - half), float(fit.slope + half), x.size, False)


def _slope(rows: pd.DataFrame, check: dict, deterministic: bool) -> tuple[str, str]:
    chosen = select(rows, check.get("where"))
    for column in (check["x"], check["y"]):
        if column not in chosen.columns:
            raise _NotRun(f"no column {column!r} in the rows")
    chosen = chosen[[check["x"], check["y"]]].dropna()
    x, y = chosen[check["x"]].to_numpy(float), chosen[check["y"]].to_numpy(float)
    slope = fit_slope(x, y, bool(check.get("log", False)))
    if deterministic:  # exact values: the regression interval measures curvature, not noise
        slope = Interval(slope.estimate, slope.estimate, slope.estimate, slope.n, True)
    dropped = int(((x <= 0) | (y <= 0)).sum()) if check.get("log") else 0
    lo_end, hi_end = check["within"]
    low = -math.inf if lo_end is None else float(lo_end)
    high = math.inf if hi_end is None else float(hi_end)
    kind = "log-log slope" if check.get("log") else "slope"
    text = (f"{kind} of {check['y']} on {check['x']} [{_describe(check.get('where'))}] = "
            f"{slope.estimate:.3f} (95% CI {slope.lo:.3f} to {slope.hi:.3f}, {slope.n} points); "
            f"window [{low:g}, {high:g}]"
            + (f"; {dropped} non-positive points left out of the log-log fit" if dropped else ""))
    return decide_window(slope, low, high), text


def _order(rows: pd.DataFrame, check: dict, deterministic: bool) -> tuple[str, str]:
    """Each consecutive pair of levels is a paired comparison ``metric(level_i) <= metric(level_i+1)``."""
    agg = check.get("agg", "mean")
    series = [per_replicate(rows, check["metric"], {**(check.get("where") or {}), check["by"]: level}, agg)
              for level in check["order"]]
    decisions = [decide_sign(difference(a, b, 1.0, deterministic), "<=") for a, b in zip(series, series[1:])]
    text = f"{check['metric']}: " + " <= ".join(f"{lvl} {s.mean():.4g}" for lvl, s in zip(check["order"], series))
    text += " (pairs: " + ", ".join(decisions) + ")"
    status = FAILS if FAILS in decisions else INCONCLUSIVE if INCONCLUSIVE in decisions else HOLDS
    return status, text


KINDS = {"compare": _compare, "threshold": _threshold, "slope": _slope, "order": _order}
REQUIRED = {"compare": ("metric", "a", "b"), "threshold": ("metric", "value"), "slope": ("x", "y", "within"),
            "order": ("metric", "by", "order")}


def wheres(check: dict) -> list[dict | None]:
    """The row selections a check reads (for convergence and for the scale-coverage test)."""
    kind = check["kind"]
    if kind == "compare":
        return [check.get("a"), check.get("b")]
    if kind == "order":
        return [{**(check.get("where") or {}), check["by"]: level} for level in check["order"]]
    return [check.get("where")]


def criterion(check: dict) -> str:
    """The suite's reading of a claim, in words, from its check."""
    kind = check["kind"]
    if kind == "compare":
        factor = f"{check.get('factor', 1.0):g} x " if check.get("factor", 1.0) != 1.0 else ""
        return (f"{check.get('agg', 'mean')} {check['metric']} [{_describe(check['a'])}] {check.get('op', '<')} "
                f"{factor}[{_describe(check['b'])}], 95% interval over replicates")
    if kind == "threshold":
        return (f"{check.get('agg', 'mean')} {check['metric']} [{_describe(check.get('where'))}] "
                f"{check.get('op', '<')} {check['value']:g}, 95% interval over replicates")
    if kind == "slope":
        lo, hi = (open_end if v is None else f"{v:g}" for v, open_end in zip(check["within"], ("-inf", "inf")))
        return f"{'log-log ' if check.get('log') else ''}slope of {check['y']} on {check['x']} in [{lo}, {hi}], 95% CI"
    return f"{check['metric']} non-decreasing over {check['by']} = {check['order']}, paired 95% intervals"


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
    if kind == "slope" and (len(check["within"]) != 2 or all(v is None for v in check["within"])):
        raise ConfigError(f"claim {claim['id']}: within must be [lo, hi] with at most one end null")


def claim_scales(claim: dict) -> list[str] | None:
    scale = claim.get("scale")
    return None if scale is None else [scale] if isinstance(scale, str) else list(scale)


def evaluate_claim(claim: dict, rows: pd.DataFrame, scale: str | None = None) -> Verdict:
    validate_claim(claim)
    check = claim["check"]
    base = {"id": claim["id"], "statement": claim["statement"], "paper": str(claim["paper"]),
            "ref": str(claim["ref"]), "criterion": str(claim.get("criterion") or criterion(check))}
    scales = claim_scales(claim)
    if scale is not None and scales is not None and scale not in scales:
        return Verdict(status=NOT_RUN, ours=f"decided at scale={'/'.join(scales)} only", **base)
    if rows.empty:
        return Verdict(status=NOT_RUN, ours="no stored results at this scale", **base)
    runs = sorted(rows["run_id"].astype(str).unique()) if "run_id" in rows else []
    try:
        status, text = KINDS[check["kind"]](rows, check, bool(claim.get("deterministic", False)))
        unconverged = _unconverged(rows, wheres(check))
    except _NotRun as reason:
        return Verdict(status=NOT_RUN, ours=str(reason), runs=runs, **base)
    if unconverged:
        shown = ", ".join(unconverged[:3]) + (f" and {len(unconverged) - 3} more" if len(unconverged) > 3 else "")
        text += (f"; rests on unconverged training ({shown})" if status == INCONCLUSIVE else
                 f"; would read '{status}' but rests on unconverged training ({shown})")
        status = INCONCLUSIVE
    return Verdict(status=status, ours=text, runs=runs, **base)


def evaluate_claims(claims: list[dict], rows: pd.DataFrame, scale: str | None = None) -> list[Verdict]:
    return [evaluate_claim(claim, rows, scale) for claim in claims]


def count(verdicts: list[Verdict] | list[dict]) -> dict[str, int]:
    """How many claims hold, do not hold, are inconclusive, were not run."""
    statuses = [v.status if isinstance(v, Verdict) else v["status"] for v in verdicts]
    return {s: statuses.count(s) for s in STATUSES}


def count_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{counts[s]} {s}" for s in STATUSES)
