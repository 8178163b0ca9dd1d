"""The equivariant neural field (ENF) of enf2enf, the global-latent (functa-style) field and the pointwise MLP,
plus the Meta-SGD inner loop that fits a sample's latents to its signed distance field.

ENF (cross-attention from a query point x to a latent point cloud {(p_i, a_i)}): the only geometric input is the
relative position x - p_i, so translating the queries and the latent positions together leaves the field unchanged.
Query features come from random Fourier features of x - p_i, keys and values from the contexts a_i, the values are
modulated by a second embedding of x - p_i (FiLM), and the attention logits carry a Gaussian window
-|x - p_i|^2 / sigma^2 that makes each latent local.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


class FourierFeatureNet(nn.Module):
    """Fixed random Fourier features [sin, cos](2 pi x B), B ~ N(0, std^2), then Linear-GELU-Linear."""

    def __init__(self, in_dim: int, hidden: int, std: float) -> None:
        super().__init__()
        self.register_buffer("frequencies", torch.randn(in_dim, hidden // 2) * std)
        self.hidden = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        projected = 2 * math.pi * x @ self.frequencies
        return self.out(F.gelu(self.hidden(torch.cat([projected.sin(), projected.cos()], -1))))


class PointwiseFFN(nn.Module):
    """Linear-GELU-LayerNorm-Linear."""

    def __init__(self, num_in: int, num_hidden: int, num_out: int) -> None:
        super().__init__()
        self.fc1, self.norm = nn.Linear(num_in, num_hidden), nn.LayerNorm(num_hidden)
        self.fc2 = nn.Linear(num_hidden, num_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.norm(F.gelu(self.fc1(x))))


class EquivariantCrossAttention(nn.Module):
    """Attention from query points x [B, C, D] to latents (p [Z, D], a [B, Z, H]) through the invariant x - p."""

    def __init__(self, hidden: int, heads: int, frequencies: tuple[float, float], project_heads: bool,
                 coord_dim: int = 2) -> None:
        super().__init__()
        self.hidden, self.heads = hidden, heads
        self.query_embedding = FourierFeatureNet(coord_dim, hidden, frequencies[0])
        self.value_embedding = FourierFeatureNet(coord_dim, hidden, frequencies[1])
        self.to_query = nn.Linear(hidden, heads * hidden)
        self.to_key = nn.Linear(hidden, heads * hidden)
        self.to_value = nn.Linear(hidden, heads * hidden)
        self.value_film = PointwiseFFN(hidden, hidden, 2 * heads * hidden)
        self.value_mixer = PointwiseFFN(hidden, hidden, hidden)
        self.out = nn.Linear(heads * hidden, hidden if project_heads else heads * hidden)

    def forward(self, x: torch.Tensor, p: torch.Tensor, a: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
        batch, count, latents = x.shape[0], x.shape[1], p.shape[0]
        relative = x[:, :, None, :] - p[None, None, :, :]                       # [B, C, Z, D]
        query = self.to_query(self.query_embedding(relative)).view(batch, count, latents, self.heads, self.hidden)
        key = self.to_key(a).view(batch, 1, latents, self.heads, self.hidden)
        gamma, beta = self.value_film(self.value_embedding(relative)).chunk(2, -1)
        value = self.to_value(a)[:, None] * (1 + gamma) + beta                    # FiLM by the invariant
        value = self.value_mixer(value.view(batch, count, latents, self.heads, self.hidden))
        logits = (query * key).sum(-1) / math.sqrt(self.hidden)                   # [B, C, Z, heads]
        logits = logits - (relative**2).sum(-1, keepdim=True) / window[None, None, :, None] ** 2
        weights = logits.softmax(dim=2)
        mixed = (weights[..., None] * value).sum(2)                               # [B, C, heads, H]
        return self.out(mixed.reshape(batch, count, self.heads * self.hidden))


def latent_grid(per_side: int, box: list[list[float]], coord_dim: int = 2) -> torch.Tensor:
    """Latent positions on a per_side x per_side grid over box [[x0, x1], [y0, y1]] (frozen, as the reference); the
    coordinates past the two spatial ones are zero, as the reference pads its grid when queries carry more."""
    axes = [torch.linspace(lo, hi, per_side) for lo, hi in box]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 2)
    return torch.cat([grid, grid.new_zeros(grid.shape[0], coord_dim - 2)], -1)


class EquivariantNeuralField(nn.Module):
    """f(x; {(p_i, a_i)}): a stem on the contexts, self-attention among latents (their relative positions), then
    cross-attention from x and a 3-layer head. Queries have ``coord_dim`` coordinates: (x, y), or (x, y, SDF) for
    the reference's output ENF, whose latents sit at SDF coordinate 0. The Gaussian window is
    sigma = coord_dim / latents per side, the width the reference sets so that neighbouring Gaussians overlap."""

    def __init__(self, latent_dim: int, hidden: int, heads: int, self_layers: int, out_dim: int,
                 frequencies: tuple[float, float], per_side: int, box: list[list[float]], deep_stem: bool,
                 coord_dim: int = 2) -> None:
        super().__init__()
        self.register_buffer("positions", latent_grid(per_side, box, coord_dim))
        self.register_buffer("window", torch.full((per_side**2,), coord_dim / per_side))
        self.stem = (nn.Sequential(nn.Linear(latent_dim, hidden), nn.GELU(), nn.Linear(hidden, hidden)) if deep_stem
                     else nn.Linear(latent_dim, hidden))
        self.self_norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(self_layers))
        self.self_attention = nn.ModuleList(EquivariantCrossAttention(hidden, heads, frequencies, True, coord_dim)
                                            for _ in range(self_layers))
        self.self_ffn = nn.ModuleList(PointwiseFFN(hidden, hidden, hidden) for _ in range(self_layers))
        self.cross_norm = nn.LayerNorm(hidden)
        self.cross_attention = EquivariantCrossAttention(hidden, heads, frequencies, False, coord_dim)
        self.cross_ffn = PointwiseFFN(heads * hidden, heads * hidden, heads * hidden)
        self.head = nn.Sequential(nn.Linear(heads * hidden, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                                  nn.Linear(hidden, out_dim))

    @property
    def num_latents(self) -> int:
        return self.positions.shape[0]

    def forward(self, x: torch.Tensor, a: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, C, coord_dim] queries, a [B, Z, latent_dim] contexts; ``positions`` overrides the latent grid (for
        checks of equivariance under a transform of the whole latent point cloud)."""
        p = self.positions if positions is None else positions
        h = self.stem(a)
        for norm, attention, ffn in zip(self.self_norms, self.self_attention, self.self_ffn):
            queries = p[None].expand(h.shape[0], -1, -1)
            h = F.gelu(h + ffn(h + attention(queries, p, norm(h), self.window)))
        y = F.gelu(self.cross_ffn(self.cross_attention(x, p, self.cross_norm(h), self.window)))
        return self.head(y)


