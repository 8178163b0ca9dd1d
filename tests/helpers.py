"""Helpers for tests that run `repro` as a user would: a real subprocess, results in a temp dir."""

import gzip
import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from repro import CONF_DIR, ROOT
from repro.cli import papers

PAPERS = [p["slug"] for p in papers()]


def compose_config(overrides: list[str]) -> DictConfig:
    """The config `repro <cmd> *overrides` would see (without the hydra node)."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=overrides)


def repro(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `repro <args>` in a subprocess; stdout/stderr captured as text."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run([sys.executable, "-m", "repro.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env)
    if check and done.returncode != 0:
        raise AssertionError(f"repro {' '.join(args)} exited {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done


def children_cpu_seconds() -> float:
    """CPU time (user + system) of every child process this process has waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_dirs(results_dir: Path, slug: str) -> list[Path]:
    root = results_dir / slug / "runs"
    return sorted(root.iterdir()) if root.exists() else []


def rows_of(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "rows.csv")


class Payload:
    """A planted pickle: unpickling it runs `touch <marker>`, so a test sees whether a loader ran it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return os.system, (f"touch {self.marker}",)


def write_idx(path: Path, array: np.ndarray) -> None:
    """A gzip-compressed IDX file of unsigned bytes (MNIST's format): magic 0x0000 08 <dims>, big-endian sizes, the
    data."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())
