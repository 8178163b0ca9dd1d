"""Verdicts and tables on hand-made rows whose answers are known, intervals against independent oracles
(scipy's t interval and Welch test, statsmodels' OLS)."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from repro.core.claims import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    NOT_RUN,
    count,
    difference,
    evaluate_claim,
    fit_slope,
    mean_interval,
    validate_claim,
)
from repro.core.errors import ConfigError
from repro.core.table import summarize, wide


def claim(check: dict, **extra: object) -> dict:
    return {"id": "c", "statement": "s", "paper": "p", "ref": "r", "check": check, **extra}


def replicated(means: dict[str, float], noise: float, n: int = 5, seed: int = 0) -> pd.DataFrame:
    """One row per method and replicate: metric = mean + shared replicate effect + own noise."""
    rng = np.random.default_rng(seed)
    shared = rng.standard_normal(n)
    return pd.DataFrame([{"run_id": "r", "replicate": r, "method": m,
                          "mae": mu + shared[r] + noise * rng.standard_normal()}
                         for m, mu in means.items() for r in range(n)])


def test_mean_interval_matches_scipy() -> None:
    values = np.array([0.3, 0.5, 0.45, 0.2, 0.38])
    got = mean_interval(values)
    lo, hi = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    assert (got.lo, got.hi) == pytest.approx((lo, hi), rel=1e-12)
    assert not got.exact and got.n == 5


def test_zero_spread_and_single_replicates() -> None:
    assert mean_interval(np.array([2.0, 2.0, 2.0])).exact
    one = mean_interval(np.array([2.0]))
    assert not one.exact and one.n == 1
    assert mean_interval(np.array([2.0]), deterministic=True).exact


def test_paired_difference_uses_the_pairing() -> None:
    rows = replicated({"a": 1.0, "b": 1.2}, noise=0.01)
    a = rows[rows.method == "a"].set_index(["run_id", "replicate"])["mae"]
    b = rows[rows.method == "b"].set_index(["run_id", "replicate"])["mae"]
    got = difference(a, b, 1.0, False)
    diffs = (a - b).to_numpy()
    lo, hi = stats.t.interval(0.95, len(diffs) - 1, loc=diffs.mean(), scale=stats.sem(diffs))
    assert (got.lo, got.hi) == pytest.approx((lo, hi), rel=1e-12)
    # The shared replicate effect (sd 1) would swamp an unpaired interval; paired it is tight.
    assert got.hi < 0


def test_unpaired_difference_is_welch() -> None:
    rng = np.random.default_rng(3)
    a = pd.Series(rng.normal(0, 1, 6), index=[("x", i) for i in range(6)])
    b = pd.Series(rng.normal(1, 2, 4), index=[("y", i) for i in range(4)])
    got = difference(a, b, 1.0, False)
    oracle = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert (got.lo, got.hi) == pytest.approx((oracle.low, oracle.high), rel=1e-10)


@pytest.mark.parametrize(("means", "noise", "op", "expected"), [
    ({"a": 1.0, "b": 1.2}, 0.01, "<", HOLDS),
    ({"a": 1.2, "b": 1.0}, 0.01, "<", FAILS),
    ({"a": 1.0, "b": 1.001}, 0.2, "<", INCONCLUSIVE),
    ({"a": 1.2, "b": 1.0}, 0.01, ">", HOLDS),
])
def test_compare_decides_on_the_interval(means: dict, noise: float, op: str, expected: str) -> None:
    rows = replicated(means, noise)
    check = {"kind": "compare", "metric": "mae", "a": {"method": "a"}, "op": op, "b": {"method": "b"}}
    verdict = evaluate_claim(claim(check), rows)
    assert verdict.status == expected, verdict.ours
    assert verdict.runs == ["r"]


def test_one_replicate_is_inconclusive_unless_deterministic() -> None:
    rows = replicated({"a": 1.0, "b": 2.0}, noise=0.0, n=1)
    check = {"kind": "compare", "metric": "mae", "a": {"method": "a"}, "b": {"method": "b"}}
    assert evaluate_claim(claim(check), rows).status == INCONCLUSIVE
    assert evaluate_claim(claim(check, deterministic=True), rows).status == HOLDS


def test_factor_and_threshold() -> None:
    rows = replicated({"a": 1.0, "b": 3.0}, noise=0.01)
    rows.loc[rows.method == "b", "mae"] = 3.0 + 0.01 * np.arange(5)   # b without the shared effect
    rows.loc[rows.method == "a", "mae"] = 1.0 + 0.01 * np.arange(5)
    half = {"kind": "compare", "metric": "mae", "a": {"method": "a"}, "op": "<", "factor": 0.5, "b": {"method": "b"}}
    assert evaluate_claim(claim(half), rows).status == HOLDS          # 1.0 < 1.5
    third = {**half, "factor": 0.3}
    assert evaluate_claim(claim(third), rows).status == FAILS         # 1.0 > 0.9
    below = {"kind": "threshold", "metric": "mae", "where": {"method": "a"}, "op": "<", "value": 1.1}
    assert evaluate_claim(claim(below), rows).status == HOLDS
    near = {**below, "value": 1.02}
    assert evaluate_claim(claim(near), rows).status == INCONCLUSIVE
    above = {**below, "value": 0.9}
    assert evaluate_claim(claim(above), rows).status == FAILS


def test_order_needs_every_pair() -> None:
    rows = replicated({"x": 1.0, "y": 2.0, "z": 3.0}, noise=0.01)
    order = {"kind": "order", "metric": "mae", "by": "method", "order": ["x", "y", "z"]}
    assert evaluate_claim(claim(order), rows).status == HOLDS
    assert evaluate_claim(claim({**order, "order": ["x", "z", "y"]}), rows).status == FAILS
    close = replicated({"x": 1.0, "y": 1.0001, "z": 3.0}, noise=0.3)
    assert evaluate_claim(claim(order), close).status == INCONCLUSIVE


def test_slope_interval_matches_statsmodels() -> None:
    rng = np.random.default_rng(1)
    x = np.linspace(0, 10, 30)
    y = 2.5 * x + rng.standard_normal(30)
    got = fit_slope(x, y, log=False)
    oracle = sm.OLS(y, sm.add_constant(x)).fit().conf_int(0.05)[1]
    assert (got.lo, got.hi) == pytest.approx(tuple(oracle), rel=1e-10)


@pytest.mark.parametrize(("within", "expected"), [
    ([2.0, 3.0], HOLDS), ([2.0, None], HOLDS), ([None, 3.0], HOLDS), ([3.0, None], FAILS), ([None, 2.0], FAILS),
    ([2.5, 3.0], INCONCLUSIVE),
])
def test_slope_window_with_open_ends(within: list, expected: str) -> None:
    rng = np.random.default_rng(2)
    x = np.repeat([1.0, 2.0, 3.0, 4.0], 3)
    rows = pd.DataFrame({"x": x, "y": 2.5 * x + 0.05 * rng.standard_normal(x.size)})
    verdict = evaluate_claim(claim({"kind": "slope", "x": "x", "y": "y", "within": within}), rows)
    assert verdict.status == expected, verdict.ours


def test_log_slope_of_a_power_law_is_exact() -> None:
    eps = np.array([1e-1, 1e-2, 1e-3, 1e-4])
    rows = pd.DataFrame({"eps": eps, "ratio": 6.0 / eps})
    verdict = evaluate_claim(claim({"kind": "slope", "x": "eps", "y": "ratio", "log": True, "within": [-1.1, -0.9]}),
                             rows)
    assert verdict.status == HOLDS and "-1.000" in verdict.ours


@pytest.mark.parametrize(("within", "expected"), [([0.0, 0.5], HOLDS), ([0.1, 0.5], FAILS)])
def test_flat_slope_is_exactly_zero(within: list, expected: str) -> None:
    rows = pd.DataFrame({"n": [10.0, 20.0, 40.0, 80.0] * 3, "rank": 7.0})
    verdict = evaluate_claim(claim({"kind": "slope", "x": "n", "y": "rank", "log": True, "within": within}), rows)
    assert verdict.status == expected, verdict.ours


def test_unconverged_training_makes_a_verdict_inconclusive() -> None:
    rows = replicated({"a": 1.0, "b": 1.2}, noise=0.01).assign(converged=True, unit="u")
    check = {"kind": "compare", "metric": "mae", "a": {"method": "a"}, "b": {"method": "b"}}
    assert evaluate_claim(claim(check), rows).status == HOLDS
    rows.loc[rows.method == "b", "converged"] = False
    verdict = evaluate_claim(claim(check), rows)
    assert verdict.status == INCONCLUSIVE and "unconverged" in verdict.ours


def test_scale_restricted_and_missing_claims_are_not_run() -> None:
    rows = replicated({"a": 1.0, "b": 1.2}, noise=0.01)
    check = {"kind": "compare", "metric": "mae", "a": {"method": "a"}, "b": {"method": "b"}}
    assert evaluate_claim(claim(check, scale="paper"), rows, "cpu").status == NOT_RUN
    assert evaluate_claim(claim(check, scale="paper"), rows, "paper").status == HOLDS
    absent = {"kind": "compare", "metric": "mae", "a": {"method": "spe"}, "b": {"method": "a"}}
    assert evaluate_claim(claim(absent), rows).status == NOT_RUN
    assert evaluate_claim(claim(check), pd.DataFrame()).status == NOT_RUN
    assert evaluate_claim(claim({"kind": "threshold", "metric": "auc", "value": 0.5}), rows).status == NOT_RUN


def test_paper_column_and_criterion_are_apart() -> None:
    rows = replicated({"a": 1.0, "b": 1.2}, noise=0.01)
    check = {"kind": "compare", "metric": "mae", "a": {"method": "a"}, "b": {"method": "b"}}
    verdict = evaluate_claim(claim(check, paper="0.069 (Table 2)"), rows)
    assert verdict.paper == "0.069 (Table 2)" and "mae" in verdict.criterion and "interval" in verdict.criterion
    assert count([verdict]) == {HOLDS: 1, FAILS: 0, INCONCLUSIVE: 0, NOT_RUN: 0}


@pytest.mark.parametrize("bad", [
    {"kind": "guess"},
    {"kind": "slope", "x": "eps"},
    {"kind": "slope", "x": "x", "y": "y", "within": [None, None]},
    {"kind": "compare", "metric": "m", "a": {}, "b": {}, "op": "<<"},
])
def test_malformed_claims_are_rejected(bad: dict) -> None:
    with pytest.raises(ConfigError):
        validate_claim(claim(bad))


def test_table_groups_by_index_and_sweep_not_by_replicate() -> None:
    rows = pd.DataFrame([{"method": m, "replicate": r, "run_id": f"run{w}", "lr": w, "mae": base + 0.1 * r + w}
                         for m, base in (("a", 1.0), ("b", 2.0)) for r in range(3) for w in (0, 10)])
    rows.attrs["sweep_columns"] = ["lr"]
    spec = {"index": ["method"], "metrics": ["mae"], "reported": {"a": {"mae": 0.9}}}
    summary = summarize(rows, spec)
    assert len(summary) == 4   # (method, lr) pairs: a swept setting is never averaged with another
    line = summary[(summary["method"] == "b") & (summary["lr"] == 10)].iloc[0]
    assert line["mean"] == pytest.approx(12.1) and line["std"] == pytest.approx(0.1) and line["n_rows"] == 3
    table = wide(summary, spec)
    assert list(table.columns) == ["method", "lr", "mae", "mae (paper)"]
    assert table.set_index(["method", "lr"]).loc[("a", 0), "mae (paper)"] == "0.9"
    assert table.set_index(["method", "lr"]).loc[("b", 0), "mae (paper)"] == "—"


def test_table_keeps_rows_without_an_index_value() -> None:
    # The grid baseline has no `m`: it is shown with a dash in that column, not dropped.
    rows = pd.DataFrame([{"method": "cheb", "m": m, "err": e} for m, e in ((33, 1.0), (65, 0.5))]
                        + [{"method": "grid", "err": 0.7}])
    spec = {"index": ["method", "m"], "metrics": ["err"]}
    table = wide(summarize(rows, spec), spec)
    assert list(table["method"]) == ["cheb", "cheb", "grid"]
    assert table.iloc[2]["m"] == "—" and table.iloc[2]["err"] == "0.7"
    only = {"index": ["method", "absent"], "metrics": ["err"]}
    assert len(wide(summarize(rows, only), only)) == 2


def test_criterion_names_open_slope_ends() -> None:
    from repro.core.claims import criterion

    assert "[0, inf]" in criterion({"kind": "slope", "x": "n", "y": "err", "within": [0, None]})
    assert "[-inf, 2]" in criterion({"kind": "slope", "x": "n", "y": "err", "within": [None, 2]})
