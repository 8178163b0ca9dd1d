"""A small mutation test of the framework: does a one-line change to the statistics of verdicts, the
table grouping, the run identity or the seeding fail a core test?

    python scripts/mutate_core.py            # every mutation, then the share caught (target >= 9 in 10)

Each mutation replaces one exact line fragment, runs the core tests, and restores the file.
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ["tests/test_core_claims.py", "tests/test_core_units.py", "tests/test_core_run.py"]

# (file, fragment, replacement, what the mutation breaks)
MUTATIONS = [
    ("repro/core/claims.py", "half = float(stats.t.ppf(0.975, n - 1))", "half = float(stats.t.ppf(0.95, n - 1))",
     "mean interval at the wrong quantile"),
    ("repro/core/claims.py", "* spread / math.sqrt(n)", "* spread / n", "standard error of the mean"),
    ("repro/core/claims.py", "return Interval(mean, -math.inf, math.inf, n, False)",
     "return Interval(mean, mean, mean, n, True)", "one replicate decides"),
    ("repro/core/claims.py", "return HOLDS if OPS[op](interval.hi, 0.0)", "return HOLDS if OPS[op](interval.lo, 0.0)",
     "holds on the near end of the interval"),
    ("repro/core/claims.py", "half = float(stats.t.ppf(0.975, x.size - 2)) * fit.stderr",
     "half = float(stats.t.ppf(0.975, x.size - 1)) * fit.stderr", "slope interval degrees of freedom"),
    ("repro/core/claims.py", "high = math.inf if hi_end is None", "high = -math.inf if hi_end is None",
     "open top of a slope window"),
    ("repro/core/claims.py", "(a[common] - factor * b[common])", "(a[common] - b[common])", "factor ignored"),
    ("repro/core/claims.py", "return chosen.groupby(keys)[metric]", "return chosen.groupby(keys[:1])[metric]",
     "replicates pooled into one"),
    ("repro/core/claims.py", 'flags.isin(["false", "0", "0.0"])', 'flags.isin(["true"])', "convergence ignored"),
    ("repro/core/claims.py", "if len(common) == len(a) == len(b) and len(common) > 0:", "if False:",
     "pairing dropped"),
    ("repro/core/table.py", 'keys = [*spec["index"], *sweep_columns(chosen, spec)]', 'keys = [*spec["index"]]',
     "swept settings averaged together"),
    ("repro/core/table.py", 'keys = [*spec["index"], *sweep_columns(chosen, spec)]',
     'keys = [*spec["index"], *sweep_columns(chosen, spec), "replicate"]', "replicates tabled one by one"),
    ("repro/core/store.py", '"loader_workers")', '"loader_workers", "threads")',
     "threads outside the identity"),
    ("repro/core/store.py", "for key in (*NON_IDENTITY_KEYS, *exclude):",
     "for key in (*NON_IDENTITY_KEYS, *exclude, 'paper'):", "the paper's config outside the identity"),
    ("repro/core/store.py", "                todo.append(base)\n", "                pass\n",
     "imported modules left out of the code hash"),
    ("repro/core/seeding.py", "    torch.manual_seed(seed)", "    pass", "torch left unseeded"),
    ("repro/core/context.py", 'child_seed(self.root_seed, "unit", unit.name)',
     'child_seed(self.root_seed, "unit", unit.experiment)', "unit seed ignores the method"),
    ("repro/core/context.py", 'child_seed(self.root_seed, "replicate", self.unit.replicate, *names)',
     'child_seed(self.root_seed, "replicate", self.unit.method, *names)', "data seed not shared by methods"),
    ("repro/core/units.py", "for r in (range(replicates) if u.stochastic else [0])", "for r in range(replicates)",
     "deterministic units replicated"),
    ("repro/core/train.py", "return bool(before - last <= tolerance * abs(before))",
     "return bool(before - last >= tolerance * abs(before))", "plateau rule inverted"),
]


def run_tests() -> bool:
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:randomly", *TESTS], cwd=ROOT,
                          capture_output=True, text=True)
    return done.returncode == 0


def main() -> int:
    if not run_tests():
        print("the core tests fail before any mutation; fix them first")
        return 2
    caught = 0
    for path, fragment, replacement, what in MUTATIONS:
        file = ROOT / path
        source = file.read_text()
        if source.count(fragment) != 1:
            print(f"SKIP  {what}: fragment not found once in {path}")
            continue
        file.write_text(source.replace(fragment, replacement))
        try:
            passed = run_tests()
        finally:
            file.write_text(source)
        caught += not passed
        print(f"{'caught' if not passed else 'MISSED'}  {what} ({path})")
    print(f"{caught} of {len(MUTATIONS)} mutations caught ({caught / len(MUTATIONS):.0%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
