"""EXP (Abboud et al., IJCAI 2021): 600 pairs of 1-WL-equivalent, non-isomorphic graphs encoding planar SAT
formulas, one satisfiable and one not; EXP-classify labels each graph SAT (1) / UNSAT (0).

The authors ship it as ``Data/EXP/raw/GRAPHSAT.pkl`` in github.com/ralphabb/GNN-RNI: a pickled list of
(PyTorch Geometric 1.x) ``Data`` objects with ``x`` (n, 1) node labels in {0, 1}, ``edge_index`` (2, E) (both
directions) and ``y`` (1,). The parser reads that file without torch_geometric: a restricted unpickler maps the
``Data`` class onto a plain attribute holder and admits only the torch globals that rebuild tensors.
"""

import importlib
import io
import pickle
from pathlib import Path

import numpy as np

from repro.core.data import fetch, sha256

EXP_URL = "https://raw.githubusercontent.com/ralphabb/GNN-RNI/main/Data/EXP/raw/GRAPHSAT.pkl"
# The file's SHA-256 could not be pinned (written offline); the loader logs it so that a run records it.
EXP_SHA256 = None


class _Record:
    """Stands in for torch_geometric.data.Data: keeps the pickled attribute dict."""

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)


def _load_storage(serialized: bytes):
    """A tensor storage pickled as torch.save bytes, read with torch's weights-only unpickler."""
    import torch

    return torch.load(io.BytesIO(serialized), weights_only=True)


class _ExpUnpickler(pickle.Unpickler):
    """Only the classes and functions a pickled list of PyG 1.x Data objects with CPU tensors needs."""

    ALLOWED = {("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor"),
               ("torch._tensor", "_rebuild_from_type_v2"), ("torch", "Tensor"),
               ("torch.storage", "_load_from_bytes"), ("collections", "OrderedDict"),
               ("_codecs", "encode")}  # protocol 2 pickles bytes as _codecs.encode(str, "latin1")

    def find_class(self, module: str, name: str):
        if name == "Data" and module.startswith("torch_geometric"):
            return _Record
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"EXP file refers to {module}.{name}, which a list of PyG Data objects "
                                         "does not need; the file is not GRAPHSAT.pkl")
        if (module, name) == ("torch.storage", "_load_from_bytes"):
            return _load_storage
        return getattr(importlib.import_module(module), name)


def parse_exp(path: Path) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """GRAPHSAT.pkl -> adjacency matrices (n, n), node labels (n,) int, graph labels (N,) int, in file order."""
    with open(path, "rb") as f:
        records = _ExpUnpickler(f).load()
    adjacencies, node_labels, labels = [], [], []
    for i, record in enumerate(records):
        missing = {"x", "edge_index", "y"} - set(vars(record))
        if missing:
            raise ValueError(f"{path}: graph {i} lacks {sorted(missing)}; expected PyG Data with x, edge_index, y")
        x = np.asarray(record.x).reshape(len(record.x), -1)[:, 0].astype(int)
        edges = np.asarray(record.edge_index, dtype=int)
        a = np.zeros((len(x), len(x)))
        a[edges[0], edges[1]] = 1.0
        a = np.maximum(a, a.T)  # undirected, whichever directions the file lists
        adjacencies.append(a)
        node_labels.append(x)
        labels.append(int(np.asarray(record.y).reshape(-1)[0]))
    return adjacencies, node_labels, np.array(labels)


def load_exp(data_dir: Path) -> tuple[tuple[list[np.ndarray], list[np.ndarray], np.ndarray], str]:
    """Download (once) and parse EXP; returns the parsed graphs and the file's SHA-256."""
    path = fetch(EXP_URL, Path(data_dir) / "fa" / "EXP" / "GRAPHSAT.pkl", EXP_SHA256)
    return parse_exp(path), sha256(path)
