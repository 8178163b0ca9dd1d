"""Faults a user or a cluster causes, each reproduced and shown handled: planted files, damaged stores,
concurrent runs, SIGTERM, an interrupted force=true, bad values."""

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from repro import ROOT
from repro.core import store
from repro.core.context import make_logger
from repro.core.errors import ReproError
from tests.helpers import Payload, repro, rows_of, run_dirs

SMOKE = ("paper=spe", "scale=smoke")


def test_a_planted_checkpoint_is_refused_without_running_it(tmp_path: Path) -> None:
    from tests.test_core_run import make_ctx, regression_fit

    ctx = make_ctx(tmp_path)
    marker = tmp_path / "pwned"
    with open(ctx.checkpoint_path("unit"), "wb") as f:
        pickle.dump({"model": Payload(marker)}, f)
    with pytest.raises(ReproError, match="not a checkpoint repro can load safely"):
        regression_fit(ctx, epochs=2)
    assert not marker.exists()


@pytest.mark.parametrize("bad", [
    "train.lr=0.1", "paper.train.lr=0", "paper.train.lr=-1e-3", "+paper.foo=1", "paper.train.epochs=0",
    "paper.train.batch_size=0", "threads=0", "workers=0",
])
def test_bad_values_are_one_line_before_any_work(bad: str, results_dir: Path) -> None:
    done = repro("train", *SMOKE, bad, f"results_dir={results_dir}", check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "repro: error:" in done.stderr
    assert not run_dirs(results_dir, "spe")


def finished_run(results_dir: Path) -> Path:
    repro("train", *SMOKE, f"results_dir={results_dir}")
    (run_dir,) = run_dirs(results_dir, "spe")
    return run_dir


def test_damaged_stores_are_reported_with_their_path(results_dir: Path) -> None:
    run_dir = finished_run(results_dir)
    rows = run_dir / "rows.csv"
    original = rows.read_text()
    lines = original.splitlines(keepends=True)
    for damaged in (original + "".join(lines[1:]),                 # duplicated rows
                    "".join(lines[:-1]),                            # truncated
                    original.replace("cycles", "cycled", 1)):       # edited
        rows.write_text(damaged)
        done = repro("check", *SMOKE, f"results_dir={results_dir}", check=False)
        assert done.returncode == 2 and str(rows) in done.stderr and "Traceback" not in done.stderr
    rows.write_text(original)
    assert repro("check", *SMOKE, f"results_dir={results_dir}").returncode == 0


def test_a_truncated_unit_file_is_recomputed_on_resume(results_dir: Path) -> None:
    run_dir = finished_run(results_dir)
    finished = rows_of(run_dir)
    unit = next((run_dir / "units").glob("cycles*.csv"))
    unit.write_text(unit.read_text().splitlines()[0] + "\n")     # header only: the row is gone
    status = json.loads((run_dir / "status.json").read_text())
    (run_dir / "status.json").write_text(json.dumps({**status, "status": "interrupted"}))
    done = repro("train", *SMOKE, f"results_dir={results_dir}")
    assert str(unit) in done.stderr and "recomputing" in done.stderr
    measured = [c for c in finished.columns if not store.is_timing_column(c)]
    pd.testing.assert_frame_equal(rows_of(run_dir)[measured], finished[measured])


def test_a_corrupt_status_is_named_and_force_recovers(results_dir: Path) -> None:
    run_dir = finished_run(results_dir)
    (run_dir / "status.json").write_text("{not json")
    done = repro("train", *SMOKE, f"results_dir={results_dir}", check=False)
    assert done.returncode == 2 and "status.json" in done.stderr and "force=true" in done.stderr
    repro("train", *SMOKE, "force=true", f"results_dir={results_dir}")
    assert json.loads((run_dir / "status.json").read_text())["status"] == "done"


def test_a_planted_symlink_is_refused(results_dir: Path, tmp_path: Path) -> None:
    run_dir = finished_run(results_dir)
    target = tmp_path / "outside.txt"
    target.write_text("keep")
    (run_dir / "run.log").unlink()
    (run_dir / "run.log").symlink_to(target)
    done = repro("train", *SMOKE, "force=true", f"results_dir={results_dir}", check=False)
    assert done.returncode == 2 and "symbolic link" in done.stderr
    assert target.read_text() == "keep"


def test_stored_overrides_are_never_interpolated(results_dir: Path) -> None:
    run_dir = finished_run(results_dir)
    (run_dir / "overrides.yaml").write_text("- paper.model.pe_dim=${oc.env:HOME}\n")
    assert store.read_overrides(run_dir) == ["paper.model.pe_dim=${oc.env:HOME}"]
    repro("table", *SMOKE, f"results_dir={results_dir}")
    written = (results_dir / "spe" / "scale-smoke" / "README.md").read_text()
    assert os.environ["HOME"] not in written.replace(str(results_dir), "")


def start(*args: str, results_dir: Path) -> subprocess.Popen:
    """`repro train` as a user's shell starts it: with Ctrl-C's default action. A process inherits an ignored
    SIGINT, and something earlier in a pytest worker can leave it ignored; the run would then rightly ignore it."""
    return subprocess.Popen([sys.executable, "-m", "repro.cli", "train", *args, f"results_dir={results_dir}"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def test_two_identical_runs_at_once_share_the_work(results_dir: Path) -> None:
    first, second = (start(*SMOKE, results_dir=results_dir) for _ in range(2))
    outs = [p.communicate(timeout=300) for p in (first, second)]
    assert first.returncode == second.returncode == 0, outs
    (run_dir,) = run_dirs(results_dir, "spe")
    assert json.loads((run_dir / "status.json").read_text())["status"] == "done"
    rows = rows_of(run_dir)
    measured = [c for c in rows.columns if not store.is_timing_column(c)]
    assert not rows.duplicated(subset=measured).any()
    assert json.loads((run_dir / "status.json").read_text())["rows_total"] == len(rows)


def wait_for_unit(run_dir_parent: Path, pattern: str, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if list(run_dir_parent.glob(pattern)):
            return
        time.sleep(0.2)
    raise AssertionError(f"no {pattern} under {run_dir_parent} within {timeout} s")


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_stops_at_once_and_is_recorded_as_interrupted(results_dir: Path, workers: int) -> None:
    # With worker processes the signal reaches only the main one (docker stop, kill PID); it must stop the
    # running units, not let the pool run every queued unit to its end first.
    job = start("paper=spe", "scale=smoke", "paper.train.epochs=400", f"workers={workers}",
                results_dir=results_dir)
    wait_for_unit(results_dir / "spe" / "runs", "*/checkpoints/*.pt")
    job.send_signal(signal.SIGTERM)
    _, err = job.communicate(timeout=60)
    assert job.returncode == 130 and "interrupted; run the same command to resume" in err
    assert err.count("Traceback") == 0
    (run_dir,) = run_dirs(results_dir, "spe")
    assert json.loads((run_dir / "status.json").read_text())["status"] == "interrupted"


def test_an_interrupted_force_keeps_the_old_run(results_dir: Path) -> None:
    repro("train", *SMOKE, "paper.train.epochs=400", "unit=probe/*", f"results_dir={results_dir}")
    (run_dir,) = run_dirs(results_dir, "spe")
    before = sorted(p.name for p in (run_dir / "units").iterdir())
    job = start(*SMOKE, "paper.train.epochs=400", "force=true", results_dir=results_dir)
    wait_for_unit(results_dir / "spe" / "runs", "*.new-*/checkpoints/*.pt")
    job.send_signal(signal.SIGINT)
    job.communicate(timeout=120)
    assert sorted(p.name for p in (run_dir / "units").iterdir()) == before
    assert json.loads((run_dir / "status.json").read_text())["status"] == "partial"


def test_stale_running_runs_are_shown_as_such(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    store.write_status(run_dir, status="running", scale="smoke", pid=2**22 + 12345)
    assert store.is_stale_running(store.read_status(run_dir))
    store.write_status(run_dir, status="running", scale="smoke")
    assert not store.is_stale_running(store.read_status(run_dir))


def test_a_unit_is_computed_by_one_process_at_a_time(tmp_path: Path) -> None:
    from repro.core.runner import unit_lock

    (tmp_path / "units").mkdir()
    path = tmp_path / "units" / "u.csv"
    log = make_logger(tmp_path, "lock")
    code = (f"import fcntl; f = open({str(path.with_suffix('.lock'))!r}, 'a'); "
            "fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)")
    with unit_lock(path, log):
        held = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert held.returncode != 0 and "BlockingIOError" in held.stderr
    free = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert free.returncode == 0


def test_a_report_is_never_replaced_by_one_from_no_current_run(results_dir: Path) -> None:
    """After the code changes, `repro check` must not overwrite the stored verdicts with "not run" ones."""
    repro("train", *SMOKE, f"results_dir={results_dir}")
    (run_dir,) = run_dirs(results_dir, "spe")
    report = results_dir / "spe" / "scale-smoke" / "verdicts.json"
    before = report.read_text()
    status = json.loads((run_dir / "status.json").read_text())
    (run_dir / "status.json").write_text(json.dumps({**status, "code_hash": "older"}))
    done = repro("check", *SMOKE, f"results_dir={results_dir}", check=False)
    assert done.returncode != 0 and "made by other code" in done.stderr and "left unchanged" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert report.read_text() == before
