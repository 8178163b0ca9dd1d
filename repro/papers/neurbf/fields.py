"""Neural fields for 2-D images in pure PyTorch: multi-resolution (hash) grids as torch-ngp's grid encoder
computes them, the NeuRBF layer (adaptive inverse-quadratic kernels with sinusoid composition), the NeuRBF
decoder, a ReLU decoder for the grid baselines, and a SIREN."""

import math

import numpy as np
import torch
from torch import nn

HASH_PRIME = 2654435761  # torch-ngp's prime for the second coordinate (the first is 1)


def grid_layout(levels: int, base: int, finest: int, table_size: int) -> tuple[list, list, list, list]:
    """Per level: the position scale, the resolution, the table size (vertices capped at ``table_size``, rounded
    up to a multiple of 8) and whether the level is hashed, as torch-ngp's grid encoder lays them out."""
    growth = (finest / base) ** (1 / (levels - 1)) if levels > 1 else 1.0
    scales, resolutions, sizes, hashed = [], [], [], []
    for level in range(levels):
        resolution = math.ceil(base * growth**level)
        vertices = (resolution + 1) ** 2
        scales.append(base * growth**level - 1.0)
        resolutions.append(resolution)
        sizes.append(int(math.ceil(min(table_size, vertices) / 8) * 8))
        hashed.append(vertices > table_size)
    return scales, resolutions, sizes, hashed


def grid_parameters(levels: int, features: int, base: int, finest: int, table_size: int) -> int:
    return sum(grid_layout(levels, base, finest, table_size)[2]) * features


class MultiResolutionGrid(nn.Module):
    """``levels`` grids of resolution ceil(base * s^l), s = (finest / base)^(1/(levels-1)), ``features`` per
    vertex, bilinear interpolation. A level with more than ``table_size`` vertices is hashed
    (x * 1 XOR y * 2654435761, modulo its table size), as Instant NGP; with a large table no level is hashed and
    the grid is dense. Inputs in [0, 1]^2; vertex values start at U(-init, init)."""

    def __init__(self, levels: int, features: int, base: int, finest: int, table_size: int, init: float = 1e-4):
        super().__init__()
        self.scales, self.resolutions, self.sizes, self.hashed = grid_layout(levels, base, finest, table_size)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).tolist()
        self.table = nn.Parameter(torch.empty(self.offsets[-1], features).uniform_(-init, init))
        self.out_dim = levels * features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = []
        for level, scale in enumerate(self.scales):
            position = x * scale + 0.5
            corner = position.floor().long()
            fraction = position - corner
            value = 0.0
            for dx in (0, 1):
                for dy in (0, 1):
                    gx, gy = corner[:, 0] + dx, corner[:, 1] + dy
                    if self.hashed[level]:
                        index = gx ^ ((gy * HASH_PRIME) & 0xFFFFFFFF)
                    else:
                        index = gx + gy * (self.resolutions[level] + 1)
                    index = index % self.sizes[level] + self.offsets[level]
                    weight_x = fraction[:, 0] if dx else 1 - fraction[:, 0]
                    weight = weight_x * (fraction[:, 1] if dy else 1 - fraction[:, 1])
                    value = value + weight[:, None] * self.table[index]
            outputs.append(value)
        return torch.cat(outputs, 1)


