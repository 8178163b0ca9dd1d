"""Claims and tables on hand-made rows whose answers are known."""

import numpy as np
import pandas as pd
import pytest

from repro.core.claims import FAILS, HOLDS, NOT_RUN, evaluate_claim, fit_slope, validate_claim
from repro.core.errors import ConfigError
from repro.core.table import summarize, wide


def claim(check: dict) -> dict:
    return {"id": "c", "statement": "s", "paper": "p", "ref": "r", "check": check}


@pytest.fixture
def rows() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    eps = np.repeat([1e-1, 1e-2, 1e-3, 1e-4], 3)
    return pd.concat([
        pd.DataFrame({"method": "flat", "eps": eps, "ratio": 1.5 * (1 + 0.01 * rng.standard_normal(eps.size)),
                      "mae": 0.1, "seed": np.tile([0, 1, 2], 4)}),
        pd.DataFrame({"method": "jump", "eps": eps, "ratio": 6.0 / eps, "mae": 0.3, "seed": np.tile([0, 1, 2], 4)}),
    ], ignore_index=True)


def test_slope_recovers_known_exponents(rows: pd.DataFrame) -> None:
    flat = evaluate_claim(claim({"kind": "slope", "x": "eps", "y": "ratio", "log": True,
                                 "where": {"method": "flat"}, "within": [-0.1, 0.1]}), rows)
    jump = evaluate_claim(claim({"kind": "slope", "x": "eps", "y": "ratio", "log": True,
                                 "where": {"method": "jump"}, "within": [-0.1, 0.1]}), rows)
    assert flat.status == HOLDS and jump.status == FAILS
    assert "-1.000" in jump.ours


def test_fit_slope_interval_covers_truth() -> None:
    rng = np.random.default_rng(1)
    x = np.linspace(0, 10, 50)
    slope, lo, hi = fit_slope(x, 2.5 * x + rng.standard_normal(50), log=False)
    assert lo < 2.5 < hi and lo < slope < hi and hi - lo < 0.2


def test_compare_threshold_order(rows: pd.DataFrame) -> None:
    better = claim({"kind": "compare", "metric": "mae", "a": {"method": "flat"}, "op": "<", "b": {"method": "jump"}})
    assert evaluate_claim(better, rows).status == HOLDS
    factor = claim({"kind": "compare", "metric": "mae", "a": {"method": "flat"}, "op": ">", "factor": 0.5,
                    "b": {"method": "jump"}})  # 0.1 > 0.15 is false
    assert evaluate_claim(factor, rows).status == FAILS
    bound = claim({"kind": "threshold", "metric": "mae", "where": {"method": ["flat", "jump"]}, "agg": "max",
                   "op": "<=", "value": 0.3})
    assert evaluate_claim(bound, rows).status == HOLDS
    order = claim({"kind": "order", "metric": "mae", "by": "method", "order": ["jump", "flat"]})
    assert evaluate_claim(order, rows).status == FAILS


def test_missing_rows_are_not_run(rows: pd.DataFrame) -> None:
    absent = claim({"kind": "compare", "metric": "mae", "a": {"method": "spe"}, "b": {"method": "flat"}})
    assert evaluate_claim(absent, rows).status == NOT_RUN
    assert evaluate_claim(absent, pd.DataFrame()).status == NOT_RUN
    no_column = claim({"kind": "threshold", "metric": "auc", "value": 0.5})
    assert evaluate_claim(no_column, rows).status == NOT_RUN


@pytest.mark.parametrize("bad", [
    {"kind": "guess"},
    {"kind": "slope", "x": "eps"},
    {"kind": "compare", "metric": "m", "a": {}, "b": {}, "op": "<<"},
])
def test_malformed_claims_are_rejected(bad: dict) -> None:
    with pytest.raises(ConfigError):
        validate_claim(claim(bad))


def test_table_mean_std_and_paper_column(rows: pd.DataFrame) -> None:
    spec = {"index": ["method"], "metrics": ["mae", "ratio"], "reported": {"flat": {"mae": 0.09}}}
    summary = summarize(rows, spec)
    line = summary[(summary["method"] == "jump") & (summary["metric"] == "ratio")].iloc[0]
    expected = (6.0 / rows[rows["method"] == "jump"]["eps"]).to_numpy()
    assert line["mean"] == pytest.approx(expected.mean()) and line["std"] == pytest.approx(expected.std(ddof=1))
    assert line["n_rows"] == 12
    table = wide(summary, spec)
    assert list(table.columns) == ["method", "mae", "mae (paper)", "ratio", "ratio (paper)"]
    assert table.set_index("method").loc["flat", "mae (paper)"] == "0.09"
    assert table.set_index("method").loc["jump", "mae (paper)"] == "—"
