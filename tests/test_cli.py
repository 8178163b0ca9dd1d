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
    (["paper=nope"], "unknown paper nope; choose from"),
    ([], "which paper?"),
    (["paper=spe", "no_such_key=1"], "no_such_key"),
    (["paper=spe", "paper.model.no_such_key=1"], "no_such_key"),
    (["paper=spe", "scale=huge"], "unknown scale huge; choose from cpu, dry, paper, smoke"),
    (["paper=spe", "seed=abc"], "seed must be int"),
    (["paper=spe", "paper.train.epochs=1.5"], "paper.train.epochs must be int"),
    (["paper=spe", "device=tpu"], "device='tpu'"),
    (["paper=spe", "paper.methods=[spe,bogus]"], "bogus"),
])
def test_bad_input_fails_before_work_with_a_clear_message(args: list[str], message: str, results_dir: Path) -> None:
    done = repro("train", "scale=smoke", *args, f"results_dir={results_dir}", check=False)
    assert done.returncode != 0
    assert message in done.stderr + done.stdout
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr     # one line, never a listing or a traceback
    assert not any((results_dir / "spe" / "runs").glob("*/rows.csv"))


def test_unknown_subcommand() -> None:
    done = repro("trian", "paper=spe", check=False)
    assert done.returncode == 2 and "unknown subcommand 'trian'" in done.stderr


def test_help_with_and_without_a_paper() -> None:
    bare = repro("train", "--help")
    assert "usage: repro" in bare.stdout and "spe" in bare.stdout and "Traceback" not in bare.stderr
    with_paper = repro("train", "paper=spe", "--help")
    assert "paper" in with_paper.stdout and "Traceback" not in with_paper.stderr


@pytest.mark.parametrize("command", ["table", "check", "figures"])
def test_reports_without_runs_say_so_in_one_line(command: str, results_dir: Path) -> None:
    done = repro(command, "paper=fa", "scale=smoke", f"results_dir={results_dir}", check=False)
    assert done.returncode == 0 and "Traceback" not in done.stderr
    assert "no finished smoke-scale runs of fa" in done.stderr


def test_train_prints_verdicts_reuses_forces_and_reports_per_scale(results_dir: Path) -> None:
    first = repro("train", "paper=spe", "scale=smoke", f"results_dir={results_dir}")
    assert "spe_stable_at_gap" in first.stdout and "[" in first.stdout
    out = results_dir / "spe" / "scale-smoke"
    assert f"wrote {out / 'README.md'}" in first.stdout
    (run_dir,) = run_dirs(results_dir, "spe")
    for name in ("config.yaml", "overrides.yaml", "rows.csv", "metrics.jsonl", "run.log", "env.json", "status.json"):
        assert (run_dir / name).exists(), name
    env = json.loads((run_dir / "env.json").read_text())
    assert {"git_sha", "git_dirty", "packages", "device", "peak_cuda_memory_mib", "torch_threads",
            "command_line"} <= set(env)
    assert env["device"] == "cpu" and env["torch_threads"] >= 1
    status = json.loads((run_dir / "status.json").read_text())
    n_units = len(list((run_dir / "units").glob("*.csv")))
    assert status["status"] == "done" and status["wall_time_s"] > 0 and status["units_total"] == n_units > 1
    log = (run_dir / "run.log").read_text()
    assert f"unit {n_units} of {n_units} done" in log and "ETA" in log

    again = repro("train", "paper=spe", "scale=smoke", f"results_dir={results_dir}")
    assert "reusing finished run" in again.stdout
    forced = repro("train", "paper=spe", "scale=smoke", "force=true", f"results_dir={results_dir}")
    assert "reusing" not in forced.stdout
    assert run_dirs(results_dir, "spe") == [run_dir]

    table = repro("table", "paper=spe", "scale=smoke", "latex=true", f"results_dir={results_dir}")
    assert "| spe |" in table.stdout
    check = repro("check", "paper=spe", "scale=smoke", f"results_dir={results_dir}")
    assert "spe_stable_at_gap" in check.stdout and "paper:" in check.stdout and "criterion:" in check.stdout
    assert "inconclusive" in check.stdout   # one smoke replicate cannot decide a stochastic claim
    for name in ("README.md", "table.csv", "table.tex", "verdicts.json", "figures/sensitivity.png",
                 "figures/sensitivity.pdf"):
        assert (out / name).exists(), name
    assert not (results_dir / "spe" / "README.md").exists(), "a smoke report must not replace the cpu one"
    assert "figures/sensitivity.png" in (out / "README.md").read_text()


