"""Spectral quantities of a graph, in float64 (float32 `eigh` merges near-degenerate eigenvalues).

Notation follows the paper: L = I - D^{-1/2} A D^{-1/2} = V diag(lambda) V^T with eigenvalues ascending;
the encoders use the first d eigenpairs. An SPE channel is V diag(phi_l(lambda)) V^T.
"""

import torch
from torch_geometric.utils import get_laplacian, to_dense_adj


def normalized_laplacian(edge_index: torch.Tensor, num_nodes: int,
                         edge_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Dense symmetric-normalised Laplacian (num_nodes, num_nodes), float64, as PyG's `sym`."""
    if edge_weight is not None:
        edge_weight = edge_weight.to(torch.float64)
    index, weight = get_laplacian(edge_index, edge_weight, normalization="sym", num_nodes=num_nodes,
                                  dtype=torch.float64)
    return to_dense_adj(index, edge_attr=weight, max_num_nodes=num_nodes)[0]


def laplacian_from_adjacency(adjacency: torch.Tensor) -> torch.Tensor:
    """I - D^{-1/2} A D^{-1/2} for a dense weighted adjacency (isolated nodes get 0 rows, as in PyG)."""
    degree = adjacency.sum(-1)
    inv_sqrt = torch.where(degree > 0, degree.clamp_min(1e-300).rsqrt(), torch.zeros_like(degree))
    identity = torch.diag((degree > 0).to(adjacency.dtype))
    return identity - inv_sqrt[:, None] * adjacency * inv_sqrt[None, :]


def eigenpairs(laplacian: torch.Tensor, d: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The d smallest eigenpairs, zero-padded when the graph has fewer than d nodes.

    Returns eigvals (d,), eigvecs (n, d) and a boolean mask (d,) marking real pairs: padding with
    lambda = 0 alone would collide with the genuine lambda = 0, so the mask travels with them.
    """
    n = laplacian.shape[0]
    values, vectors = torch.linalg.eigh(laplacian.to(torch.float64))
    k = min(n, d)
    eigvals = torch.zeros(d, dtype=torch.float64)
    eigvecs = torch.zeros(n, d, dtype=torch.float64)
    eigvals[:k], eigvecs[:, :k] = values[:k], vectors[:, :k]
    mask = torch.arange(d) < k
    return eigvals, eigvecs, mask


def spectral_tensor(eigvecs: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
    """W[..., i, j, l] = sum_k V[i, k] phi[k, l] V[j, k], i.e. V diag(phi_l(lambda)) V^T per channel l.

    eigvecs: (..., n, d); phi: (..., d, m) (zero on padded eigenpairs) -> (..., n, n, m).
    """
    return torch.einsum("...ik,...kl,...jk->...ijl", eigvecs, phi, eigvecs)


def gaussian_bumps(eigvals: torch.Tensor, mask: torch.Tensor, centers: torch.Tensor, width: float) -> torch.Tensor:
    """Fixed smooth phi_l(lambda) = exp(-((lambda - c_l) / width)^2): (..., d) -> (..., d, m)."""
    phi = torch.exp(-(((eigvals[..., None] - centers) / width) ** 2))
    return phi * mask[..., None]


def eigenspace_indicators(eigvals: torch.Tensor, mask: torch.Tensor, m: int, tol: float = 1e-6) -> torch.Tensor:
    """Hard partition: phi_l(lambda_k) = 1 when eigenpair k lies in the l-th distinct eigenspace.

    Eigenvalues closer than `tol` to their predecessor join its eigenspace. (..., d) -> (..., d, m); with
    these phis the spectral tensor stacks the eigenspace projectors, BasisNet's input.
    """
    new_space = torch.ones_like(mask)
    new_space[..., 1:] = (eigvals[..., 1:] - eigvals[..., :-1]).abs() > tol
    space = torch.cumsum(new_space.long(), dim=-1) - 1
    onehot = torch.nn.functional.one_hot(space.clamp(max=m), m + 1)[..., :m].to(eigvals.dtype)
    return onehot * mask[..., None]
