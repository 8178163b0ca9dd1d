"""Multiparameter descriptors with gradients, and one-parameter barcodes with gradients.

A filtered complex is kept as its simplices by dimension (fixed combinatorics) and a torch tensor of filtration
values (S, 2), one row per simplex, faces first. The signed measures are computed by multipers on the exact grid
of critical values, passed as torch tensors: each Dirac's coordinates are entries of that grid, so the
gradient of a loss moves every critical coordinate with the simplex value that produced it (the paper's
framework; differentiable away from ties).
"""

import gudhi
import multipers as mp
import numpy as np
import torch
from multipers.torch.diff_grids import get_grid


def insert_all(simplices: list[np.ndarray], values: np.ndarray) -> mp.SimplexTreeMulti:
    """A 2-parameter simplex tree from simplices by dimension (faces first) and their values (S, 2)."""
    tree = mp.SimplexTreeMulti(num_parameters=2)
    start = 0
    for block in simplices:
        if len(block):
            tree.insert_batch(np.ascontiguousarray(block.T, dtype=np.int32),
                              np.ascontiguousarray(values[start:start + len(block)], dtype=np.float64))
        start += len(block)
    return tree


def signed_measure(simplices: list[np.ndarray], values: torch.Tensor, degree: int | None,
                   flag_dimension: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Euler (degree None) or degree-k Hilbert signed measure as (points (m, 2), weights (m,)); the points are
    differentiable functions of ``values``.

    ``flag_dimension``: the simplices are a graph (vertices, edges) standing for its flag complex up to that
    dimension. The graph is first edge-collapsed (multipers' ``collapse_edges``, which keeps the persistence of
    the bifiltered flag complex; the multipers point-cloud notebook does the same) and then expanded, each new
    simplex entering at the coordinate-wise max of its faces. The grid stays that of all ``values``."""
    tree = insert_all(simplices, values.detach().cpu().double().numpy())
    if flag_dimension is not None:
        tree.collapse_edges(-1)
        tree.expansion(flag_dimension)
    grid = get_grid("exact")(values.cpu().double().T)
    invariant = "euler" if degree is None else "hilbert"
    points, weights = mp.signed_measure(tree, degrees=[degree], invariant=invariant, grid=grid, n_jobs=1)[0]
    return points.to(values), torch.as_tensor(np.asarray(weights), dtype=values.dtype, device=values.device)


def euler_measure_closed_form(simplices: list[np.ndarray], values: torch.Tensor
                              ) -> tuple[torch.Tensor, torch.Tensor]:
    """sum over simplices s of (-1)^dim(s) delta_{f(s)} (before merging coincident Diracs)."""
    signs = torch.cat([torch.full((len(b),), (-1.0) ** k, dtype=values.dtype, device=values.device)
                       for k, b in enumerate(simplices)])
    return values, signs


def gaussian_images(measures: list[tuple[torch.Tensor, torch.Tensor]], resolution: int, sigma: float
                    ) -> torch.Tensor:
    """Images (B, resolution^2) of a batch of weighted point sets: pixel x of image b is
    sum_{i in b} w_i exp(-||x - p_i||^2 / (2 sigma^2)), over the resolution x resolution pixels of [0, 1]^2
    (pixel (a, c) at (axis[a], axis[c]), flattened row-major). The Gaussian factorises over the two coordinates,
    exp(-(x1 - p1)^2 / 2 sigma^2) exp(-(x2 - p2)^2 / 2 sigma^2), so each point costs two 1-D profiles and their
    outer product, and all points of the batch go through one tensor expression."""
    points = torch.cat([p for p, _ in measures])
    weights = torch.cat([w for _, w in measures])
    owner = torch.repeat_interleave(torch.arange(len(measures), device=points.device),
                                    torch.tensor([len(w) for _, w in measures], device=points.device))
    axis = torch.linspace(0.0, 1.0, resolution, dtype=points.dtype, device=points.device)
    profile = torch.exp(-(points[:, :, None] - axis) ** 2 / (2 * sigma ** 2))  # (M, 2, resolution)
    outer = (weights[:, None, None] * profile[:, 0, :, None] * profile[:, 1, None, :]).reshape(len(points), -1)
    return torch.zeros(len(measures), resolution * resolution, dtype=points.dtype,
                       device=points.device).index_add(0, owner, outer)


def persistence_diagram_measure(bars: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The persistence image's measure of bars (n, 2): points (birth, death - birth) weighted by the
    persistence."""
    persistence = bars[:, 1] - bars[:, 0]
    return torch.stack([bars[:, 0], persistence], dim=1), persistence


def lower_star_h0_bars(edges: np.ndarray, f: torch.Tensor, cap: float) -> torch.Tensor:
    """H0 barcode of the lower-star filtration of a graph by f (V,), as torch entries of f: gudhi's
    persistence generators give the vertex whose value is each birth and death; the essential class dies at
    ``cap``."""
    tree = gudhi.SimplexTree()
    values = f.detach().cpu().double().numpy()
    tree.insert_batch(np.arange(len(values))[None].astype(np.int32), values)
    tree.insert_batch(np.ascontiguousarray(edges.T, dtype=np.int32), np.maximum(values[edges[:, 0]],
                                                                                values[edges[:, 1]]))
    tree.compute_persistence()
    regular, essential = tree.lower_star_persistence_generators()
    # gudhi lists generators per dimension and leaves the list empty when there are none at all
    pairs = torch.as_tensor(regular[0].reshape(-1, 2) if len(regular) else np.zeros((0, 2)), dtype=torch.long,
                            device=f.device)
    born = torch.as_tensor(essential[0].reshape(-1) if len(essential) else np.zeros(0), dtype=torch.long,
                           device=f.device)
    finite = torch.stack([f[pairs[:, 0]], f[pairs[:, 1]]], dim=1)
    infinite = torch.stack([f[born], torch.full_like(f[born], cap)], dim=1)
    return torch.cat([finite, infinite])


def rips_h1_bars(points: torch.Tensor, max_radius: float) -> tuple[torch.Tensor, np.ndarray]:
    """H1 barcode of the Rips filtration (radius <= max_radius) as torch edge lengths: gudhi's flag persistence
    generators give the edge whose length is each birth and death; essential classes die at max_radius.
    Also returns each bar's birth edge (for reading f at the loop)."""
    cloud = points.detach().cpu().double().numpy()
    tree = gudhi.RipsComplex(points=cloud, max_edge_length=max_radius).create_simplex_tree(max_dimension=2)
    tree.compute_persistence()
    regular0, regular, essential0, essential = tree.flag_persistence_generators()
    finite = regular[0].reshape(-1, 4) if len(regular) else np.zeros((0, 4), dtype=int)
    infinite = essential[0].reshape(-1, 2) if len(essential) else np.zeros((0, 2), dtype=int)

    def length(pairs: np.ndarray) -> torch.Tensor:
        pairs = torch.as_tensor(pairs, dtype=torch.long, device=points.device)
        return (points[pairs[:, 0]] - points[pairs[:, 1]]).norm(dim=1)

    births = torch.cat([length(finite[:, :2]), length(infinite)])
    deaths = torch.cat([length(finite[:, 2:]), torch.full((len(infinite),), max_radius, dtype=points.dtype,
                                                          device=points.device)])
    return torch.stack([births, deaths], dim=1), np.concatenate([finite[:, :2], infinite])
