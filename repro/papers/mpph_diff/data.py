"""The toy landscape f on [0, 1]^2 and the grid-graph classification data set."""

from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from repro.core.errors import DataUnavailableError
from repro.core.pyg_cache import sealed_processed

MODES = ((0.2, 0.2), (0.8, 0.4), (0.4, 0.7))


def landscape(x: torch.Tensor, width: float) -> torch.Tensor:
    """f(x) = 1 - sum_c exp(-||x - c||^2 / width^2): low (near 0) at the three modes, 1 far from them."""
    centres = torch.tensor(MODES, dtype=x.dtype, device=x.device)
    return 1 - torch.exp(-((x[:, None, :] - centres[None]) ** 2).sum(-1) / width ** 2).sum(1)


def grid_edges(side: int) -> np.ndarray:
    """The 4-neighbour edges of a side x side grid graph (vertex id = row * side + column)."""
    ids = np.arange(side * side).reshape(side, side)
    return np.concatenate([np.stack([ids[:, :-1].ravel(), ids[:, 1:].ravel()], 1),
                           np.stack([ids[:-1].ravel(), ids[1:].ravel()], 1)])


def bump_signal(side: int, bumps: int, width: float, noise: float, rng: np.random.Generator) -> np.ndarray:
    """sum of ``bumps`` Gaussian bumps h exp(-||p - c||^2 / (2 width^2)), c uniform on the grid's square,
    h ~ U[0.5, 1.5], plus N(0, noise^2) per node."""
    rows, cols = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    grid = np.stack([rows.ravel(), cols.ravel()], 1).astype(float)
    centres = rng.uniform(0, side - 1, size=(bumps, 2))
    heights = rng.uniform(0.5, 1.5, size=bumps)
    squared = ((grid[:, None, :] - centres[None]) ** 2).sum(-1)
    return np.exp(-squared / (2 * width ** 2)) @ heights + noise * rng.normal(size=side * side)


def label(s1: np.ndarray, s2: np.ndarray, side: int, threshold: float) -> int:
    """1 iff {s1 > t and s2 > t} has at least two 4-connected components."""
    _, components = ndimage.label(((s1 > threshold) & (s2 > threshold)).reshape(side, side))
    return int(components >= 2)


def grid_graphs(count: int, side: int, bumps: int, width: float, noise: float, threshold: float,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``count`` graphs, half of each label (rejection): node features (s1, s2, s1 s2, 1) (count, V, 4), labels;
    all share the edges ``grid_edges(side)``."""
    wanted = {0: count // 2, 1: count - count // 2}
    kept: dict[int, list] = {0: [], 1: []}
    while any(len(kept[y]) < wanted[y] for y in wanted):
        s1, s2 = (bump_signal(side, bumps, width, noise, rng) for _ in range(2))
        y = label(s1, s2, side, threshold)
        if len(kept[y]) < wanted[y]:
            kept[y].append(np.stack([s1, s2, s1 * s2, np.ones_like(s1)], axis=1))
    features = np.stack(kept[0] + kept[1])
    labels = np.array([0] * len(kept[0]) + [1] * len(kept[1]))
    order = rng.permutation(len(labels))
    return features[order], labels[order]


def tu_graphs(root: Path, name: str) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
    """A TU graph-classification data set (torch_geometric's TUDataset, downloaded to root on first use):
    per graph (node features (V, F + 1): the data set's node labels/attributes or, without any, the degree,
    then a constant 1; undirected edges (E, 2)), and the labels."""
    from torch_geometric.datasets import TUDataset

    try:
        with sealed_processed(Path(root) / name / "processed"):
            dataset = TUDataset(str(root), name)
    except (OSError, RuntimeError) as error:  # urllib's URLError is an OSError
        raise DataUnavailableError(
            f"{name} is not in {root} and could not be downloaded ({error}); on a machine with network run the "
            f"paper scale once, or unzip {name}.zip from the TU collection (chrsmrrs.com/graphkerneldatasets) "
            f"into {Path(root) / name / 'raw'}") from error
    graphs, labels = [], []
    for data in dataset:
        n = int(data.num_nodes)
        pairs = data.edge_index.t().numpy()
        if n == 0 or (len(pairs) and (pairs.min() < 0 or pairs.max() >= n)):
            raise DataUnavailableError(f"{root / name}: a graph with {n} nodes has edge ids outside [0, {n}); "
                                       "the raw files are inconsistent, re-extract them")
        edges = np.unique(np.sort(pairs[pairs[:, 0] != pairs[:, 1]], axis=1), axis=0).reshape(-1, 2)
        if data.x is not None:
            features = data.x.numpy().astype(float)
        else:
            features = np.bincount(edges.ravel(), minlength=n)[:, None].astype(float)
        if not np.isfinite(features).all():
            raise DataUnavailableError(f"{root / name}: non-finite node attributes; re-extract the raw files")
        graphs.append((np.hstack([features, np.ones((n, 1))]), edges))
        labels.append(int(data.y.item()))
    labels = np.asarray(labels)
    if len(graphs) == 0 or len(np.unique(labels)) < 2 or labels.min() < 0:
        raise DataUnavailableError(f"{root / name}: expected at least two classes with labels >= 0, got "
                                   f"{sorted(set(labels.tolist()))}")
    return graphs, labels
