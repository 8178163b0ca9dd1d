"""Capture the environment of a run: code version, packages, device, threads, command line."""

import os
import platform
import subprocess
import sys
from importlib import metadata

from repro import ROOT

PACKAGES = ("repro", "torch", "torch-geometric", "hydra-core", "omegaconf", "numpy", "scipy", "pandas",
            "matplotlib", "networkx")


def git_state() -> dict:
    """Commit sha and whether the working tree has uncommitted changes (None outside a checkout)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout

    try:
        sha = git("rev-parse", "HEAD").strip() or None
        dirty = bool(git("status", "--porcelain", "--untracked-files=no").strip()) if sha else None
    except (OSError, subprocess.SubprocessError):
        sha, dirty = None, None
    return {"git_sha": sha, "git_dirty": dirty}


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def capture_env(device: str, peak_cuda_bytes: int = 0) -> dict:
    import torch

    return {
        **git_state(),
        "packages": package_versions(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "device": device,
        "cuda_device_name": torch.cuda.get_device_name(device) if device.startswith("cuda") else None,
        "peak_cuda_memory_mib": round(peak_cuda_bytes / 2**20, 1),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "command_line": " ".join(sys.argv),
    }