def inverse_quadratic(offset: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
    """phi = 1 / (1 + d^T A d) for offsets d (..., 2) and shapes A (..., 2, 2), or A = a I for scalar a (..., 1)."""
    if shape.shape[-1] == 1:
        return 1 / (1 + offset.pow(2).sum(-1) * shape[..., 0])
    return 1 / (1 + torch.einsum("...i,...ij,...j->...", offset, shape, offset))


class RBFLayer(nn.Module):
    """sum over the 4 nearest kernels i of w_ij * sin(omega_j * phi_i(x) / sum_i' phi_i'(x)), channel j.

    Centres and shapes are fixed buffers (the official image configuration fixes them after initialisation);
    the normaliser is detached as in the official code. ``omegas`` None drops the sinusoid composition: the
    feature is then sum_i w_ij phi_i(x) / sum phi."""

    def __init__(self, centres: torch.Tensor, shapes: torch.Tensor, channels: int, omegas: torch.Tensor | None,
                 init: float = 1e-4):
        super().__init__()
        self.register_buffer("centres", centres)
        self.register_buffer("shapes", shapes)
        self.register_buffer("omegas", omegas)
        self.weights = nn.Parameter(torch.empty(len(centres), channels).uniform_(-init, init))
        self.out_dim = channels

    def forward(self, x: torch.Tensor, neighbours: torch.Tensor) -> torch.Tensor:
        phi = inverse_quadratic(x[:, None, :] - self.centres[neighbours], self.shapes[neighbours])  # (p, 4)
        phi = phi / (phi.detach().sum(-1, keepdim=True) + 1e-8)
        basis = phi[..., None] if self.omegas is None else torch.sin(phi[..., None] * self.omegas)  # (p, 4, c)
        return (self.weights[neighbours] * basis).sum(1)


class NeuRBFDecoder(nn.Module):
    """Three linear layers; after the first h <- h + sin(omega' h) (omega' log-spaced 10..100 over the units),
    ReLU after the second."""

    def __init__(self, dim_in: int, hidden: int, dim_out: int, omega_range: tuple[float, float]) -> None:
        super().__init__()
        self.first, self.second = nn.Linear(dim_in, hidden), nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, dim_out)
        low, high = omega_range
        self.register_buffer("omegas", torch.exp2(torch.linspace(math.log2(low), math.log2(high), hidden)))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = self.first(h)
        h = h + torch.sin(h * self.omegas)
        return self.out(torch.relu(self.second(h)))


def relu_decoder(dim_in: int, hidden: int, dim_out: int) -> nn.Module:
    return nn.Sequential(nn.Linear(dim_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, dim_out))


class NeuRBF(nn.Module):
    """[hash grid features, RBF features] + learned bias -> NeuRBF decoder. Either part may be absent (ablations)."""

    def __init__(self, rbf: RBFLayer | None, grid: MultiResolutionGrid | None, decoder: nn.Module,
                 bias_init: float = 1e-4) -> None:
        super().__init__()
        self.rbf, self.grid, self.decoder = rbf, grid, decoder
        width = (rbf.out_dim if rbf is not None else 0) + (grid.out_dim if grid is not None else 0)
        self.bias = nn.Parameter(torch.empty(width).uniform_(-bias_init, bias_init))

    def forward(self, x: torch.Tensor, neighbours: torch.Tensor | None = None) -> torch.Tensor:
        parts = ([self.grid(x)] if self.grid is not None else []) + (
            [self.rbf(x, neighbours)] if self.rbf is not None else [])
        return self.decoder(torch.cat(parts, 1) + self.bias)


class GridField(nn.Module):
    """A (hash or dense) multi-resolution grid with a ReLU decoder: Instant NGP's image model."""

    def __init__(self, grid: MultiResolutionGrid, hidden: int, dim_out: int) -> None:
        super().__init__()
        self.grid, self.decoder = grid, relu_decoder(grid.out_dim, hidden, dim_out)

    def forward(self, x: torch.Tensor, neighbours: torch.Tensor | None = None) -> torch.Tensor:
        return self.decoder(self.grid(x))


class Siren(nn.Module):
    """sin(30 (W x + b)) layers (Sitzmann et al. 2020 initialisation) and a linear output; inputs mapped to [-1, 1]."""

    def __init__(self, hidden: int, layers: int, dim_out: int, w0: float = 30.0) -> None:
        super().__init__()
        self.w0 = w0
        self.layers = nn.ModuleList([nn.Linear(2 if i == 0 else hidden, hidden) for i in range(layers)])
        self.out = nn.Linear(hidden, dim_out)
        with torch.no_grad():
            for i, layer in enumerate([*self.layers, self.out]):
                bound = 1 / layer.in_features if i == 0 else math.sqrt(6 / layer.in_features) / w0
                layer.weight.uniform_(-bound, bound)

    def forward(self, x: torch.Tensor, neighbours: torch.Tensor | None = None) -> torch.Tensor:
        h = 2 * x - 1
        for layer in self.layers:
            h = torch.sin(self.w0 * layer(h))
        return self.out(h)


def count_parameters(model: nn.Module, isotropic: bool = False) -> int:
    """Trainable parameters plus the kernels' fixed centres and shapes (they are part of the stored model):
    2 per centre, 3 per symmetric 2x2 shape (d(d+1)/2, not d^2), 1 per isotropic shape."""
    total = sum(p.numel() for p in model.parameters())
    rbf = getattr(model, "rbf", None)
    if rbf is not None:
        total += rbf.centres.numel() + len(rbf.centres) * (1 if isotropic else 3)
    return total
