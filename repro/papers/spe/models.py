"""SPE and the baseline positional encoders, and the GINE backbone they feed. Plain nn.Modules over
torch_geometric batches that carry per-node `eigvecs` (n, d) and per-graph `eigvals`, `eig_mask` (1, d).
"""

import torch
from torch import nn
from torch_geometric.data import Batch
from torch_geometric.nn import GINEConv, global_add_pool, global_mean_pool
from torch_geometric.utils import to_dense_adj, to_dense_batch

from repro.papers.spe.spectral import eigenspace_indicators, spectral_tensor


def mlp(sizes: list[int], batch_norm: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers += [nn.BatchNorm1d(b)] if batch_norm else []
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class ChannelGIN(nn.Module):
    """GIN layer h_i' = MLP((1 + eps) h_i + sum_{j in N(i)} h_j) on dense per-graph node features with an
    extra axis: x (B, N, K, c_in) -> (B, N, K, c_out), adjacency (B, N, N).

    The K channels (eigenvectors for SignNet, the second node index j of W[i, j] for SPE) share weights and
    never mix. `keep` (B, N, K) zeroes padded nodes and channels so that they never leak into real ones.
    """

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.eps = nn.Parameter(torch.zeros(1))
        self.net = mlp([c_in, c_out, c_out])

    def forward(self, x: torch.Tensor, adjacency: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        aggregated = torch.bmm(adjacency.to(x.dtype), x.flatten(2)).view_as(x)
        return self.net((1 + self.eps) * x + aggregated) * keep[..., None]


class SPEEncoder(nn.Module):
    """SPE(V, lambda) = rho(V diag(phi_1(lambda)) V^T, ..., V diag(phi_m(lambda)) V^T)   (paper, Eq. 2).

    phi: element-wise MLPs R -> R^m on the eigenvalues (permutation equivariant in lambda).
    rho: the official `GINPhi`: a GIN over the nodes i of the graph, whose feature at node i in channel j is
    W[i, j, :] (the second node index j is a channel axis that shares weights and never mixes), then the sum
    over j -> PE of node i. The last GIN layer outputs the encoding width, as in the official code.
    With `hard_partition=True` phi is replaced by eigenspace indicators over all d kept eigenpairs (one
    channel per distinct eigenspace, at most d), so W stacks the eigenspace projectors under the same rho:
    the stability contrast the paper draws, on the same spectrum as SPE. It is not BasisNet's IGN.
    """

    def __init__(self, d: int, m: int, out_dim: int, phi_hidden: int = 16, rho_hidden: int = 32,
                 rho_layers: int = 2, hard_partition: bool = False, eig_tol: float = 1e-6) -> None:
        super().__init__()
        self.hard_partition, self.eig_tol = hard_partition, eig_tol
        self.channels = d if hard_partition else m
        self.phi = None if hard_partition else mlp([1, phi_hidden, phi_hidden, m])
        sizes = [self.channels] + [rho_hidden] * (rho_layers - 1) + [out_dim]
        self.rho = nn.ModuleList(ChannelGIN(a, b) for a, b in zip(sizes, sizes[1:]))

    def phis(self, eigvals: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.hard_partition:
            return eigenspace_indicators(eigvals, mask, self.channels, self.eig_tol)
        return self.phi(eigvals[..., None]) * mask[..., None]

    def forward(self, batch: Batch) -> torch.Tensor:
        vectors, node_mask = to_dense_batch(batch.eigvecs, batch.batch)            # (B, N, d), (B, N)
        adjacency = to_dense_adj(batch.edge_index, batch.batch, max_num_nodes=node_mask.shape[1])
        h = spectral_tensor(vectors, self.phis(batch.eigvals, batch.eig_mask))     # (B, N_i, N_j, m)
        keep = (node_mask[:, :, None] & node_mask[:, None, :]).to(h.dtype)
        for layer in self.rho:
            h = layer(h, adjacency, keep)                                          # messages along i
        return h.sum(2)[node_mask]                                                 # sum over j -> (nodes, out)


class SignNetEncoder(nn.Module):
    """SignNet: rho(concat_k [phi(v_k, lambda_k) + phi(-v_k, lambda_k)]), phi a GIN over the graph."""

    def __init__(self, d: int, out_dim: int, hidden: int = 16, layers: int = 2) -> None:
        super().__init__()
        sizes = [2] + [hidden] * layers
        self.phi = nn.ModuleList(ChannelGIN(a, b) for a, b in zip(sizes, sizes[1:]))
        self.rho = mlp([d * hidden, out_dim, out_dim])

    def _phi(self, x: torch.Tensor, adjacency: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        for layer in self.phi:
            x = layer(x, adjacency, keep)
        return x

    def forward(self, batch: Batch) -> torch.Tensor:
        vectors, node_mask = to_dense_batch(batch.eigvecs, batch.batch)            # (B, N, d)
        adjacency = to_dense_adj(batch.edge_index, batch.batch, max_num_nodes=node_mask.shape[1])
        keep = (node_mask[:, :, None] & batch.eig_mask[:, None, :]).to(vectors.dtype)
        lam = batch.eigvals[:, None, :].expand_as(vectors)
        plus, minus = torch.stack([vectors, lam], -1), torch.stack([-vectors, lam], -1)
        h = self._phi(plus, adjacency, keep) + self._phi(minus, adjacency, keep)   # (B, N, d, hidden)
        return self.rho(h[node_mask].flatten(1))


class LapPEEncoder(nn.Module):
    """Raw Laplacian eigenvectors through a linear map, with random sign flips while training."""

    def __init__(self, d: int, out_dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(d, out_dim)

    def forward(self, batch: Batch) -> torch.Tensor:
        vectors = batch.eigvecs
        if self.training:
            signs = torch.randint(0, 2, batch.eig_mask.shape, device=vectors.device) * 2 - 1
            vectors = vectors * signs[batch.batch].to(vectors.dtype)
        return self.linear(vectors)


class PEGDistances(nn.Module):
    """PEG's positional signal (Wang et al. 2022, as the SPE code feeds it to GINE): for every edge (i, j) the
    distance ||Z_i - Z_j|| between the first k Laplacian eigenvectors of its ends. It is invariant to sign
    flips and to rotations of Z (up to cutting an eigenspace at k); the node features never see Z."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k

    def forward(self, batch: Batch) -> torch.Tensor:
        z = batch.eigvecs[:, :self.k]
        source, target = batch.edge_index
        return torch.linalg.vector_norm(z[source] - z[target], dim=-1, keepdim=True)    # (edges, 1)


class GINERegressor(nn.Module):
    """GINE backbone with an optional positional encoder added to the node embedding, residual layers,
    graph pooling and an MLP head with BatchNorm (the ZINC setup of the paper, sizes from config).

    With `peg` (a PEGDistances) every layer l gates its edge embedding by MLP_l(||Z_i - Z_j||), the official
    PEG route of the SPE code (GINE message ReLU(h_j + e_ij * MLP_l(dist_ij))); no node encoding is added.
    """

    def __init__(self, encoder: nn.Module | None, hidden: int, layers: int, num_node_types: int,
                 num_edge_types: int, num_targets: int, pool: str = "sum", pe_dim: int | None = None,
                 peg: PEGDistances | None = None) -> None:
        super().__init__()
        self.encoder, self.peg = encoder, peg
        # The encoding is added to the node embedding; a linear map brings pe_dim to the width when they differ.
        self.pe_to_hidden = nn.Linear(pe_dim, hidden) if encoder is not None and pe_dim != hidden else nn.Identity()
        self.node_embedding = nn.Embedding(num_node_types, hidden)
        self.edge_embeddings = nn.ModuleList(nn.Embedding(num_edge_types, hidden) for _ in range(layers))
        self.edge_gates = nn.ModuleList(mlp([1, hidden, hidden]) for _ in range(layers)) if peg is not None else None
        self.convs = nn.ModuleList(GINEConv(mlp([hidden, hidden, hidden], batch_norm=True), train_eps=True)
                                   for _ in range(layers))
        self.norms = nn.ModuleList(nn.BatchNorm1d(hidden) for _ in range(layers))
        self.pool = {"sum": global_add_pool, "mean": global_mean_pool}[pool]
        self.head = mlp([hidden, hidden, hidden // 2, num_targets], batch_norm=True)

    def forward(self, batch: Batch) -> torch.Tensor:
        h = self.node_embedding(batch.x.view(-1))
        if self.encoder is not None:
            h = h + self.pe_to_hidden(self.encoder(batch))
        distances = self.peg(batch) if self.peg is not None else None
        for layer, (conv, norm, edge_embedding) in enumerate(zip(self.convs, self.norms, self.edge_embeddings)):
            edges = edge_embedding(batch.edge_attr.view(-1))
            if distances is not None:
                edges = edges * self.edge_gates[layer](distances)
            h = h + torch.relu(norm(conv(h, batch.edge_index, edges)))
        return self.head(self.pool(h, batch.batch))


METHODS = ("none", "lappe", "peg", "signnet", "projectors", "spe")


def build_model(method: str, model_cfg: dict, num_targets: int) -> GINERegressor:
    """method: none | lappe | peg | signnet | projectors | spe; sizes from the paper config's `model` block."""
    d, pe = model_cfg["d"], model_cfg["pe_dim"]
    encoders = {
        "none": lambda: None,
        "lappe": lambda: LapPEEncoder(d, pe),
        "peg": lambda: None,
        "signnet": lambda: SignNetEncoder(d, pe, model_cfg["signnet_hidden"], model_cfg["signnet_layers"]),
        "projectors": lambda: SPEEncoder(d, model_cfg["m"], pe, rho_hidden=model_cfg["rho_hidden"],
                                         rho_layers=model_cfg["rho_layers"], hard_partition=True),
        "spe": lambda: SPEEncoder(d, model_cfg["m"], pe, model_cfg["phi_hidden"], model_cfg["rho_hidden"],
                                  model_cfg["rho_layers"]),
    }
    if method not in encoders:
        raise ValueError(f"unknown SPE method {method!r}; choose from {sorted(encoders)}")
    peg = PEGDistances(model_cfg["peg_eigvecs"]) if method == "peg" else None
    return GINERegressor(encoders[method](), model_cfg["hidden"], model_cfg["layers"], model_cfg["num_node_types"],
                         model_cfg["num_edge_types"], num_targets, model_cfg["pool"], pe, peg)
