"""Modularity (Sec. 5): two independent input blocks, two teachers; a block-diagonal student (two towers) vs a
dense one. Nodes = interaction-basis features of every hidden layer and the output; edges = E_ij strengths.
Louvain communities of that graph are compared with each feature's true module by the adjusted Rand index.
"""

import networkx as nx
import numpy as np
import torch
from sklearn.metrics import adjusted_rand_score

from repro.papers.degeneracy_interp.interaction import edges, interaction_bases, layer_features
from repro.papers.degeneracy_interp.mlp import FlatMLP


def coordinate_modules(width: int, blocks: int) -> np.ndarray:
    """The module of each coordinate of a layer split into `blocks` equal towers (the block student's towers)."""
    return np.arange(width) * blocks // width


def block_mask(model: FlatMLP, blocks: int) -> torch.Tensor:
    """1 on the block-diagonal of every weight matrix (each layer split into `blocks` equal towers), 1 on biases."""
    mask = torch.ones(model.size, dtype=torch.float64)
    for layer, (w, _) in enumerate(model.slices):
        fan_in, fan_out = model.widths[layer], model.widths[layer + 1]
        rows, cols = coordinate_modules(fan_out, blocks), coordinate_modules(fan_in, blocks)
        mask[w] = torch.tensor((rows[:, None] == cols[None, :]).astype(float).ravel())
    return mask


def interaction_graph(weights: list[tuple[np.ndarray, np.ndarray]], x: np.ndarray, tol: float,
                      blocks: int) -> tuple[nx.Graph, np.ndarray]:
    """Nodes: the interaction-basis features of every hidden layer and the output, computed per module (each layer
    centred and decomposed tower by tower) and without the constant coordinate; each node's true module is the
    tower its basis vector lives on."""
    feats, maps = layer_features(weights, x, centre=True, constant=False)
    bases = interaction_bases(feats, maps, tol, [coordinate_modules(f.shape[1], blocks) for f in feats])
    offsets = np.cumsum([0] + [b.c.shape[1] for b in bases])
    graph = nx.Graph()
    graph.add_nodes_from(range(offsets[-1]))
    for layer, strength in enumerate(edges(feats, maps, bases)):
        strength = strength / strength.sum()
        for i, j in zip(*np.nonzero(strength)):
            graph.add_edge(offsets[layer] + j, offsets[layer + 1] + i, weight=float(strength[i, j]))
    return graph, np.concatenate([b.modules for b in bases])


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