def test_same_config_and_seed_give_identical_rows(tmp_path: Path) -> None:
    for name in ("a", "b"):
        repro("train", "paper=spe", "scale=smoke", f"results_dir={tmp_path / name}")
    (a,), (b,) = run_dirs(tmp_path / "a", "spe"), run_dirs(tmp_path / "b", "spe")
    assert a.name == b.name
    measured = [c for c in rows_of(a).columns if not is_timing_column(c)]
    assert len(measured) > 10
    pd.testing.assert_frame_equal(rows_of(a)[measured], rows_of(b)[measured])


def test_units_by_glob_and_in_workers_fill_one_run_with_the_same_rows(tmp_path: Path) -> None:
    repro("train", "paper=spe", "scale=smoke", f"results_dir={tmp_path / 'whole'}")
    part = tmp_path / "parts"
    first = repro("train", "paper=spe", "scale=smoke", "unit=probe/*", f"results_dir={part}")
    (run_dir,) = run_dirs(part, "spe")
    assert json.loads((run_dir / "status.json").read_text())["status"] == "partial"
    assert "Traceback" not in first.stderr
    repro("train", "paper=spe", "scale=smoke", "unit=cycles/*", "workers=2", f"results_dir={part}")
    assert json.loads((run_dir / "status.json").read_text())["status"] == "done"
    (whole,) = run_dirs(tmp_path / "whole", "spe")
    measured = [c for c in rows_of(whole).columns if not is_timing_column(c)]
    pd.testing.assert_frame_equal(rows_of(run_dir)[measured], rows_of(whole)[measured])
    nothing = repro("train", "paper=spe", "scale=smoke", "unit=nope/*", f"results_dir={part}", check=False)
    n_units = json.loads((run_dir / "status.json").read_text())["units_total"]
    assert nothing.returncode == 2 and f"matches none of spe's {n_units} units" in nothing.stderr


def test_cuda_without_a_gpu_is_refused_before_work(results_dir: Path) -> None:
    done = repro("train", "paper=spe", "scale=smoke", "device=cuda", f"results_dir={results_dir}", check=False)
    assert done.returncode == 2 and "no CUDA device" in done.stderr
    assert not run_dirs(results_dir, "spe")


def test_interrupted_run_continues_to_the_same_rows(results_dir: Path) -> None:
    repro("train", "paper=spe", "scale=smoke", f"results_dir={results_dir}")
    (run_dir,) = run_dirs(results_dir, "spe")
    finished = rows_of(run_dir)
    # As if the process died while training the last units: their rows and the final table are missing.
    (run_dir / "rows.csv").unlink()
    for unit in sorted((run_dir / "units").glob("cycles*.csv"))[-2:]:
        unit.unlink()
    status = json.loads((run_dir / "status.json").read_text())
    (run_dir / "status.json").write_text(json.dumps({**status, "status": "interrupted"}))
    done = repro("train", "paper=spe", "scale=smoke", f"resume={run_dir}", f"results_dir={results_dir}")
    assert "continuing the unfinished run" in done.stderr
    n_units = status["units_total"]
    assert f"unit 1 of {n_units} reused" in done.stderr and f"unit {n_units} of {n_units} done" in done.stderr
    measured = [c for c in finished.columns if not is_timing_column(c)]
    pd.testing.assert_frame_equal(rows_of(run_dir)[measured], finished[measured])


def test_run_made_by_other_code_starts_afresh(results_dir: Path) -> None:
    repro("train", "paper=spe", "scale=smoke", f"results_dir={results_dir}")
    (run_dir,) = run_dirs(results_dir, "spe")
    # As if the code spe imports had been edited after this unfinished run: its cached units are stale.
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


def sweep_manifest(results_dir: Path) -> dict:
    (path,) = (results_dir / "_sweeps").glob("*/manifest.json")
    return json.loads(path.read_text())


