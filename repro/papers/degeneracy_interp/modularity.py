"""Modularity (Sec. 5): two independent input blocks, two teachers; a block-diagonal student (two towers) vs a
dense one. Nodes = interaction-basis features of every hidden layer and the output; edges = E_ij strengths.
Louvain communities of that graph are compared with each feature's true module (the tower holding most of the
squared weight of its basis vector) by the adjusted Rand index.
"""

import networkx as nx
import numpy as np
import torch
from sklearn.metrics import adjusted_rand_score

from repro.papers.degeneracy_interp.interaction import edges, interaction_bases, layer_features
from repro.papers.degeneracy_interp.mlp import FlatMLP


def block_mask(model: FlatMLP, blocks: int) -> torch.Tensor:
    """1 on the block-diagonal of every weight matrix (each layer split into `blocks` equal towers), 1 on biases."""
    mask = torch.ones(model.size, dtype=torch.float64)
    for layer, (w, _) in enumerate(model.slices):
        fan_in, fan_out = model.widths[layer], model.widths[layer + 1]
        rows = np.arange(fan_out) * blocks // fan_out
        cols = np.arange(fan_in) * blocks // fan_in
        mask[w] = torch.tensor((rows[:, None] == cols[None, :]).astype(float).ravel())
    return mask


def feature_modules(c: np.ndarray, blocks: int, constant: bool) -> np.ndarray:
    """Module of each basis vector (columns of C over [h; 1], or over the outputs when not `constant`):
    the tower holding the largest squared weight."""
    units = c[:-1] if constant else c
    towers = np.arange(len(units)) * blocks // len(units)
    mass = np.stack([(units[towers == k] ** 2).sum(0) for k in range(blocks)])
    return mass.argmax(0)


def interaction_graph(weights: list[tuple[np.ndarray, np.ndarray]], x: np.ndarray, tol: float,
                      blocks: int) -> tuple[nx.Graph, np.ndarray]:
    feats, maps = layer_features(weights, x, centre=True)
    bases = interaction_bases(feats, maps, tol)
    offsets = np.cumsum([0] + [b.c.shape[1] for b in bases])
    graph = nx.Graph()
    graph.add_nodes_from(range(offsets[-1]))
    for layer, strength in enumerate(edges(feats, maps, bases)):
        strength = strength / strength.sum()
        for i, j in zip(*np.nonzero(strength)):
            graph.add_edge(offsets[layer] + j, offsets[layer + 1] + i, weight=float(strength[i, j]))
    modules = np.concatenate([feature_modules(b.c, blocks, constant=k < len(bases) - 1)
                              for k, b in enumerate(bases)])
    return graph, modules


def module_recovery(graph: nx.Graph, modules: np.ndarray, seed: int) -> dict:
    """Louvain communities vs true modules: ARI and the share of edge mass inside true modules."""
    communities = nx.algorithms.community.louvain_communities(graph, weight="weight", seed=seed)
    found = np.zeros(len(modules), dtype=int)
    for k, nodes in enumerate(communities):
        found[list(nodes)] = k
    inside = sum(d["weight"] for a, b, d in graph.edges(data=True) if modules[a] == modules[b])
    total = sum(d["weight"] for _, _, d in graph.edges(data=True))
    return {"ari": float(adjusted_rand_score(modules, found)), "within_module_mass": inside / total,
            "communities": len(communities)}
