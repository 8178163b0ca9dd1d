"""The affine-equivariant residual network of the reference code and the plain CNN baseline.

Group convolution by Monte Carlo over sampled group elements (the regular representation on samples):

    lift:  f(g, x)     = |det g^-1| sum_y  k(g^-1 (y - x)) I(y)
    conv:  f'(g, x)    = 1/|det g_in| sum_{g_in, y} k(g^-1 (y - x), xi^-1(g^-1 g_in)) f(g_in, y)

where the kernel k is a SIREN evaluated at the transformed offsets (an implicit neural representation, so
it can be read at any group element) and xi^-1 is the polar chart of groups.py. Features carry a group
axis: (batch, channels, samples, height, width).
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from repro.papers.lie_decomp.groups import COORDINATE_COUNT, chart_coordinates, sample_pair

METHODS = ("cnn", "cnn_aug", "so2", "sl2", "gl2")


class SineLayer(nn.Module):
    """sin(w0 (W x + b)) with SIREN's initialisation: U(-1/n, 1/n) in the first layer, U(+-sqrt(6/n)/w0) after
    (zero bias there)."""

    def __init__(self, inputs: int, outputs: int, w0: float, first: bool) -> None:
        super().__init__()
        self.w0 = w0
        self.linear = nn.Linear(inputs, outputs)
        with torch.no_grad():
            bound = 1 / inputs if first else math.sqrt(6 / inputs) / w0
            self.linear.weight.uniform_(-bound, bound)
            if not first:
                self.linear.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.w0 * self.linear(x))


class KernelNetwork(nn.Module):
    """The SIREN kernel: coordinates -> (out_channels * in_channels) weights, with hidden layers of sines and
    a final linear layer initialised at U(+-sqrt(6 / hidden) / sqrt(in_channels k^2)) (the reference's gain)."""

    def __init__(self, coordinates: int, in_channels: int, out_channels: int, kernel_size: int, hidden: int,
                 hidden_layers: int, w0: float, first_w0: float) -> None:
        super().__init__()
        self.sines = nn.Sequential(*[SineLayer(coordinates if i == 0 else hidden, hidden,
                                               first_w0 if i == 0 else w0, first=i == 0)
                                     for i in range(hidden_layers + 1)])
        self.out = nn.Linear(hidden, in_channels * out_channels)
        with torch.no_grad():
            bound = math.sqrt(6.0 / hidden) / math.sqrt(in_channels * kernel_size ** 2)
            self.out.weight.uniform_(-bound, bound)
            self.out.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.sines(x))


def kernel_offsets(kernel_size: int, device: str | torch.device) -> torch.Tensor:
    """The (x, y) offsets of a k x k kernel in [-1, 1] (pixel centres, align_corners=False), (2, k, k)."""
    centres = (2 * torch.arange(kernel_size, device=device, dtype=torch.float32) + 1) / kernel_size - 1
    y, x = torch.meshgrid(centres, centres, indexing="ij")
    return torch.stack([x, y])


def hard_disc(points: torch.Tensor) -> torch.Tensor:
    """1 inside the unit disc of the spatial offsets, 0 outside (volume-preserving groups)."""
    return (points[..., :2, :, :].norm(dim=-3) <= 1).to(points.dtype)


def soft_disc(points: torch.Tensor) -> torch.Tensor:
    """sigmoid(2 (1 - |p|)) over all kernel coordinates (the reference's mask for GL+(2))."""
    return torch.sigmoid(2 * (1 - points.norm(dim=-3)))


class GroupLayerConfig:
    """What every group layer shares: the group, the kernel network's shape, and the sampler."""

    def __init__(self, group: str, kernel_size: int, hidden: int, hidden_layers: int, w0: float,
                 first_w0: float) -> None:
        self.group, self.kernel_size = group, kernel_size
        self.hidden, self.hidden_layers, self.w0, self.first_w0 = hidden, hidden_layers, w0, first_w0
        self.volume_preserving = group != "gl2"

    def kernel_network(self, coordinates: int, in_channels: int, out_channels: int) -> KernelNetwork:
        return KernelNetwork(coordinates, in_channels, out_channels, self.kernel_size, self.hidden,
                             self.hidden_layers, self.w0, self.first_w0)


