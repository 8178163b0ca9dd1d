"""Data: random graphs labelled with cycle counts (offline, generated); ZINC and Alchemy (scale=paper).

Every graph carries its d smallest Laplacian eigenpairs, computed once in float64 and stored as
`eigvecs` (n, d), `eigvals` (1, d) and `eig_mask` (1, d) so that batching pads nothing.
"""

from pathlib import Path

import networkx as nx
import numpy as np
import torch
from torch_geometric.data import Data

from repro.core.data import require
from repro.core.errors import DataUnavailableError
from repro.core.pyg_cache import sealed_processed
from repro.core.safe_pickle import load_tensor_pickle
from repro.papers.spe.spectral import eigenpairs, normalized_laplacian

CYCLE_LENGTHS = (3, 4, 5, 6)


def cycle_counts(graph: nx.Graph, lengths: tuple[int, ...] = CYCLE_LENGTHS) -> list[int]:
    """Number of simple cycles of each length (networkx enumerates each undirected cycle once)."""
    counts = dict.fromkeys(lengths, 0)
    for cycle in nx.simple_cycles(graph, length_bound=max(lengths)):
        if len(cycle) in counts:
            counts[len(cycle)] += 1
    return [counts[k] for k in lengths]


def random_graphs(count: int, n_range: tuple[int, int], degree_range: tuple[float, float],
                  rng: np.random.Generator) -> list[nx.Graph]:
    """Erdos-Renyi graphs, n ~ U{n_lo..n_hi} and p = c / (n - 1) with mean degree c ~ U[c_lo, c_hi]."""
    graphs = []
    for _ in range(count):
        n = int(rng.integers(n_range[0], n_range[1] + 1))
        c = float(rng.uniform(*degree_range))
        graphs.append(nx.gnp_random_graph(n, c / (n - 1), seed=int(rng.integers(2**31))))
    return graphs


def with_eigenpairs(data: Data, d: int) -> Data:
    laplacian = normalized_laplacian(data.edge_index, data.num_nodes)
    eigvals, eigvecs, mask = eigenpairs(laplacian, d)
    data.eigvecs = eigvecs.float()
    data.eigvals = eigvals.float()[None]
    data.eig_mask = mask[None]
    return data


def graph_to_data(graph: nx.Graph, target: list[float], d: int) -> Data:
    edges = torch.tensor(list(graph.edges), dtype=torch.long).reshape(-1, 2).t()
    edge_index = torch.cat([edges, edges.flip(0)], dim=1)
    n = graph.number_of_nodes()
    data = Data(x=torch.zeros(n, 1, dtype=torch.long), edge_index=edge_index,
                edge_attr=torch.zeros(edge_index.shape[1], dtype=torch.long),
                y=torch.as_tensor(np.asarray(target, dtype=np.float32))[None], num_nodes=n)
    return with_eigenpairs(data, d)


def cycle_dataset(count: int, n_range: tuple[int, int], degree_range: tuple[float, float], d: int,
                  seed: int) -> tuple[list[Data], np.ndarray]:
    """Graphs as PyG Data (targets: raw cycle counts) and the counts as an array (count, 4)."""
    graphs = random_graphs(count, n_range, degree_range, np.random.default_rng(seed))
    counts = np.array([cycle_counts(g) for g in graphs], dtype=float)
    return [graph_to_data(g, c, d) for g, c in zip(graphs, counts)], counts


def load_zinc(root: Path, subset: bool, d: int) -> dict[str, list[Data]]:
    """ZINC through torch_geometric.datasets.ZINC (downloads into `root` once), with eigenpairs added."""
    from torch_geometric.datasets import ZINC

    # PyG unpickles the raw molecule files when it first processes them. Files placed by hand (offline) are
    # checked first with an unpickler that allows nothing but data and tensors, so a planted payload is
    # refused instead of run. (molecules.zip has no published checksum to pin.)
    processed = Path(root) / ("subset" if subset else "full") / "processed"
    if not processed.exists():
        for raw in sorted((Path(root) / "raw").glob("*.pickle")):
            load_tensor_pickle(raw)
    splits = {}
    for split in ("train", "val", "test"):
        try:
            with sealed_processed(Path(root) / ("subset" if subset else "full") / "processed"):
                dataset = ZINC(str(root), subset=subset, split=split, pre_transform=lambda g: with_eigenpairs(g, d))
        except (OSError, RuntimeError) as error:  # urllib's URLError is an OSError
            raise DataUnavailableError(
                f"ZINC is not in {root} and could not be downloaded ({error}). On a machine with network run "
                f"`repro train paper=spe scale=paper` once, or place molecules.zip's train/val/test.pickle and "
                f"the benchmarking-gnns train/val/test.index files in {Path(root) / 'raw'}"
            ) from error
        splits[split] = list(dataset)
    return splits


ALCHEMY_SPLIT_FILES = {"train": "train_al_10.index", "val": "val_al_10.index", "test": "test_al_10.index"}


def read_index_file(path: Path) -> list[int]:
    """A split file of the Alchemy 10k/1k/1k benchmark: one line of comma-separated graph indices."""
    return [int(i) for i in Path(path).read_text().strip().split(",")]


def _as_type_indices(data: Data) -> Data:
    """TUDataset one-hot node and edge labels -> the integer types the GINE embeddings take."""
    data.x = data.x.argmax(-1, keepdim=True)
    data.edge_attr = data.edge_attr.argmax(-1)
    return data


def load_alchemy(root: Path, d: int) -> dict[str, list[Data]]:
    """Alchemy (TUDataset `alchemy_full`: 6 atom types, 4 bond types, 12 quantum-chemical targets) on the
    10k/1k/1k split the paper's code reads from train/val/test_al_10.index, with eigenpairs added."""
    from torch_geometric.datasets import TUDataset

    how = ("the split files of the Alchemy 10k benchmark (Morris et al.'s k-WL code; the paper's code reads "
           f"them too) must be placed in {root}")
    indices = {split: read_index_file(require(Path(root) / name, name, how))
               for split, name in ALCHEMY_SPLIT_FILES.items()}
    try:
        with sealed_processed(Path(root) / "alchemy_full" / "processed"):
            dataset = TUDataset(str(root), "alchemy_full")
    except (OSError, RuntimeError) as error:  # urllib's URLError is an OSError
        raise DataUnavailableError(
            f"alchemy_full is not in {root} and could not be downloaded ({error}). On a machine with network run "
            f"`repro train paper=spe scale=paper paper.data.dataset=alchemy` once, or unzip alchemy_full.zip from "
            f"the TU graph collection (chrsmrrs.com/graphkerneldatasets) into {Path(root) / 'alchemy_full' / 'raw'}"
        ) from error
    return {split: [with_eigenpairs(_as_type_indices(dataset[i]), d) for i in idx] for split, idx in indices.items()}
