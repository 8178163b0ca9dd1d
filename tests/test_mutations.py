"""The mutation lists of scripts/mutate.py stay runnable: every fragment still occurs exactly once in its file and
its mutant differs from it (a list whose fragments drifted away from the code would silently test nothing)."""

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
LISTS = sorted((ROOT / "tests" / "mutations").glob("*.yaml"))


@pytest.mark.parametrize("path", LISTS, ids=[p.stem for p in LISTS])
def test_mutation_list_applies(path: Path) -> None:
    spec = yaml.safe_load(path.read_text())
    for test in spec.get("tests") or [f"tests/test_{path.stem}.py"]:
        assert (ROOT / test).is_file(), f"{path.name}: no test file {test}"
    assert spec["mutations"], f"{path.name}: an empty list"
    for m in spec["mutations"]:
        assert set(m) == {"file", "find", "replace", "breaks"}, f"{path.name}: keys {sorted(m)}"
        source = (ROOT / m["file"]).read_text()
        assert source.count(m["find"]) == 1, f"{path.name}: '{m['breaks']}' does not occur exactly once in {m['file']}"
        assert m["replace"] != m["find"], f"{path.name}: '{m['breaks']}' replaces a fragment with itself"
