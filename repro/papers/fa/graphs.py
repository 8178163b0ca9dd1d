"""The 1-WL-hard triangle task: random 3-regular graphs (every graph of a given n has the same 1-WL colouring),
label = has a triangle. Dense GIN backbones: plain (constant features), with IDs from sampled frame elements
(FA-GIN+ID) or from uniformly random permutations (group averaging, GA-GIN+ID)."""

import networkx as nx
import numpy as np
import torch
from torch import nn

from repro.papers.fa.frames import sample_sorts, tie_ranks


def triangle_graphs(count: int, sizes: list[int], seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """count random 3-regular graphs (n drawn from sizes), classes balanced by rejection; adjacency, labels."""
    rng = np.random.default_rng(seed)
    graphs, labels, per_class = [], [], {0: count // 2, 1: count - count // 2}
    while per_class[0] or per_class[1]:
        n = int(rng.choice(sizes))
        g = nx.random_regular_graph(3, n, seed=int(rng.integers(2**31)))
        label = int(sum(nx.triangles(g).values()) > 0)
        if per_class[label]:
            per_class[label] -= 1
            graphs.append(nx.to_numpy_array(g, nodelist=range(n)))
            labels.append(label)
    order = rng.permutation(len(graphs))
    return [graphs[i] for i in order], np.array(labels)[order]


def pad(adjacencies: list[np.ndarray], size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Dense batch: adjacency (B, size, size) and node mask (B, size)."""
    adj = torch.zeros(len(adjacencies), size, size)
    mask = torch.zeros(len(adjacencies), size)
    for i, a in enumerate(adjacencies):
        adj[i, : len(a), : len(a)] = torch.as_tensor(a, dtype=torch.float)
        mask[i, : len(a)] = 1
    return adj, mask


def node_ranks(adjacencies: list[np.ndarray], size: int, kind: str) -> np.ndarray:
    """(B, size) sort keys of padded graphs: the frame's tie ranks ("frame") or all zero ("group"); padding
    nodes rank after every real node, so real node positions (IDs) are 0..n-1."""
    if kind not in ("frame", "group"):
        raise ValueError(f"ID kind {kind!r}; choose frame or group")
    ranks = np.tile(np.arange(size, 2 * size, dtype=float), (len(adjacencies), 1))
    for i, a in enumerate(adjacencies):
        ranks[i, : len(a)] = tie_ranks(a) if kind == "frame" else 0.0
    return ranks


def id_features(ranks: np.ndarray, samples: int, rng: np.random.Generator) -> torch.Tensor:
    """(B, size) ranks -> (B, samples, size, size) one-hot IDs: node perm[k] gets ID k, perm a sampled sort
    (a frame element, or a random permutation when all ranks are equal); padding nodes get no ID."""
    size = ranks.shape[-1]
    positions = np.argsort(sample_sorts(ranks, samples, rng), axis=-1)  # inverse permutation: node -> position
    ids = torch.nn.functional.one_hot(torch.as_tensor(positions), size).float()
    real = torch.as_tensor(positions < (ranks < size).sum(-1)[:, None, None], dtype=torch.float)
    return ids * real.unsqueeze(-1)


class DenseGIN(nn.Module):
    """GIN (Xu et al.): h_i <- MLP((1 + eps) h_i + sum_{j ~ i} h_j); readout sum_i h_i per layer -> logit.

    Input node features (B, n, d), adjacency (B, n, n), mask (B, n); output (B,) logits.
    """

    def __init__(self, in_dim: int, width: int = 32, layers: int = 3) -> None:
        super().__init__()
        self.embed = nn.Linear(in_dim, width)
        self.eps = nn.Parameter(torch.zeros(layers))
        self.mlps = nn.ModuleList(nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width),
                                                nn.ReLU()) for _ in range(layers))
        self.readout = nn.Sequential(nn.Linear(width * layers, width), nn.ReLU(), nn.Linear(width, 1))

    def forward(self, features: torch.Tensor, adj: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.embed(features) * mask.unsqueeze(-1)
        pooled = []
        for eps, mlp in zip(self.eps, self.mlps):
            h = mlp((1 + eps) * h + adj @ h) * mask.unsqueeze(-1)
            pooled.append(h.sum(-2))
        return self.readout(torch.cat(pooled, -1)).squeeze(-1)


class SampledAverage(nn.Module):
    """Average of a backbone over sampled ID assignments: (1/k) sum_s GIN([x, ID_s], A) (frame or group samples).

    Input IDs (B, k, n, n), adjacency (B, n, n), mask (B, n), node features x (B, n, d); output (B,) logits.
    """

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, ids: torch.Tensor, adj: torch.Tensor, mask: torch.Tensor,
                features: torch.Tensor) -> torch.Tensor:
        b, k, n, _ = ids.shape
        features = torch.cat([features.unsqueeze(1).expand(b, k, n, features.shape[-1]), ids], -1).flatten(0, 1)
        logits = self.backbone(features, adj.repeat_interleave(k, 0), mask.repeat_interleave(k, 0))
        return logits.view(b, k).mean(1)


GRAPH_METHODS = ("gin", "ga_gin_id", "fa_gin_id")


class GraphSet:
    """A padded set of graphs for one of GRAPH_METHODS: adjacency (B, size, size), mask (B, size), node
    features (B, size, d) (a constant 1 when the graphs have no node labels, else one-hot labels), the sort
    keys of the IDs (frame ranks for FA, equal ranks for GA, none for plain GIN) and the labels (B,)."""

    def __init__(self, adjacencies: list[np.ndarray], labels: np.ndarray, size: int, method: str,
                 node_labels: list[np.ndarray] | None = None, label_classes: int = 2) -> None:
        if method not in GRAPH_METHODS:
            raise ValueError(f"graph method {method!r}; choose from {list(GRAPH_METHODS)}")
        self.adj, self.mask = pad(adjacencies, size)
        if node_labels is None:
            self.features = self.mask.unsqueeze(-1)
        else:
            self.features = torch.zeros(len(adjacencies), size, label_classes)
            for i, x in enumerate(node_labels):
                self.features[i, np.arange(len(x)), x] = 1.0
        self.ranks = None if method == "gin" else node_ranks(adjacencies, size, "frame" if method == "fa_gin_id"
                                                             else "group")
        self.labels = np.asarray(labels)

    def __len__(self) -> int:
        return len(self.labels)

    def inputs(self, idx: np.ndarray, samples: int, rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
        """Model inputs of graphs idx: (x, A, mask) for plain GIN, (IDs, A, mask, x) with k sampled IDs."""
        rows = torch.as_tensor(idx)
        if self.ranks is None:
            return self.features[rows], self.adj[rows], self.mask[rows]
        return id_features(self.ranks[idx], samples, rng), self.adj[rows], self.mask[rows], self.features[rows]


def graph_model(method: str, feature_dim: int, size: int, width: int, layers: int) -> nn.Module:
    """Plain GIN on the node features, or a sampled average of GIN on [features, one-hot ID]."""
    if method == "gin":
        return DenseGIN(feature_dim, width, layers)
    return SampledAverage(DenseGIN(feature_dim + size, width, layers))
