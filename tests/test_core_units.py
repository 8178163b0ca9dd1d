"""The grid of units, their seeds and the run identity: what the framework owns."""

import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from repro.core import store
from repro.core.context import RunContext, make_logger
from repro.core.errors import ConfigError
from repro.core.runner import run_unit_job
from repro.core.seeding import child_seed
from repro.core.units import Unit, expand, grid, select, unit, validate


def test_grid_is_the_cartesian_product_in_order() -> None:
    units = grid("scaling", ["krr", "nn"], n=[10, 100], d=[2])
    assert [u.name for u in units] == ["scaling/krr/n=10,d=2/r0", "scaling/nn/n=10,d=2/r0",
                                       "scaling/krr/n=100,d=2/r0", "scaling/nn/n=100,d=2/r0"]
    assert units[2].settings == {"n": 100, "d": 2}
    assert units[0].columns() == {"experiment": "scaling", "method": "krr", "n": 10, "d": 2, "replicate": 0}


def test_expand_replicates_only_stochastic_units() -> None:
    units = expand([unit("exact", stochastic=False), unit("train", "m")], 3)
    assert [u.name for u in units] == ["exact/-/-/r0", "train/m/-/r0", "train/m/-/r1", "train/m/-/r2"]


@pytest.mark.parametrize(("units", "message"), [
    ([], "empty grid"),
    ([unit("a"), unit("a")], "appears twice"),
    ([unit("a b")], "must be letters"),
    ([unit("a", replicate_count=1), unit("x", "zzz")], "unknown method"),
    ([Unit("a", "m", (("unit", 1),))], "framework column"),
])
def test_validate_rejects_bad_grids(units: list[Unit], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate(units, ("m",), "fake")


def test_select_by_glob_and_a_clear_error_when_nothing_matches() -> None:
    units = expand(grid("train", ["a", "b"]), 2)
    assert [u.name for u in select(units, "train/a/*", "fake")] == ["train/a/-/r0", "train/a/-/r1"]
    assert [u.name for u in select(units, "*/r1", "fake")] == ["train/a/-/r1", "train/b/-/r1"]
    assert select(units, None, "fake") == units
    with pytest.raises(ConfigError, match="matches none of fake's 4 units"):
        select(units, "test/*", "fake")


def test_child_seeds_are_stable_and_distinct() -> None:
    assert child_seed(0, "data") == child_seed(0, "data")
    seeds = {child_seed(0, "data"), child_seed(1, "data"), child_seed(0, "model"), child_seed(0, "data", 1)}
    assert len(seeds) == 4 and all(0 <= s < 2**31 for s in seeds)


def fake_cfg(tmp_path: Path, seed: int = 0) -> OmegaConf:
    return OmegaConf.create({
        "seed": seed, "threads": 1, "data_dir": str(tmp_path), "scale": {"name": "smoke", "replicates": 2},
        "paper": {"slug": "fake", "task": "tests.fake_paper", "methods": ["a", "b"], "ns": [1, 2]}})


def run(cfg, tmp_path: Path, u: Unit) -> dict:
    run_dir = tmp_path / f"run{cfg.seed}"
    (run_dir / "units").mkdir(parents=True, exist_ok=True)
    return run_unit_job(cfg, run_dir, "cpu", u, "")["rows"][0]


def test_units_are_seeded_from_their_names(tmp_path: Path) -> None:
    cfg = fake_cfg(tmp_path)
    a0, b0 = Unit("draws", "a", (("n", 1),), 0), Unit("draws", "b", (("n", 1),), 0)
    a1 = Unit("draws", "a", (("n", 1),), 1)
    rows = {u: run(cfg, tmp_path / "x", u) for u in (a0, b0, a1)}
    again = run(fake_cfg(tmp_path), tmp_path / "y", a0)
    # The same unit repeats exactly, python, numpy and torch generators included.
    assert all(again[k] == rows[a0][k] for k in ("torch", "numpy", "python", "child", "seed"))
    # Another method or replicate gets other draws from every generator.
    for other in (b0, a1):
        assert all(rows[other][k] != rows[a0][k] for k in ("torch", "numpy", "python", "child", "seed"))
    # Data seeds are shared by the methods of a replicate (paired comparisons), not across replicates.
    assert rows[a0]["data"] == rows[b0]["data"] != rows[a1]["data"]
    assert rows[a0]["seed"] == child_seed(0, "unit", a0.name)
    other_root = run(fake_cfg(tmp_path, seed=1), tmp_path / "z", a0)
    assert other_root["torch"] != rows[a0]["torch"]


def test_unit_rows_get_the_framework_columns_and_are_cached(tmp_path: Path) -> None:
    cfg = fake_cfg(tmp_path)
    u = Unit("draws", "b", (("n", 2),), 1)
    row = run(cfg, tmp_path, u)
    assert {k: row[k] for k in ("experiment", "method", "n", "replicate", "unit")} == {
        "experiment": "draws", "method": "b", "n": 2, "replicate": 1, "unit": u.name}
    assert row["unit_time_s"] >= 0
    again = run_unit_job(cfg, tmp_path / "run0", "cpu", u, "")
    assert again["reused"] and again["rows"][0]["torch"] == row["torch"]


def test_context_seeds_follow_the_unit(tmp_path: Path) -> None:
    cfg = fake_cfg(tmp_path)
    log = make_logger(tmp_path, "ctx")
    first = RunContext(cfg, tmp_path, "cpu", Unit("e", "a"), log)
    second = RunContext(cfg, tmp_path, "cpu", Unit("e", "b"), log)
    assert first.seed != second.seed and first.child_seed("x") != second.child_seed("x")
    assert first.data_seed("x") == second.data_seed("x")
    assert first.checkpoint_path("fit").name == "e__a__-__r0__fit.pt"


def test_code_hash_covers_every_imported_repro_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = Path(store.__file__).parents[2]
    files = {str(p.relative_to(root)) for p in store.imported_modules("repro.papers.spe.task")}
    assert {"repro/core/train.py", "repro/core/units.py", "repro/core/context.py", "repro/papers/spe/models.py",
            "repro/papers/spe/spectral.py"} <= files
    package = tmp_path / "reprofake"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "task.py").write_text("from reprofake.helper import f\n")
    (package / "helper.py").write_text("def f():\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = store.code_hash("reprofake.task")
    (package / "helper.py").write_text("def f():\n    return 2\n")
    assert store.code_hash("reprofake.task") != before
    sys.modules.pop("reprofake", None)


def test_run_identity_keys() -> None:
    base = OmegaConf.create({"seed": 0, "threads": 1, "unit": None, "workers": 1, "results_dir": "a",
                             "paper": {"x": 1}, "scale": {"name": "cpu"}})
    # Where and how many at once, and how results are judged and shown, are not what is computed.
    same = OmegaConf.merge(base, {"unit": "train/*", "workers": 4, "results_dir": "b",
                                  "paper": {"claims": [{"id": "c"}], "figures": {"f": 1}, "title": "t"}})
    assert store.config_hash(base) == store.config_hash(same)
    for change in ({"threads": 2}, {"seed": 1}, {"paper": {"x": 2}}):
        assert store.config_hash(OmegaConf.merge(base, change)) != store.config_hash(base)
