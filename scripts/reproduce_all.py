"""Reproduce every paper (or some) at one scale and regenerate results/ from the stored runs.

    python scripts/reproduce_all.py                      # all papers, cpu scale
    python scripts/reproduce_all.py --paper spe olinear  # some papers
    python scripts/reproduce_all.py --report-only        # tables, figures, verdicts from stored runs

A paper that fails is reported and the others go on; the exit code is non-zero when any failed.
"""

import argparse
import subprocess
import sys
import time

from repro import ROOT
from repro.cli import papers


def repro(*args: str) -> int:
    print("$ repro " + " ".join(args), flush=True)
    return subprocess.run([sys.executable, "-m", "repro.cli", *args], cwd=ROOT).returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paper", nargs="*", help="slugs (default: every paper in conf/paper/)")
    parser.add_argument("--scale", default="cpu", choices=["smoke", "cpu", "paper"])
    parser.add_argument("--report-only", action="store_true", help="do not train; redraw from stored runs")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides passed to every command")
    args = parser.parse_args()
    slugs = args.paper or [p["slug"] for p in papers()]
    failed, times = [], {}
    for slug in slugs:
        common = [f"paper={slug}", f"scale={args.scale}", *args.overrides]
        start = time.perf_counter()
        if not args.report_only and repro("train", *common) != 0:
            failed.append(slug)
        times[slug] = time.perf_counter() - start
        # `train` refreshes the table, verdicts and figures itself; a report-only pass redraws them.
        if args.report_only and repro("figures", *common) != 0:
            failed.append(slug)
    if not args.report_only:
        print("\nwall time per paper (s): " + ", ".join(f"{s} {t:.0f}" for s, t in times.items()))
    if failed:
        print(f"failed: {' '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