def test_readme_sweep_records_a_manifest_refreshes_the_table_and_survives_a_failing_job(results_dir: Path) -> None:
    """The README's sweep over `paper.model.pe_dim`, with a failing job beside it."""
    done = repro("train", "-m", "paper=spe", "scale=smoke", "paper.model.pe_dim=8,16",
                 "paper.methods=[none,spe],[bogus]", f"results_dir={results_dir}", check=False)
    assert done.returncode != 0
    jobs = sweep_manifest(results_dir)["jobs"]
    assert [j["status"] for j in jobs].count("done") == 2 and [j["status"] for j in jobs].count("failed") == 2
    assert all("bogus" in j["error"] for j in jobs if j["status"] == "failed")
    assert {j["run_id"] for j in jobs if j["status"] == "done"} == {d.name for d in run_dirs(results_dir, "spe")}
    table = pd.read_csv(results_dir / "spe" / "scale-smoke" / "table.csv")
    assert set(table["paper.model.pe_dim"].dropna().astype(int)) == {8, 16}


def test_readme_optuna_search_returns_the_metric(results_dir: Path) -> None:
    repro("train", "-m", "paper=spe", "scale=smoke", "paper.methods=[spe]", "hydra/sweeper=optuna",
          "hydra.sweeper.n_trials=3", "paper.train.lr=interval(1e-4,1e-2)", f"results_dir={results_dir}",
          timeout=300)
    jobs = sweep_manifest(results_dir)["jobs"]
    assert len(jobs) == 3 and all(isinstance(j["value"], float) for j in jobs)
    (best,) = (results_dir / "_sweeps").glob("*/optimization_results.yaml")
    assert "best_value" in best.read_text()


@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_readme_launchers(launcher: str, results_dir: Path) -> None:
    repro("train", "-m", "paper=spe", "scale=smoke", "seed=0,1", "paper.methods=[none]",
          f"hydra/launcher={launcher}", f"results_dir={results_dir}", timeout=600)
    runs = run_dirs(results_dir, "spe")
    assert len(runs) == 2
    assert all(json.loads((d / "status.json").read_text())["status"] == "done" for d in runs)
    table = repro("table", "paper=spe", "scale=smoke", f"results_dir={results_dir}")
    assert "±" in table.stdout  # two seeds -> mean ± std


def test_a_wheel_install_finds_its_configs_and_writes_into_the_working_directory(tmp_path: Path) -> None:
    """`pip install .` (not editable): conf/ travels in the package; results/ and data/ follow the cwd."""
    import shutil

    wheel_dir, target, work, source = tmp_path / "wheel", tmp_path / "site", tmp_path / "work", tmp_path / "src"
    work.mkdir()
    # Built from a copy, so that setuptools' build/ and egg-info never land in the checkout.
    shutil.copytree(ROOT / "repro", source / "repro", symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "conf", source / "conf")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(wheel_dir)], check=True, capture_output=True)
    (wheel,) = wheel_dir.glob("repro-*.whl")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    env = {**__import__("os").environ, "PYTHONPATH": str(target)}
    listed = subprocess.run([sys.executable, "-m", "repro.cli", "list"], cwd=work, env=env, capture_output=True,
                            text=True)
    assert listed.returncode == 0 and "spe" in listed.stdout and "hippo" in listed.stdout
    composed = subprocess.run([sys.executable, "-m", "repro.cli", "train", "paper=spe", "--cfg", "job", "--resolve"],
                              cwd=work, env=env, capture_output=True, text=True)
    assert f"results_dir: {work}/results" in composed.stdout


def test_every_root_key_of_the_config_is_accepted_on_the_command_line(results_dir: Path) -> None:
    from repro.cli import root_keys

    assert {"precision", "tf32", "compile", "loader_workers", "workers", "unit", "threads"} <= set(root_keys())
    done = repro("train", "paper=spe", "scale=smoke", "precision=bf16", "compile=false", "loader_workers=0",
                 f"results_dir={results_dir}", "--cfg", "job")
    assert "precision: bf16" in done.stdout


def test_results_dir_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    a_file = tmp_path / "results.txt"
    a_file.write_text("not a folder\n")
    done = repro("train", "paper=spe", "scale=smoke", f"results_dir={a_file}", check=False)
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        f"repro: error: results_dir={a_file} is a file, not a folder; pass a folder (it is created if missing)"]
