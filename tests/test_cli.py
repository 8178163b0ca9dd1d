"""`repro` as a user runs it: real subprocesses, results in a temporary directory."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from repro import ROOT
from repro.core.store import is_timing_column
from tests.helpers import repro, rows_of, run_dirs


def test_list_does_not_import_torch() -> None:
    code = ("import sys; from repro.cli import main; main(['list']); "
            "heavy = [m for m in ('torch', 'torch_geometric', 'repro.papers') if m in sys.modules]; "
            "assert not heavy, heavy")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "spe" in done.stdout and "Stability of Expressive Positional Encodings" in done.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["paper=nope"], "Available options"),
    (["paper=spe", "no_such_key=1"], "no_such_key"),
    (["paper=spe", "paper.model.no_such_key=1"], "no_such_key"),
    (["paper=spe", "scale=huge"], "Available options"),
    (["paper=spe", "seed=abc"], "seed must be int"),
    (["paper=spe", "paper.train.epochs=1.5"], "paper.train.epochs must be int"),
    (["paper=spe", "device=tpu"], "device='tpu'"),
    (["paper=spe", "paper.methods=[spe,bogus]"], "bogus"),
])
def test_bad_input_fails_before_work_with_a_clear_message(args: list[str], message: str, results_dir: Path) -> None:
    done = repro("train", "scale=smoke", *args, f"results_dir={results_dir}", check=False)
    assert done.returncode != 0
    assert message in done.stderr + done.stdout
    assert not any((results_dir / "spe" / "runs").glob("*/rows.csv"))


def test_unknown_subcommand() -> None:
    done = repro("trian", "paper=spe", check=False)
    assert done.returncode == 2 and "unknown subcommand 'trian'" in done.stderr


def test_train_reuse_force_and_reports(results_dir: Path) -> None:
    repro("train", "paper=spe", "scale=smoke", f"results_dir={results_dir}")
    (run_dir,) = run_dirs(results_dir, "spe")
    for name in ("config.yaml", "overrides.yaml", "rows.csv", "metrics.jsonl", "run.log", "env.json", "status.json"):
        assert (run_dir / name).exists(), name
    env = json.loads((run_dir / "env.json").read_text())
    assert {"git_sha", "git_dirty", "packages", "device", "torch_threads", "command_line"} <= set(env)
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "done" and status["wall_time_s"] > 0

    again = repro("train", "paper=spe", "scale=smoke", f"results_dir={results_dir}")
    assert "reusing finished run" in again.stdout
    forced = repro("train", "paper=spe", "scale=smoke", "force=true", f"results_dir={results_dir}")
    assert "reusing" not in forced.stdout
    assert run_dirs(results_dir, "spe") == [run_dir]

    table = repro("table", "paper=spe", "scale=smoke", "latex=true", f"results_dir={results_dir}")
    assert "| spe |" in table.stdout
    check = repro("check", "paper=spe", "scale=smoke", f"results_dir={results_dir}")
    assert "spe_stable_at_gap" in check.stdout and "paper:" in check.stdout
    repro("figures", "paper=spe", "scale=smoke", f"results_dir={results_dir}")
    out = results_dir / "spe"
    for name in ("README.md", "table.csv", "table.tex", "verdicts.json", "figures/sensitivity.png",
                 "figures/sensitivity.pdf"):
        assert (out / name).exists(), name
    assert "figures/sensitivity.png" in (out / "README.md").read_text()
    assert "| [spe](spe/README.md)" in (results_dir / "README.md").read_text()
    listed = repro("list", f"results_dir={results_dir}")
    assert "hold (smoke)" in listed.stdout


def test_same_config_and_seed_give_identical_rows(tmp_path: Path) -> None:
    for name in ("a", "b"):
        repro("train", "paper=spe", "scale=smoke", f"results_dir={tmp_path / name}")
    (a,), (b,) = run_dirs(tmp_path / "a", "spe"), run_dirs(tmp_path / "b", "spe")
    assert a.name == b.name
    measured = [c for c in rows_of(a).columns if not is_timing_column(c)]
    assert len(measured) > 10
    pd.testing.assert_frame_equal(rows_of(a)[measured], rows_of(b)[measured])


def test_interrupted_run_continues_to_the_same_rows(results_dir: Path) -> None:
    repro("train", "paper=spe", "scale=smoke", f"results_dir={results_dir}")
    (run_dir,) = run_dirs(results_dir, "spe")
    finished = rows_of(run_dir)
    # As if the process died while training the last units: their rows and the final table are missing.
    (run_dir / "rows.csv").unlink()
    for unit in sorted((run_dir / "units").glob("*.csv"))[-2:]:
        unit.unlink()
    status = json.loads((run_dir / "status.json").read_text())
    (run_dir / "status.json").write_text(json.dumps({**status, "status": "interrupted"}))
    done = repro("train", "paper=spe", "scale=smoke", f"resume={run_dir}", f"results_dir={results_dir}")
    assert "continuing the unfinished run" in done.stderr
    assert "finished before, reusing its rows" in done.stderr
    measured = [c for c in finished.columns if not is_timing_column(c)]
    pd.testing.assert_frame_equal(rows_of(run_dir)[measured], finished[measured])


def test_run_made_by_other_code_starts_afresh(results_dir: Path) -> None:
    repro("train", "paper=spe", "scale=smoke", f"results_dir={results_dir}")
    (run_dir,) = run_dirs(results_dir, "spe")
    # As if repro/papers/spe had been edited after this unfinished run: its cached units are stale.
    status = json.loads((run_dir / "status.json").read_text())
    (run_dir / "status.json").write_text(json.dumps({**status, "status": "interrupted", "code_hash": "older"}))
    stale_unit = next((run_dir / "units").glob("*.csv"))
    stale_unit.write_text("stale\n")
    done = repro("train", "paper=spe", "scale=smoke", f"results_dir={results_dir}")
    assert "changed since" in done.stdout and "starting it afresh" in done.stdout
    assert "continuing the unfinished run" not in done.stderr
    assert stale_unit.read_text() != "stale\n"
    assert json.loads((run_dir / "status.json").read_text())["code_hash"] != "older"


def test_resume_rejects_a_run_of_another_config(results_dir: Path) -> None:
    repro("train", "paper=spe", "scale=smoke", f"results_dir={results_dir}")
    (run_dir,) = run_dirs(results_dir, "spe")
    done = repro("train", "paper=spe", "scale=smoke", "seed=3", f"resume={run_dir}", f"results_dir={results_dir}",
                 check=False)
    assert done.returncode == 2 and "made with other settings" in done.stderr


def test_failing_job_in_a_sweep_is_recorded_and_the_others_finish(results_dir: Path) -> None:
    done = repro("train", "-m", "paper=spe", "scale=smoke", "paper.methods=[none],[bogus]",
                 f"results_dir={results_dir}", check=False)
    assert done.returncode != 0
    statuses = {json.loads((d / "status.json").read_text())["status"]: d for d in run_dirs(results_dir, "spe")}
    assert set(statuses) == {"done", "failed"}
    assert "bogus" in json.loads((statuses["failed"] / "status.json").read_text())["error"]
    trained = rows_of(statuses["done"]).query("task == 'cycles'")
    assert set(trained["method"]) == {"none"}


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_multirun_launchers(launcher: str, results_dir: Path) -> None:
    repro("train", "-m", "paper=spe", "scale=smoke", "seed=0,1", f"hydra/launcher={launcher}",
          f"results_dir={results_dir}", timeout=600)
    runs = run_dirs(results_dir, "spe")
    assert len(runs) == 2
    assert all(json.loads((d / "status.json").read_text())["status"] == "done" for d in runs)
    table = repro("table", "paper=spe", "scale=smoke", f"results_dir={results_dir}")
    assert "±" in table.stdout  # two seeds -> mean ± std
