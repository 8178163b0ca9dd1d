"""Stability probe (claims 1-2, no training): how much does each encoding move per unit change of L?

For a graph with adjacency A, add weight eps to one pair (i, j) and measure
    ratio = ||PE(L(A + E)) - PE(L(A))||_F / ||L(A + E) - L(A)||_F
for raw eigenvectors, eigenspace projectors (hard partition) and SPE's tensor with fixed smooth phis.
A stable encoding keeps the ratio bounded as eps -> 0; a hard partition jumps by O(1), so ratio ~ 1/eps.
"""

import networkx as nx
import numpy as np
import torch
from scipy.stats import ortho_group

from repro.papers.spe.spectral import (
    eigenpairs,
    eigenspace_indicators,
    gaussian_bumps,
    laplacian_from_adjacency,
    spectral_tensor,
)

ENCODINGS = ("eigvecs", "projectors", "spe")


def encode(laplacian: torch.Tensor, encoding: str, d: int, m: int, width: float, tol: float) -> torch.Tensor:
    """The encoding of one Laplacian from its first d eigenpairs (phi: m Gaussian bumps on [0, 2])."""
    eigvals, eigvecs, mask = eigenpairs(laplacian, d)
    if encoding == "eigvecs":
        return eigvecs
    if encoding == "projectors":
        return spectral_tensor(eigvecs, eigenspace_indicators(eigvals, mask, d, tol))
    centers = torch.linspace(0.0, 2.0, m, dtype=torch.float64)
    return spectral_tensor(eigvecs, gaussian_bumps(eigvals, mask, centers, width))


def sensitivity(adjacency: torch.Tensor, pair: tuple[int, int], eps: float, encoding: str, d: int, m: int,
                width: float, tol: float) -> float:
    perturbed = adjacency.clone()
    perturbed[pair] += eps
    perturbed[pair[::-1]] += eps
    before, after = laplacian_from_adjacency(adjacency), laplacian_from_adjacency(perturbed)
    change = torch.linalg.norm(encode(after, encoding, d, m, width, tol) - encode(before, encoding, d, m, width, tol))
    return float(change / torch.linalg.norm(after - before))


def dense_adjacency(graph: nx.Graph) -> torch.Tensor:
    return torch.tensor(nx.to_numpy_array(graph, nodelist=range(graph.number_of_nodes())), dtype=torch.float64)


def cycle_probe(n: int, ds: list[int], eps_values: list[float], pairs: list[tuple[int, int]], m: int,
                width: float, tol: float, seed: int) -> list[dict]:
    """C_n has exact double eigenvalues: d ending at an eigenspace boundary vs d cutting a pair.

    Each pair is probed on a randomly relabelled C_n, so that the basis the eigensolver happens to return
    inside a degenerate eigenspace is not aligned with the perturbed pair by the labelling.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for i, j in pairs:
        order = torch.as_tensor(rng.permutation(n))
        adjacency = dense_adjacency(nx.cycle_graph(n))[order][:, order]
        rows += [{"probe": f"c{n}", "d": d, "method": encoding, "eps": eps, "pair": f"{i}-{j}",
                  "ratio": sensitivity(adjacency, (i, j), eps, encoding, d, m, width, tol)}
                 for d in ds for encoding in ENCODINGS for eps in eps_values]
    return rows


def er_probe(count: int, n: int, p: float, d: int, eps: float, m: int, width: float, tol: float,
             seed: int) -> list[dict]:
    """Connected G(n, p) graphs: sensitivity against the gap lambda_{d+1} - lambda_d and the smallest gap
    inside the kept spectrum."""
    rng = np.random.default_rng(seed)
    rows, graph_index = [], 0
    while graph_index < count:
        graph = nx.erdos_renyi_graph(n, p, seed=int(rng.integers(2**31)))
        if not nx.is_connected(graph):
            continue
        adjacency = dense_adjacency(graph)
        values = torch.linalg.eigvalsh(laplacian_from_adjacency(adjacency))
        i, j = (int(v) for v in rng.choice(n, size=2, replace=False))
        for encoding in ENCODINGS:
            rows.append({"probe": "er", "d": d, "method": encoding, "eps": eps, "graph": graph_index,
                         "boundary_gap": float(values[d] - values[d - 1]),
                         "inner_gap": float((values[1:d] - values[:d - 1]).min()),
                         "ratio": sensitivity(adjacency, (i, j), eps, encoding, d, m, width, tol)})
        graph_index += 1
    return rows


def random_basis_change(eigvals: torch.Tensor, mask: torch.Tensor, tol: float,
                        rng: np.random.Generator) -> torch.Tensor:
    """Block-diagonal Q: a random orthogonal matrix inside each eigenspace (random signs for 1-d ones)."""
    d = eigvals.shape[0]
    q = torch.zeros(d, d, dtype=torch.float64)
    start = 0
    while start < d:
        stop = start + 1
        while stop < d and mask[stop] and abs(float(eigvals[stop] - eigvals[stop - 1])) <= tol:
            stop += 1
        size = stop - start
        block = ortho_group.rvs(size, random_state=rng) if size > 1 else np.array([[rng.choice([-1.0, 1.0])]])
        q[start:stop, start:stop] = torch.as_tensor(block)
        start = stop
    return q
