"""The 1-WL-hard triangle task: random 3-regular graphs (every graph of a given n has the same 1-WL colouring),
label = has a triangle. Dense GIN backbones: plain (constant features), with IDs from sampled frame elements
(FA-GIN+ID) or from uniformly random permutations (group averaging, GA-GIN+ID)."""

import networkx as nx
import numpy as np
import torch
from torch import nn

from repro.papers.fa.frames import frame_permutations


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


def id_features(adjacencies: list[np.ndarray], size: int, samples: int, kind: str,
                rng: np.random.Generator) -> torch.Tensor:
    """(B, samples, size, size) one-hot IDs: node perm[k] gets ID k, perm a frame element or a random permutation."""
    out = torch.zeros(len(adjacencies), samples, size, size)
    for i, a in enumerate(adjacencies):
        n = len(a)
        perms = (frame_permutations(a, samples, rng) if kind == "frame"
                 else np.stack([rng.permutation(n) for _ in range(samples)]))
        for s, perm in enumerate(perms):
            out[i, s, perm, np.arange(n)] = 1.0
    return out


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
    """Average of a backbone over sampled ID assignments: (1/k) sum_s GIN([1, ID_s], A) (frame or group samples)."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, ids: torch.Tensor, adj: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, k, n, _ = ids.shape
        features = torch.cat([mask.unsqueeze(1).unsqueeze(-1).expand(b, k, n, 1), ids], -1).flatten(0, 1)
        logits = self.backbone(features, adj.repeat_interleave(k, 0), mask.repeat_interleave(k, 0))
        return logits.view(b, k).mean(1)
