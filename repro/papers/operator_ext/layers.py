"""Neural-network layers extended to functions, and the backbones built from them.

A grid is described by its number of points per axis and its kind: ``nodes`` (n points including both ends
of [0, 1], spacing 1 / (n - 1); nested grids 17 / 33 / 65 share nodes) or ``periodic`` (n cells, spacing 1 / n).
The scale of a grid relative to the training grid is the ratio of spacings, so a kernel defined on a fixed
physical support spans ``scale`` times as many taps.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from repro.core.spectral import SpectralConv2d


def grid_scale(points: int, base: int, kind: str) -> float:
    """How many grid steps of this grid fit in one step of the base grid."""
    return (points - 1) / (base - 1) if kind == "nodes" else points / base


def resample(x: torch.Tensor, points: int, kind: str) -> torch.Tensor:
    """Bilinear resampling of (batch, channels, n, n) fields to points x points (same physical domain)."""
    if x.shape[-1] == points:
        return x
    return F.interpolate(x, size=(points, points), mode="bilinear", align_corners=kind == "nodes")


class Resolution:
    """The scale of the current input, shared by every layer of one model (set at each forward pass)."""

    def __init__(self, base: int, kind: str) -> None:
        self.base, self.kind, self.scale = base, kind, 1.0

    def set(self, points: int) -> None:
        self.scale = grid_scale(points, self.base, self.kind)


class InterpConv2d(nn.Conv2d):
    """A convolution whose k-tap kernel lives on a fixed physical support: at grid scale s it is resampled
    (bilinear, end points kept) to s (k - 1) + 1 taps, divided by the ratio of tap counts so that its sum is
    kept, and its padding is scaled by s. At s = 1 it is the ordinary convolution. Fewer than one tap is
    clamped to one."""

    def __init__(self, resolution: Resolution, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.resolution = resolution
        self.base_padding = self.padding

    def resampled(self) -> tuple[torch.Tensor, tuple[int, int]]:
        s = self.resolution.scale
        if s == 1.0:
            return self.weight, self.base_padding
        taps = tuple(max(1, int(round(s * (k - 1) + 1))) for k in self.kernel_size)
        kernel = F.interpolate(self.weight, size=taps, mode="bilinear", align_corners=True)
        kernel = kernel / (taps[0] * taps[1] / (self.kernel_size[0] * self.kernel_size[1]))
        return kernel, tuple(int(round(p * s)) for p in self.base_padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel, padding = self.resampled()
        return F.conv2d(x, kernel, self.bias, self.stride, padding, self.dilation, self.groups)


class InterpConvTranspose2d(nn.ConvTranspose2d):
    """A transposed convolution wrapped in resampling: the input is resampled to the grid this level has at
    the training resolution, the layer applied there, and the output resampled back to this scale."""

    def __init__(self, resolution: Resolution, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.resolution = resolution

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s, kind = self.resolution.scale, self.resolution.kind
        if s == 1.0:
            return super().forward(x)
        points = x.shape[-1]
        base_points = round((points - 1) / s) + 1 if kind == "nodes" else round(points / s)
        y = super().forward(resample(x, base_points, kind))
        target = round((y.shape[-1] - 1) * s) + 1 if kind == "nodes" else round(y.shape[-1] * s)
        return resample(y, target, kind)


def coordinates(batch: int, points: int, kind: str, device: torch.device | str) -> torch.Tensor:
    """(batch, 2, n, n) physical coordinates in [0, 1]."""
    if kind == "nodes":
        axis = torch.linspace(0, 1, points, device=device)
    else:
        axis = torch.arange(points, device=device) / points
    return torch.stack(torch.meshgrid(axis, axis, indexing="ij")).expand(batch, 2, points, points)


class FNO2d(nn.Module):
    """The classic FNO-2D (Li et al. 2021; neuralop's FNO without its channel MLPs): lift (a, x, y) -> width
    pointwise, layers u -> GELU(K u + W u) with W a 1 x 1 convolution and no activation after the last, head
    width -> 128 -> 1 pointwise. The spectral layer K is shared (repro.core.spectral); the layer form is this
    paper's own, so that its FNO follows neuralop's layout whatever the FNO baselines of other papers do."""

    def __init__(self, width: int, modes: int, layers: int, kind: str) -> None:
        super().__init__()
        self.kind = kind
        scale = 1.0 / (width * width)
        self.lift = nn.Linear(3, width)
        self.spectral = nn.ModuleList(SpectralConv2d(width, (modes, modes), scale) for _ in range(layers))
        self.pointwise = nn.ModuleList(nn.Conv2d(width, width, 1) for _ in range(layers))
        self.head = nn.Sequential(nn.Linear(width, 128), nn.GELU(), nn.Linear(128, 1))

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        """a: (batch, n, n) -> (batch, n, n)."""
        batch, points = a.shape[0], a.shape[-1]
        grid = coordinates(batch, points, self.kind, a.device)
        u = self.lift(torch.cat([a.unsqueeze(1), grid], 1).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        for i, (spectral, pointwise) in enumerate(zip(self.spectral, self.pointwise)):
            u = spectral(u) + pointwise(u)
            u = F.gelu(u) if i < len(self.spectral) - 1 else u
        return self.head(u.permute(0, 2, 3, 1)).squeeze(-1)


class UNet(nn.Module):
    """A U-Net in the PDE-Arena layout, reduced: per level ``blocks`` x (conv, GroupNorm(1), GELU), a strided
    convolution down, a stride-2 transposed convolution up, skip connections by concatenation. Inputs are the
    field and its physical coordinates. ``interpolate=True`` swaps every convolution for its kernel-resampled
    version (and wraps the transposed ones), the paper's recipe; otherwise kernels are defined in pixels."""

    def __init__(self, channels: list[int], kernel: int, blocks: int, base_points: int, kind: str,
                 interpolate: bool) -> None:
        super().__init__()
        self.resolution = Resolution(base_points, kind)
        self.kind, self.interpolate = kind, interpolate

        def conv(c_in: int, c_out: int, stride: int = 1) -> nn.Module:
            args = (c_in, c_out, kernel)
            kwargs = {"stride": stride, "padding": kernel // 2}
            return InterpConv2d(self.resolution, *args, **kwargs) if interpolate else nn.Conv2d(*args, **kwargs)

        def up(c_in: int, c_out: int) -> nn.Module:
            kwargs = {"stride": 2, "padding": 1, "output_padding": 0 if kind == "nodes" else 1}
            if interpolate:
                return InterpConvTranspose2d(self.resolution, c_in, c_out, 3, **kwargs)
            return nn.ConvTranspose2d(c_in, c_out, 3, **kwargs)

        def block(c_in: int, c_out: int) -> nn.Sequential:
            layers = []
            for i in range(blocks):
                layers += [conv(c_in if i == 0 else c_out, c_out), nn.GroupNorm(1, c_out), nn.GELU()]
            return nn.Sequential(*layers)

        self.lift = conv(3, channels[0])
        self.down_blocks = nn.ModuleList(block(channels[i], channels[i]) for i in range(len(channels) - 1))
        self.downsample = nn.ModuleList(conv(channels[i], channels[i + 1], stride=2) for i in range(len(channels) - 1))
        self.middle = block(channels[-1], channels[-1])
        self.upsample = nn.ModuleList(up(channels[i + 1], channels[i]) for i in range(len(channels) - 1))
        self.up_blocks = nn.ModuleList(block(2 * channels[i], channels[i]) for i in range(len(channels) - 1))
        self.project = nn.Conv2d(channels[0], 1, 1)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        """a: (batch, n, n) -> (batch, n, n)."""
        batch, points = a.shape[0], a.shape[-1]
        self.resolution.set(points)
        x = self.lift(torch.cat([a.unsqueeze(1), coordinates(batch, points, self.kind, a.device)], 1))
        skips = []
        for block, down in zip(self.down_blocks, self.downsample):
            x = block(x)
            skips.append(x)
            x = down(x)
        x = self.middle(x)
        for up, block in zip(reversed(self.upsample), reversed(self.up_blocks)):
            x = block(torch.cat([up(x), skips.pop()], 1))
        return self.project(x).squeeze(1)


class ViT(nn.Module):
    """A vision transformer whose tokens are patches of ``patch`` x ``patch`` pixels (so their physical size
    changes with the grid), with the coordinates as input channels instead of a learned position table (so it
    runs at any resolution); a linear decoder maps each token back to its pixels. Grids are zero-padded to a
    multiple of the patch size and cropped back."""

    def __init__(self, patch: int, dim: int, depth: int, heads: int, mlp: int, kind: str) -> None:
        super().__init__()
        self.patch, self.kind = patch, kind
        self.embed = nn.Conv2d(3, dim, patch, stride=patch)
        layer = nn.TransformerEncoderLayer(dim, heads, mlp, dropout=0.0, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.decode = nn.Linear(dim, patch * patch)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        batch, points = a.shape[0], a.shape[-1]
        x = torch.cat([a.unsqueeze(1), coordinates(batch, points, self.kind, a.device)], 1)
        padded = math.ceil(points / self.patch) * self.patch
        x = F.pad(x, (0, padded - points, 0, padded - points))
        tokens = self.embed(x)                                  # (batch, dim, p, p)
        side = tokens.shape[-1]
        tokens = self.encoder(tokens.flatten(2).transpose(1, 2))
        pixels = self.decode(tokens).view(batch, side, side, self.patch, self.patch)
        out = pixels.permute(0, 1, 3, 2, 4).reshape(batch, padded, padded)
        return out[:, :points, :points]


class InputOutputInterpolation(nn.Module):
    """Run a model trained at ``base`` points on any grid: resample the input to the training grid, apply,
    resample the output back."""

    def __init__(self, model: nn.Module, base: int, kind: str) -> None:
        super().__init__()
        self.model, self.base, self.kind = model, base, kind

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        points = a.shape[-1]
        out = self.model(resample(a.unsqueeze(1), self.base, self.kind).squeeze(1))
        return resample(out.unsqueeze(1), points, self.kind).squeeze(1)
