"""Frames of the FA paper (Puny et al., ICLR 2022, Sec. 3).

E(3) frame of a point cloud X (N, 3): centroid t = mean_i x_i, covariance C = (X - t)^T (X - t) = V diag(l) V^T
(eigh, float64, l ascending). The frame is F(X) = {(V S, t) : S = diag(+-1, +-1, +-1)}: 8 elements for O(3),
the 4 with det(V S) = +1 for SO(3). It is equivariant, F(Q X + t') = Q F(X) + t', whenever the eigenvalues
are distinct; a repeated eigenvalue leaves a continuum of valid V and such inputs are flagged as degenerate.

Frame averaging of an equivariant map phi (vectors out, positions in):
    <phi>_F(X) = 1/|F| sum_{(R, t) in F} [ R phi(R^T (X - t)) + t ]    (positions; velocities are not shifted).

Permutation frame of a graph (Laplacian L = D - A): for every distinct eigenvalue, an invariant node column (|v|
for a simple eigenvalue, the row norms of the eigenspace basis for a repeated one), rounded to 2 decimals;
nodes sorted lexicographically by these rows; the frame is every permutation that realises the sort (ties in
any order), sampled by random tie-breaking keys.
"""

import itertools
import math

import numpy as np
import torch

SIGNS = torch.tensor(list(itertools.product([1.0, -1.0], repeat=3)), dtype=torch.float64)  # (8, 3)


def pca_frames(points: torch.Tensor, group: str = "o3", tol: float = 1e-6
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """E(3) frames of clouds (B, N, 3): rotations (B, |F|, 3, 3), centroids (B, 3), degenerate (B,) bool.

    group = "o3" keeps all 8 sign patterns, "so3" the 4 of determinant +1. ``degenerate`` marks clouds whose
    covariance has two eigenvalues closer than tol * largest (frame not unique: equivariance not guaranteed).
    """
    if group not in ("o3", "so3"):
        raise ValueError(f"frame group {group!r}; choose o3 or so3")
    x = points.double()
    centroid = x.mean(-2)
    centred = x - centroid.unsqueeze(-2)
    eigenvalues, vectors = torch.linalg.eigh(centred.transpose(-2, -1) @ centred)
    gaps = eigenvalues.diff(dim=-1).min(-1).values
    degenerate = gaps <= tol * eigenvalues[..., -1].abs().clamp_min(1e-300)
    rotations = vectors.unsqueeze(-3) * SIGNS.to(vectors.device).unsqueeze(-2)  # columns scaled: V S, (B, 8, 3, 3)
    if group == "so3":
        keep = torch.linalg.det(rotations) > 0  # exactly 4 of the 8 per cloud
        rotations = rotations[keep].view(*rotations.shape[:-3], 4, 3, 3)
    return rotations, centroid, degenerate


def to_frame(vectors: torch.Tensor, rotations: torch.Tensor, origin: torch.Tensor | None = None) -> torch.Tensor:
    """(B, N, 3) -> (B, |F|, N, 3): R^T (x - t) for every frame element (rows: x R)."""
    if origin is not None:
        vectors = vectors - origin.unsqueeze(-2)
    return vectors.unsqueeze(-3) @ rotations


def from_frame(vectors: torch.Tensor, rotations: torch.Tensor, origin: torch.Tensor | None = None) -> torch.Tensor:
    """(B, |F|, N, 3) -> (B, N, 3): the frame average 1/|F| sum R y (+ t)."""
    out = (vectors @ rotations.transpose(-2, -1)).mean(-3)
    return out if origin is None else out + origin.unsqueeze(-2)


def invariant_node_columns(adjacency: np.ndarray, eig_tol: float = 1e-6, decimals: int = 2) -> np.ndarray:
    """(n, n) adjacency -> (n, #distinct eigenvalues) permutation-equivariant node features of L = D - A."""
    laplacian = np.diag(adjacency.sum(1)) - adjacency
    eigenvalues, vectors = np.linalg.eigh(laplacian)
    starts = np.flatnonzero(np.r_[True, np.diff(eigenvalues) > eig_tol])
    ends = np.r_[starts[1:], len(eigenvalues)]
    columns = [np.linalg.norm(vectors[:, s:e], axis=1) for s, e in zip(starts, ends)]  # |v| when e - s == 1
    return np.round(np.stack(columns, axis=1), decimals) + 0.0  # + 0.0 turns -0.0 into 0.0


def tie_ranks(adjacency: np.ndarray) -> np.ndarray:
    """(n,) dense rank of each node's invariant row in the lexicographic order; identical rows share a rank."""
    keys = invariant_node_columns(adjacency)
    _, ranks = np.unique(keys, axis=0, return_inverse=True)  # np.unique sorts rows lexicographically
    return ranks.reshape(-1)


def sample_sorts(ranks: np.ndarray, samples: int, rng: np.random.Generator) -> np.ndarray:
    """(..., n) ranks -> (..., samples, n) sorts: perm[k] = the node put at position k, ties in random order.

    Sorting ranks + u with u ~ U[0, 1) never reorders distinct ranks and orders the nodes of one rank by u,
    i.e. uniformly over the tie permutations: a uniform sample from the frame F(G). All-equal ranks give
    uniformly random permutations (the whole group: group averaging).
    """
    noise = rng.random((*ranks.shape[:-1], samples, ranks.shape[-1]))
    return np.argsort(ranks[..., None, :] + noise, axis=-1, kind="stable")


def frame_permutations(adjacency: np.ndarray, samples: int, rng: np.random.Generator) -> np.ndarray:
    """(samples, n) frame elements of one graph: perm[k] = the node put at position k by the lexicographic sort."""
    return sample_sorts(tie_ranks(adjacency), samples, rng)


def frame_size(adjacency: np.ndarray) -> int:
    """|F(G)| = product over groups of identical rows of (group size)!."""
    _, counts = np.unique(invariant_node_columns(adjacency), axis=0, return_counts=True)
    return int(np.prod([math.factorial(int(c)) for c in counts]))
