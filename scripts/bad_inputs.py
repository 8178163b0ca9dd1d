"""Bad inputs and faults, tried as a user would meet them: how does each end?

    python scripts/bad_inputs.py              # every case, then the counts by outcome (minutes)
    python scripts/bad_inputs.py --list       # the cases only

Each case runs `repro` in a subprocess (after an optional setup that damages a stored run or writes a malformed
data file) and is classified as:
- ``one-line error``: a non-zero exit that ends in one line naming the problem (``repro: error: ...``), after
  at most the run's own progress log, with no traceback;
- ``handled``: exit 0 with the fault repaired or reported (a corrupt run redone by force=true, a damaged unit
  file recomputed, a command with nothing to show saying so);
- ``traceback``: a Python traceback reached the user (a defect);
- ``wrong``: the command succeeded where it should have refused (a defect).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAST = "gaunt"   # a paper whose smoke run takes seconds: the stored-run faults damage one of its runs


@dataclass
class Case:
    name: str
    args: list[str]
    expect: str = "error"                     # "error" (must refuse) or "handled" (must succeed)
    setup: Callable[[Path], None] | None = None
    needs_run: bool = False                   # run FAST's smoke into <tmp>/results first
    extra: list[str] = field(default_factory=list)


def repro(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "repro.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONHASHSEED": "0"})


def run_dir(tmp: Path) -> Path:
    return next((tmp / "results" / FAST / "runs").iterdir())


def edit_rows(tmp: Path, change: Callable[[list[str]], list[str]]) -> None:
    path = run_dir(tmp) / "rows.csv"
    path.write_text("\n".join(change(path.read_text().splitlines())) + "\n")


def first_unit(tmp: Path) -> Path:
    return sorted((run_dir(tmp) / "units").glob("*.csv"))[0]


def set_status(tmp: Path, text: str) -> None:
    (run_dir(tmp) / "status.json").write_text(text)


def planted_symlink(tmp: Path) -> None:
    target = tmp / "elsewhere.csv"
    target.write_text("x\n")
    unit = first_unit(tmp)
    unit.unlink()
    unit.symlink_to(target)


def malformed_off(tmp: Path) -> None:
    from tests.test_tinvnn import write_modelnet40_raw

    write_modelnet40_raw(tmp / "data", {c: {"train": 2, "test": 1} for c in ("chair", "sofa")})
    mesh = next((tmp / "data" / "modelnet40" / "raw" / "sofa" / "train").glob("*.off"))
    mesh.write_text("OFF\n4 1 0\n0 0 0\n1 0 0\n0 1 0\n0 0 1\n3 0 1 9\n")


def dry_data(slug: str, damage: Callable[[Path], None] | None = None) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        import importlib

        importlib.import_module(f"tests.test_{slug}").write_dry_data(tmp / "data")
        if damage is not None:
            damage(tmp / "data")
    return setup


def first_file(pattern: str, change: Callable[[Path], None]) -> Callable[[Path], None]:
    def damage(data: Path) -> None:
        change(sorted(data.rglob(pattern))[0])
    return damage


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: max(1, path.stat().st_size // 3)])


def nan_cell(path: Path) -> None:
    lines = path.read_text().splitlines()
    cells = lines[2].split(",")
    cells[1] = "nan"
    lines[2] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")


def empty(path: Path) -> None:
    path.write_bytes(b"")


def cases() -> list[Case]:
    t = ["train", f"paper={FAST}", "scale=smoke"]
    spe = ["train", "paper=spe", "scale=smoke"]
    offline = [Case(f"{slug} at scale=paper offline", ["train", f"paper={slug}", "scale=paper"])
               for slug in ("spe", "fa", "parot", "tinvnn", "olinear", "flowstate", "gfucb", "funbat",
                            "dp_similarity", "evonorm", "ebv")]
    offline.append(Case("hippo LRA at scale=paper offline", ["train", "paper=hippo", "scale=paper",
                                                              "paper.lra.tasks=[listops]"]))
    dry = ["train", "scale=dry"]
    return [
        # the command line
        Case("no subcommand (usage)", [], expect="handled"),
        Case("unknown subcommand", ["trian", f"paper={FAST}"]),
        Case("unknown paper", ["train", "paper=nope"]),
        Case("no paper", ["train"]),
        Case("unknown scale", ["train", f"paper={FAST}", "scale=huge"]),
        Case("unknown root key", [*t, "foo=1"]),
        Case("misplaced paper key", ["train", "paper=spe", "scale=smoke", "train.lr=0.1"]),
        Case("+key the paper never reads", [*t, "+paper.nonsense=1"]),
        Case("wrong type", [*spe, "paper.train.epochs=abc"]),
        Case("float for an int", [*spe, "paper.train.epochs=2.5"]),
        Case("epochs 0", [*spe, "paper.train.epochs=0"]),
        Case("negative epochs", [*spe, "paper.train.epochs=-3"]),
        Case("lr 0", [*spe, "paper.train.lr=0"]),
        Case("negative lr", [*spe, "paper.train.lr=-1e-3"]),
        Case("batch size 0", [*spe, "paper.train.batch_size=0"]),
        Case("threads 0", [*t, "threads=0"]),
        Case("workers 0", [*t, "workers=0"]),
        Case("seed not an int", [*t, "seed=abc"]),
        Case("unknown device", [*t, "device=tpu"]),
        Case("cuda without a GPU", [*t, "device=cuda"]),
        Case("unknown precision", [*t, "precision=fp8"]),
        Case("unit glob matching nothing", [*t, "unit=zzz/*"]),
        Case("unknown method", [*spe, "paper.methods=[nope]"]),
        Case("resume of a missing run", [*t, "resume=/nonexistent/run"]),
        Case("results_dir is a file", [*t, "results_dir=/etc/hostname"]),
        Case("list with an argument", ["list", "extra"]),
        Case("table without runs", ["table", f"paper={FAST}"], expect="handled"),
        Case("check without runs", ["check", f"paper={FAST}"], expect="handled"),
        Case("figures without runs", ["figures", f"paper={FAST}"], expect="handled"),
        # paper-scale data that is not there
        *offline,
        # paper-scale data that is there but malformed (the dry files, damaged)
        Case("olinear: a NaN in an ETT CSV", ["train", "paper=olinear", *dry[1:]],
             setup=dry_data("olinear", first_file("ETTh1.csv", nan_cell))),
        Case("olinear: an empty ETT CSV", ["train", "paper=olinear", *dry[1:]],
             setup=dry_data("olinear", first_file("ETTh1.csv", empty))),
        Case("gfucb: a truncated MNIST file", ["train", "paper=gfucb", *dry[1:]],
             setup=dry_data("gfucb", first_file("train-images*", truncate))),
        Case("tinvnn: a mesh with a face outside its vertices", ["train", "paper=tinvnn", *dry[1:]],
             setup=malformed_off),
        Case("parot: a truncated HDF5 file", ["train", "paper=parot", *dry[1:]],
             setup=dry_data("parot", first_file("*.h5", truncate))),
        Case("funbat: a truncated array file", ["train", "paper=funbat", *dry[1:]],
             setup=dry_data("funbat", first_file("*.npy", truncate))),
        Case("flowstate: an empty Arrow file", ["train", "paper=flowstate", *dry[1:]],
             setup=dry_data("flowstate", first_file("*.arrow", empty))),
        # a stored run, damaged
        Case("duplicated rows.csv, then table", ["table", f"paper={FAST}"], needs_run=True,
             setup=lambda tmp: edit_rows(tmp, lambda lines: lines + lines[1:])),
        Case("truncated rows.csv, then check", ["check", f"paper={FAST}"], needs_run=True,
             setup=lambda tmp: edit_rows(tmp, lambda lines: lines[: len(lines) // 2])),
        Case("one edited value in rows.csv, then check", ["check", f"paper={FAST}"], needs_run=True,
             setup=lambda tmp: edit_rows(tmp, lambda lines: [lines[0], lines[1].replace(",", ",9", 1), *lines[2:]])),
        Case("undecodable rows.csv, then table", ["table", f"paper={FAST}"], needs_run=True,
             setup=lambda tmp: (run_dir(tmp) / "rows.csv").write_bytes(b"\xff\xfe\x00garbage")),
        Case("corrupt status.json, then train", t, needs_run=True, setup=lambda tmp: set_status(tmp, "{not json")),
        Case("corrupt status.json, then train force=true", [*t, "force=true"], expect="handled", needs_run=True,
             setup=lambda tmp: set_status(tmp, "{not json")),
        Case("truncated unit file, then resume", t, expect="handled", needs_run=True,
             setup=lambda tmp: (set_status(tmp, json.dumps({**json.loads((run_dir(tmp) / "status.json").read_text()),
                                                            "status": "interrupted"})),
                                truncate(first_unit(tmp)))),
        Case("unit file without its seal, then resume", t, expect="handled", needs_run=True,
             setup=lambda tmp: (set_status(tmp, json.dumps({**json.loads((run_dir(tmp) / "status.json").read_text()),
                                                            "status": "interrupted"})),
                                first_unit(tmp).with_suffix(".json").unlink())),
        Case("planted symlink in a run, then train force=true", [*t, "force=true"], needs_run=True,
             setup=planted_symlink),
        Case("${oc.env:HOME} in a stored overrides.yaml, then table", ["table", f"paper={FAST}"], expect="handled",
             needs_run=True,
             setup=lambda tmp: (run_dir(tmp) / "overrides.yaml").write_text("- seed=${oc.env:HOME}\n")),
        Case("stored overrides.yaml not YAML, then table", ["table", f"paper={FAST}"], needs_run=True,
             setup=lambda tmp: (run_dir(tmp) / "overrides.yaml").write_text("- [unclosed\n")),
    ]


def classify(case: Case, done: subprocess.CompletedProcess) -> str:
    output = (done.stdout + done.stderr).strip()
    if "Traceback" in output:
        return "traceback"
    if done.returncode == 0:
        return "handled" if case.expect == "handled" else "wrong"
    # A run logs its progress before it meets the fault; what counts is that it ends in one line of error.
    lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
    if lines and lines[-1].startswith(("repro: error:", "repro: unknown", "repro: interrupted")):
        return "one-line error"
    return f"error in {len(lines)} lines"


def run_case(case: Case, tmp: Path) -> tuple[str, str]:
    results = tmp / "results"
    if case.needs_run:
        first = repro("train", f"paper={FAST}", "scale=smoke", f"results_dir={results}")
        if first.returncode != 0:
            return "setup failed", first.stderr.strip().splitlines()[-1:]
    if case.setup is not None:
        case.setup(tmp)
    args = case.args
    if args and args[0] in ("train", "table", "check", "figures"):
        args = [*args, f"results_dir={results}" if not any(a.startswith("results_dir=") for a in args) else "",
                f"data_dir={tmp / 'data'}"]
        args = [a for a in args if a]
    try:
        done = repro(*args)
    except subprocess.TimeoutExpired:
        return "timeout", ""
    last = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] or [""]
    return classify(case, done), last[0][:160]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--list", action="store_true")
    parser.add_argument("-k", default="", help="only cases whose name contains this")
    options = parser.parse_args()
    chosen = [c for c in cases() if options.k in c.name]
    if options.list:
        print("\n".join(c.name for c in chosen))
        return
    sys.path.insert(0, str(ROOT))
    counts: dict[str, int] = {}
    for case in chosen:
        tmp = Path(tempfile.mkdtemp(prefix="repro-bad-"))
        try:
            outcome, message = run_case(case, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        counts[outcome] = counts.get(outcome, 0) + 1
        print(f"{outcome:16s} {case.name}: {message}", flush=True)
    print(f"\n{len(chosen)} cases: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    sys.exit(int(any(k in counts for k in ("traceback", "wrong", "timeout", "setup failed"))))


if __name__ == "__main__":
    main()
