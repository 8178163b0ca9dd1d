"""Every paper's smoke config on the GPU: does it crash, does it use the GPU, how fast is it against the CPU?

    python scripts/gpu_check.py [--paper spe ...] [--scale smoke] [--out results/gpu_check.md]

Runs `repro train paper=<slug> scale=<scale> device=cuda` and the same on the CPU, each in a fresh
results directory, and writes a Markdown report: per paper, the outcome, the CUDA memory its units
allocated at peak (from env.json), and the wall time on each device. A paper that crashes, or that
ignores the GPU without declaring itself cpu_only, fails the script (exit 1).
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from repro import ROOT
from repro.cli import papers


def train(slug: str, scale: str, device: str, results: Path) -> tuple[int, float, str, dict]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "repro.cli", "train", f"paper={slug}", f"scale={scale}",
                           f"device={device}", f"results_dir={results}"], cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    envs = list((results / slug / "runs").glob("*/env.json"))
    env = json.loads(envs[0].read_text()) if envs else {}
    last = (done.stderr.strip().splitlines() or [""])[-1]
    return done.returncode, seconds, last, env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paper", nargs="*", default=[p["slug"] for p in papers()])
    parser.add_argument("--scale", default="smoke")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "gpu_check.md")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("gpu_check: torch sees no CUDA device; run this on a GPU machine")
        return 2
    lines = [f"# GPU check ({torch.cuda.get_device_name(0)}, torch {torch.__version__}, scale={args.scale})\n",
             "| paper | outcome | peak CUDA memory (MiB) | wall on GPU (s) | wall on CPU (s) | note |",
             "|---|---|---|---|---|---|"]
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        for slug in args.paper:
            code, gpu_s, message, env = train(slug, args.scale, "cuda", Path(tmp) / "gpu")
            _, cpu_s, _, _ = train(slug, args.scale, "cpu", Path(tmp) / "cpu")
            outcome = "ok" if code == 0 else ("ignores the GPU" if "ignored device" in message else "crashed")
            if code != 0:
                failed.append(slug)
            lines.append(f"| {slug} | {outcome} | {env.get('peak_cuda_memory_mib', '—')} | {gpu_s:.1f} | {cpu_s:.1f} "
                         f"| {message[:120] if code else ''} |")
            print(lines[-1], flush=True)
    lines.append(f"\n{len(args.paper) - len(failed)} of {len(args.paper)} papers ran on the GPU."
                 " Wall times include start-up and are measured one after the other on the same machine.")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