class ModulatedFourierField(nn.Module):
    """Global-latent field (functa / MARIO style): Gaussian Fourier features of x (plus x itself), a ReLU MLP whose
    hidden layers are shifted by linear maps of one global code per sample. x has ``in_dim`` coordinates."""

    def __init__(self, code_dim: int, hidden: int, depth: int, out_dim: int, frequencies: int, std: float,
                 in_dim: int = 2) -> None:
        super().__init__()
        self.register_buffer("frequencies", torch.randn(in_dim, frequencies) * std)
        widths = [in_dim + 2 * frequencies] + [hidden] * depth
        self.layers = nn.ModuleList(nn.Linear(i, o) for i, o in zip(widths, widths[1:]))
        self.shifts = nn.Linear(code_dim, hidden * depth)
        self.out = nn.Linear(hidden, out_dim)

    def forward(self, x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        """x [B, C, in_dim], code [B, code_dim]."""
        projected = 2 * math.pi * x @ self.frequencies
        h = torch.cat([x, projected.sin(), projected.cos()], -1)
        shifts = self.shifts(code).chunk(len(self.layers), -1)
        for layer, shift in zip(self.layers, shifts):
            h = F.relu(layer(h) + shift[:, None, :])
        return self.out(h)


class PointwiseMLP(nn.Module):
    """The geometry-agnostic baseline: an MLP on (x, y, SDF(x), alpha) at each point, no latents."""

    def __init__(self, in_dim: int, hidden: int, depth: int, out_dim: int) -> None:
        super().__init__()
        widths = [in_dim] + [hidden] * depth
        layers: list[nn.Module] = []
        for i, o in zip(widths, widths[1:]):
            layers += [nn.Linear(i, o), nn.GELU()]
        self.net = nn.Sequential(*layers, nn.Linear(hidden, out_dim))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features)


def fit_latents(field: nn.Module, init: torch.Tensor, step_sizes: torch.Tensor,
                inner: list[tuple[torch.Tensor, torch.Tensor]], second_order: bool) -> torch.Tensor:
    """Meta-SGD inner loop: from the shared initial latents, one gradient step on the field's MSE per (coords, target)
    pair in ``inner`` (each a fresh random subset of the samples' points), scaled per latent dimension by
    ``step_sizes``: a <- a - step_sizes * grad_a MSE.

    init [Z, d] (ENF contexts) or [d] (global code) is broadcast to the batch; coords [B, S, 2], target [B, S, k].
    ``second_order`` keeps the graph so that an outer loss differentiates through the inner steps, as the reference.
    """
    latents = init.expand(inner[0][0].shape[0], *init.shape).clone()
    if not latents.requires_grad:
        latents.requires_grad_(True)
    for coords, target in inner:
        loss = (field(coords, latents) - target).pow(2).mean(dim=(1, 2)).sum()  # per-sample mean: B-independent steps
        (gradient,) = torch.autograd.grad(loss, latents, create_graph=second_order)
        latents = latents - step_sizes * gradient
    return latents
