"""Bias-free denoisers (official ``network.py``): no additive constant anywhere, so in eval mode the
denoiser is positively homogeneous and piecewise linear, f(y) = J(y) y.

Both networks predict the noise; the denoiser is D(y) = y - net(y).
"""

import torch
from torch import nn


class BiasFreeBatchNorm(nn.Module):
    """Batch norm without the mean: x / std_batch(x) * gamma in training, x / running_std * gamma in eval."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("running_sd", torch.ones(1, channels, 1, 1))
        # The official initialisation of the scales: small normal values, clamped to +-0.025.
        self.gammas = nn.Parameter((torch.randn(1, channels, 1, 1) * (2.0 / 9.0 / 64.0)).clamp(-0.025, 0.025))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            sd = torch.sqrt(x.var(dim=(0, 2, 3), keepdim=True, unbiased=False) + 1e-5)
            with torch.no_grad():
                self.running_sd.mul_(0.9).add_(0.1 * sd)
            return x / sd * self.gammas
        return x / self.running_sd * self.gammas


def conv(inputs: int, outputs: int) -> nn.Conv2d:
    return nn.Conv2d(inputs, outputs, 3, padding=1, bias=False)


class BiasFreeCNN(nn.Module):
    """``layers`` 3x3 convolutions: conv-ReLU, (layers - 2) x conv-BFBN-ReLU, conv (the official BF-CNN shape)."""

    def __init__(self, channels: int, layers: int) -> None:
        super().__init__()
        body: list[nn.Module] = [conv(1, channels), nn.ReLU()]
        for _ in range(layers - 2):
            body += [conv(channels, channels), BiasFreeBatchNorm(channels), nn.ReLU()]
        body.append(conv(channels, 1))
        self.body = nn.Sequential(*body)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.body(y)


class BiasFreeUNet(nn.Module):
    """The official UNet: ``blocks`` encoder blocks of 2 convs (channels doubling from ``channels``), 2x2 average
    pooling, a 2-conv middle, transposed-conv upsampling with skip concatenation, no biases."""

    def __init__(self, channels: int, blocks: int) -> None:
        super().__init__()
        width = [channels * 2 ** b for b in range(blocks + 1)]
        self.encoder = nn.ModuleList()
        for b in range(blocks):
            first = [conv(1, width[0]), nn.ReLU()] if b == 0 else [conv(width[b - 1], width[b]),
                                                                   BiasFreeBatchNorm(width[b]), nn.ReLU()]
            self.encoder.append(nn.Sequential(*first, conv(width[b], width[b]), BiasFreeBatchNorm(width[b]),
                                              nn.ReLU()))
        self.middle = nn.Sequential(conv(width[blocks - 1], width[blocks]), BiasFreeBatchNorm(width[blocks]),
                                    nn.ReLU(), conv(width[blocks], width[blocks]), BiasFreeBatchNorm(width[blocks]),
                                    nn.ReLU())
        self.upsample = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for b in range(blocks):
            self.upsample.append(nn.ConvTranspose2d(width[b + 1], width[b], 2, stride=2, bias=False))
            last = [conv(width[b], 1)] if b == 0 else [conv(width[b], width[b]), BiasFreeBatchNorm(width[b]),
                                                       nn.ReLU()]
            self.decoder.append(nn.Sequential(conv(2 * width[b], width[b]), BiasFreeBatchNorm(width[b]), nn.ReLU(),
                                              *last))
        self.pool = nn.AvgPool2d(2, stride=2)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        skips = []
        x = y
        for block in self.encoder:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.middle(x)
        for b in reversed(range(len(self.decoder))):
            x = self.decoder[b](torch.cat([self.upsample[b](x), skips[b]], dim=1))
        return x


def build_denoiser(architecture: str, channels: int, depth: int) -> nn.Module:
    """``bf_cnn`` (depth = layers) or ``unet`` (depth = encoder blocks), Kaiming-normal convolutions."""
    net = BiasFreeCNN(channels, depth) if architecture == "bf_cnn" else BiasFreeUNet(channels, depth)
    for module in net.modules():
        if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.kaiming_normal_(module.weight, a=0, mode="fan_in")
    return net


def denoise(net: nn.Module, noisy: torch.Tensor) -> torch.Tensor:
    """D(y) = y - net(y): the network predicts the noise."""
    return noisy - net(noisy)
