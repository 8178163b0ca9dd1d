"""Mutation tests: does a one-line change to the mathematics of a paper (or to the framework) fail its tests?

    python scripts/mutate.py core              # the framework's statistics, tables, run identity and seeding
    python scripts/mutate.py spe gaunt         # one or more papers
    python scripts/mutate.py --all             # every list in tests/mutations/

Each name has a list `tests/mutations/<name>.yaml`:

    tests: [tests/test_<name>.py]              # optional; this is the default for a paper
    mutations:
      - file: repro/papers/<name>/<module>.py
        find: <an exact fragment that occurs once in the file>
        replace: <the mutant>
        breaks: <what the mutation gets wrong, in words>

A mutant is "caught" when the tests fail with it. Every mutant runs in a throw-away copy of the project (the
files git knows, imported through PYTHONPATH), so the working tree never holds a mutant, even when the script
is killed. A test suite that misses a mutant which changes the mathematics has a test that cannot fail.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
LISTS = ROOT / "tests" / "mutations"


def project_copy(target: Path) -> None:
    """The tracked and untracked-but-not-ignored files of the project, copied under target."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                            capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():     # e.g. repro/conf -> ../conf: a link, so that it points inside the copy
            (target / name).symlink_to(os.readlink(source))
        elif source.is_file():
            shutil.copy2(source, target / name)


def tests_pass(copy: Path, tests: list[str]) -> bool:
    env = {**os.environ, "PYTHONPATH": str(copy)}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-n", "0", "-p", "no:randomly", *tests],
                          cwd=copy, env=env, capture_output=True, text=True)
    return done.returncode == 0


def mutate(name: str) -> tuple[int, int]:
    """Run every mutant of one list; returns (caught, total)."""
    spec = yaml.safe_load((LISTS / f"{name}.yaml").read_text())
    tests = spec.get("tests") or [f"tests/test_{name}.py"]
    mutations = spec["mutations"]
    caught = 0
    with tempfile.TemporaryDirectory(prefix=f"mutate-{name}-") as tmp:
        copy = Path(tmp)
        project_copy(copy)
        if not tests_pass(copy, tests):
            print(f"{name}: the tests fail before any mutation; fix them first")
            return 0, len(mutations)
        for m in mutations:
            file = copy / m["file"]
            source = file.read_text()
            if source.count(m["find"]) != 1:
                print(f"{name}: SKIP    {m['breaks']}: the fragment does not occur exactly once in {m['file']}")
                continue
            file.write_text(source.replace(m["find"], m["replace"]))
            try:
                passed = tests_pass(copy, tests)
            finally:
                file.write_text(source)
            caught += not passed
            print(f"{name}: {'caught' if not passed else 'MISSED'}  {m['breaks']} ({m['file']})", flush=True)
    print(f"{name}: {caught} of {len(mutations)} mutations caught")
    return caught, len(mutations)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="core, or paper slugs with a list in tests/mutations/")
    parser.add_argument("--all", action="store_true", help="every list in tests/mutations/")
    args = parser.parse_args()
    names = sorted(p.stem for p in LISTS.glob("*.yaml")) if args.all else args.names
    unknown = [n for n in names if not (LISTS / f"{n}.yaml").is_file()]
    if unknown or not names:
        print(f"no mutation list for {unknown or 'nothing'}; lists: {sorted(p.stem for p in LISTS.glob('*.yaml'))}")
        return 2
    results = [mutate(n) for n in names]
    missed = sum(total - caught for caught, total in results)
    print(f"all: {sum(c for c, _ in results)} of {sum(t for _, t in results)} caught")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
