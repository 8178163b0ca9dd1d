"""EXP (Abboud et al., IJCAI 2021): 600 pairs of 1-WL-equivalent, non-isomorphic graphs encoding planar SAT
formulas, one satisfiable and one not; EXP-classify labels each graph SAT (1) / UNSAT (0).

The authors ship it as ``Data/EXP/raw/GRAPHSAT.pkl`` in github.com/ralphabb/GNN-RNI: a pickled list of
(PyTorch Geometric 1.x) ``Data`` objects with ``x`` (n, 1) node labels in {0, 1}, ``edge_index`` (2, E) (both
directions) and ``y`` (1,). The parser reads that file without torch_geometric and without running it:
repro.core.safe_pickle.TensorUnpickler admits only the globals that rebuild tensors, plus ``Data`` mapped onto
a plain attribute holder.
"""

import pickle
from pathlib import Path

import numpy as np

from repro.core.data import fetch, sha256
from repro.core.errors import ReproError
from repro.core.safe_pickle import TensorUnpickler

EXP_URL = "https://raw.githubusercontent.com/ralphabb/GNN-RNI/main/Data/EXP/raw/GRAPHSAT.pkl"
# EXP-classify's fixed split (the official script): graphs 0-199 validation, 200-399 test, 400-... training.
SPLIT_SIZE = 200


class _Record:
    """Stands in for torch_geometric.data.Data: keeps the pickled attribute dict."""

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)


# where PyG 1.x (which pickled GRAPHSAT.pkl) and later versions define Data
DATA_CLASS = {("torch_geometric.data.data", "Data"): _Record, ("torch_geometric.data", "Data"): _Record}


def parse_exp(path: Path) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """GRAPHSAT.pkl -> adjacency matrices (n, n), node labels (n,) int, graph labels (N,) int, in file order.

    Checks what it reads: a list of more than 400 graphs (the fixed validation and test splits take 400), each
    with x, edge_index, y; labels in {0, 1}; edge indices inside 0..n-1. Every error names the file."""
    fix = f"delete {path} and let the loader download it again from {EXP_URL}"
    try:
        with open(path, "rb") as f:
            records = TensorUnpickler(f, DATA_CLASS).load()
    except (pickle.UnpicklingError, EOFError, ValueError, AttributeError) as error:
        raise ReproError(f"{path} is not GRAPHSAT.pkl, a plain pickle of PyG Data objects ({error}); refusing to "
                         f"load it (a pickle can run code): {fix}") from error
    if not isinstance(records, list) or len(records) <= 2 * SPLIT_SIZE:
        size = len(records) if isinstance(records, list) else type(records).__name__
        raise ReproError(f"{path}: expected a list of 1200 EXP graphs (more than {2 * SPLIT_SIZE} for the fixed "
                         f"validation/test splits), found {size}; {fix}")
    adjacencies, node_labels, labels = [], [], []
    for i, record in enumerate(records):
        missing = {"x", "edge_index", "y"} - set(vars(record))
        if missing:
            raise ReproError(f"{path}: graph {i} lacks {sorted(missing)}; expected PyG Data with x, edge_index, y; "
                             f"{fix}")
        x = np.asarray(record.x).reshape(len(record.x), -1)[:, 0].astype(int)
        edges = np.asarray(record.edge_index, dtype=int)
        y = np.asarray(record.y).reshape(-1)
        inside = edges.ndim == 2 and edges.shape[0] == 2 and (
            edges.size == 0 or 0 <= edges.min() <= edges.max() < len(x))
        if len(x) == 0 or not inside:
            raise ReproError(f"{path}: graph {i} has {len(x)} nodes and edge_index of shape {edges.shape} with "
                             f"entries outside 0..{len(x) - 1}; {fix}")
        if y.size != 1 or int(y[0]) not in (0, 1) or not set(np.unique(x)) <= {0, 1}:
            raise ReproError(f"{path}: graph {i} has label {y.tolist()} or node labels {sorted(set(x.tolist()))} "
                             f"outside {{0, 1}} (SAT/UNSAT, EXP's two node types); {fix}")
        a = np.zeros((len(x), len(x)))
        a[edges[0], edges[1]] = 1.0
        a = np.maximum(a, a.T)  # undirected, whichever directions the file lists
        adjacencies.append(a)
        node_labels.append(x)
        labels.append(int(y[0]))
    return adjacencies, node_labels, np.array(labels)


def load_exp(data_dir: Path, checksum: str | None) -> tuple[tuple[list[np.ndarray], list[np.ndarray], np.ndarray], str]:
    """Download (once) and parse EXP, verified against `checksum` (a file in place with another SHA-256 is
    downloaded again, offline an error); returns the parsed graphs and the file's SHA-256."""
    path = fetch(EXP_URL, Path(data_dir) / "fa" / "EXP" / "GRAPHSAT.pkl", checksum)
    return parse_exp(path), sha256(path)