class LiftingConv(nn.Module):
    """R^2 -> group: the kernel read at g^-1 (offsets), one output per sampled g."""

    def __init__(self, spec: GroupLayerConfig, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.spec, self.in_channels, self.out_channels = spec, in_channels, out_channels
        self.kernel = spec.kernel_network(2, in_channels, out_channels)

    def forward(self, x: torch.Tensor, g_inverse: torch.Tensor) -> torch.Tensor:
        k, samples = self.spec.kernel_size, g_inverse.shape[0]
        offsets = torch.einsum("gij,jhw->gihw", g_inverse, kernel_offsets(k, x.device))  # (G, 2, k, k)
        weights = self.kernel(offsets.permute(0, 2, 3, 1)).view(samples, k, k, self.out_channels,
                                                               self.in_channels)
        mask = hard_disc(offsets) if self.spec.volume_preserving else soft_disc(offsets)
        weights = weights * mask[..., None, None]
        if not self.spec.volume_preserving:
            weights = weights * torch.linalg.det(g_inverse).abs()[:, None, None, None, None]
        weights = weights.permute(3, 0, 4, 1, 2).reshape(self.out_channels * samples, self.in_channels, k, k)
        out = F.conv2d(x, weights)
        return out.view(x.shape[0], self.out_channels, samples, *out.shape[-2:])


class GroupConv(nn.Module):
    """group -> group: kernel read at (g_out^-1 offsets, xi^-1(g_out^-1 g_in)) for every pair of samples."""

    def __init__(self, spec: GroupLayerConfig, in_channels: int, out_channels: int, padding: int) -> None:
        super().__init__()
        self.spec, self.in_channels, self.out_channels, self.padding = spec, in_channels, out_channels, padding
        self.kernel = spec.kernel_network(2 + COORDINATE_COUNT[spec.group], in_channels, out_channels)

    def forward(self, x: torch.Tensor, g_in: torch.Tensor, g_out_inverse: torch.Tensor) -> torch.Tensor:
        k, n_in, n_out = self.spec.kernel_size, g_in.shape[0], g_out_inverse.shape[0]
        offsets = torch.einsum("oij,jhw->oihw", g_out_inverse, kernel_offsets(k, x.device))  # (O, 2, k, k)
        relative = chart_coordinates(g_out_inverse[:, None] @ g_in[None], self.spec.group)  # (O, I, d)
        points = torch.cat([offsets[:, None].expand(-1, n_in, -1, -1, -1),
                            relative[..., None, None].expand(-1, -1, -1, k, k)], 2)  # (O, I, 2 + d, k, k)
        weights = self.kernel(points.permute(0, 1, 3, 4, 2))  # (O, I, k, k, out * in)
        weights = weights.view(n_out, n_in, k, k, self.out_channels, self.in_channels)
        mask = hard_disc(points) if self.spec.volume_preserving else soft_disc(points)
        weights = weights * mask[..., None, None]
        if not self.spec.volume_preserving:
            weights = weights / torch.linalg.det(g_in).abs()[None, :, None, None, None, None]
        weights = weights.permute(4, 0, 5, 1, 2, 3).reshape(self.out_channels * n_out, self.in_channels * n_in,
                                                            k, k)
        out = F.conv2d(x.flatten(1, 2), weights, padding=self.padding)
        return out.view(x.shape[0], self.out_channels, n_out, *out.shape[-2:])


def layer_norm_3d(x: torch.Tensor) -> torch.Tensor:
    """The reference's layernorm3d: normalise each example over channels, samples and space (no affine)."""
    return F.layer_norm(x, x.shape[-4:])


def classifier_head(width: int, hidden: int, classes: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(width, hidden, bias=False), nn.LayerNorm(hidden), nn.GELU(),
                         nn.Dropout(dropout), nn.Linear(hidden, classes))


class AffineGroupResNet(nn.Module):
    """Lifting stem (no padding) -> one residual block of two group convolutions (same samples in and out) ->
    spatial max-pool -> a group convolution onto fresh samples (no padding) -> max over samples and space ->
    LayerNorm MLP head. New group elements are sampled at every forward pass, in training and at test."""

    def __init__(self, spec: GroupLayerConfig, width: int, samples: int, spd_variance: float,
                 rotation_bound: float, head_hidden: int, dropout: float, classes: int = 10) -> None:
        super().__init__()
        self.spec, self.samples = spec, samples
        self.spd_variance, self.rotation_bound = spd_variance, rotation_bound
        pad = spec.kernel_size // 2
        self.stem = LiftingConv(spec, 1, width)
        self.block_conv1 = GroupConv(spec, width, width, pad)
        self.block_conv2 = GroupConv(spec, width, width, pad)
        self.last_conv = GroupConv(spec, width, width, 0)
        self.head = classifier_head(width, head_hidden, classes, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g, g_inverse = sample_pair(self.spec.group, self.samples, self.spd_variance, self.rotation_bound, x.device)
        g_next, g_next_inverse = sample_pair(self.spec.group, self.samples, self.spd_variance,
                                             self.rotation_bound, x.device)
        x = F.gelu(layer_norm_3d(self.stem(x, g_inverse)))
        shortcut = x
        x = F.gelu(layer_norm_3d(self.block_conv1(x, g, g_inverse)))
        x = F.gelu(layer_norm_3d(self.block_conv2(x, g, g_inverse)))
        x = F.gelu(x + shortcut)
        x = layer_norm_3d(x)
        x = F.gelu(F.max_pool2d(x.flatten(1, 2), 2).view(*x.shape[:3], x.shape[3] // 2, x.shape[4] // 2))
        x = F.gelu(layer_norm_3d(self.last_conv(x, g, g_next_inverse)))
        return self.head(x.amax(dim=(2, 3, 4)))


class PlainResNet(nn.Module):
    """The same skeleton with ordinary 5x5 convolutions (no group axis): the CNN baseline."""

    def __init__(self, width: int, kernel_size: int, head_hidden: int, dropout: float, classes: int = 10) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.stem = nn.Conv2d(1, width, kernel_size, bias=False)
        self.block_conv1 = nn.Conv2d(width, width, kernel_size, padding=pad, bias=False)
        self.block_conv2 = nn.Conv2d(width, width, kernel_size, padding=pad, bias=False)
        self.last_conv = nn.Conv2d(width, width, kernel_size, bias=False)
        self.head = classifier_head(width, head_hidden, classes, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        def norm(t: torch.Tensor) -> torch.Tensor:
            return F.layer_norm(t, t.shape[-3:])

        x = F.gelu(norm(self.stem(x)))
        shortcut = x
        x = F.gelu(norm(self.block_conv1(x)))
        x = F.gelu(norm(self.block_conv2(x)))
        x = norm(F.gelu(x + shortcut))
        x = F.gelu(F.max_pool2d(x, 2))
        x = F.gelu(norm(self.last_conv(x)))
        return self.head(x.amax(dim=(2, 3)))


def build_model(method: str, model: dict) -> nn.Module:
    """cnn / cnn_aug: the plain network; so2 / sl2 / gl2: the group network on that group."""
    if method in ("cnn", "cnn_aug"):
        return PlainResNet(model["cnn_width"], model["kernel_size"], model["head_hidden"], model["dropout"])
    spec = GroupLayerConfig(method, model["kernel_size"], model["siren_hidden"], model["siren_layers"],
                            model["siren_w0"], model["siren_first_w0"])
    return AffineGroupResNet(spec, model["width"], model["samples"], model["spd_variance"],
                             model["rotation_bound"], model["head_hidden"], model["dropout"])
