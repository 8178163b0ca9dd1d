"""Shared fixtures: no network in any test, configs composed through Hydra's compose API."""

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """One intra-op thread per test process: the xdist workers already share the machine's cores, and torch's
    default of one thread per core each oversubscribes them, which slows small ops by up to a hundred times.
    (`repro` subprocesses set their own threads from the config.)"""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """A test that reaches for the network fails loudly (loopback stays allowed for local launchers)."""
    original = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and host not in ("127.0.0.1", "localhost", "::1") and not host.startswith("/"):
            raise RuntimeError(f"test tried to reach the network ({address}); tests must run offline")
        return original(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture
def results_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "results"
