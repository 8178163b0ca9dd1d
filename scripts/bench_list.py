"""How long `repro list` takes against a bare Python start-up that imports omegaconf (target: within 2x).

    python scripts/bench_list.py [--repeats 15]

Each command runs in a fresh interpreter; the median wall time of each is reported, and their ratio.
"""

import argparse
import statistics
import subprocess
import sys
import time

from repro import ROOT


def median_seconds(argv: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, cwd=ROOT, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    bare = median_seconds([sys.executable, "-c", "import omegaconf"], args.repeats)
    listing = median_seconds([sys.executable, "-m", "repro.cli", "list"], args.repeats)
    papers = len(list((ROOT / "conf" / "paper").glob("*.yaml")))
    print(f"python -c 'import omegaconf': {bare:.3f} s (median of {args.repeats})")
    print(f"repro list ({papers} papers):      {listing:.3f} s")
    print(f"ratio: {listing / bare:.2f}x (target <= 2x)")


if __name__ == "__main__":
    main()
