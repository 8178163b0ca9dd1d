"""The pre-activation (v2) ResNet of the official tensorflow/tpu code, in which every norm-act pair is the
layer under test. The official ``resnet()`` refuses EvoNorms in the post-activation (v1) form ("Evonorms
require the pre-activation form"), so every layer, BN-ReLU included, is compared in the v2 form here.

v2 block (official ``residual_block`` / ``bottleneck_block`` with ``pre_activation=True``): the block input is
passed through norm-act first; the projection shortcut (first block of every group) is a bare convolution of
that pre-activated input; the residual branch is conv -> norm-act -> conv (-> norm-act -> conv for the
bottleneck); the output is branch + shortcut with nothing after the addition. A final norm-act precedes the
global average pool. The stem has no norm-act (v2). Convolutions have no bias and TF1's default
variance-scaling init (fan-in, truncated normal); the classifier is N(0, 0.01^2) with zero bias.
"""

import math

import torch
from torch import nn

from repro.papers.evonorm.layers import norm_act

TRUNC_STD = 0.87962566103423978  # std of a standard normal truncated to [-2, 2]


def conv(in_channels: int, out_channels: int, kernel: int, stride: int) -> nn.Conv2d:
    layer = nn.Conv2d(in_channels, out_channels, kernel, stride, padding=kernel // 2, bias=False)
    std = math.sqrt(1.0 / (in_channels * kernel * kernel)) / TRUNC_STD
    nn.init.trunc_normal_(layer.weight, std=std, a=-2 * std, b=2 * std)
    return layer


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, layer: str, groups: int, in_channels: int, filters: int, stride: int, projection: bool,
                 workers: int = 1):
        super().__init__()
        self.pre = norm_act(layer, in_channels, groups, workers=workers)
        self.shortcut = conv(in_channels, filters, 1, stride) if projection else None
        self.conv1 = conv(in_channels, filters, 3, stride)
        self.act1 = norm_act(layer, filters, groups, workers=workers)
        self.conv2 = conv(filters, filters, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.pre(x)
        if self.shortcut is not None:
            shortcut = self.shortcut(x)
        return self.conv2(self.act1(self.conv1(x))) + shortcut


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, layer: str, groups: int, in_channels: int, filters: int, stride: int, projection: bool,
                 workers: int = 1):
        super().__init__()
        self.pre = norm_act(layer, in_channels, groups, workers=workers)
        self.shortcut = conv(in_channels, 4 * filters, 1, stride) if projection else None
        self.conv1 = conv(in_channels, filters, 1, 1)
        self.act1 = norm_act(layer, filters, groups, workers=workers)
        self.conv2 = conv(filters, filters, 3, stride)
        self.act2 = norm_act(layer, filters, groups, workers=workers)
        self.conv3 = conv(filters, 4 * filters, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.pre(x)
        if self.shortcut is not None:
            shortcut = self.shortcut(x)
        return self.conv3(self.act2(self.conv2(self.act1(self.conv1(x))))) + shortcut


class PreActResNet(nn.Module):
    """stem: 'small' (3x3 conv, stride 1, no pooling: 16x16 digits) or 'imagenet' (7x7/2 conv + 3x3/2 max pool)."""

    def __init__(self, layer: str, groups: int, widths: list[int], blocks: list[int], strides: list[int],
                 stem_width: int, stem: str, block: str, in_channels: int, num_classes: int, workers: int = 1) -> None:
        super().__init__()
        block_cls = {"basic": BasicBlock, "bottleneck": Bottleneck}[block]
        if stem == "small":
            self.stem = conv(in_channels, stem_width, 3, 1)
        elif stem == "imagenet":
            self.stem = nn.Sequential(conv(in_channels, stem_width, 7, 2), nn.MaxPool2d(3, 2, padding=1))
        else:
            raise ValueError(f"unknown stem {stem!r}; choose small or imagenet")
        stages, channels = [], stem_width
        for filters, count, stride in zip(widths, blocks, strides):
            for k in range(count):  # the first block of every group has the projection shortcut and the stride
                stages.append(block_cls(layer, groups, channels, filters, stride if k == 0 else 1, k == 0, workers))
                channels = filters * block_cls.expansion
        self.blocks = nn.Sequential(*stages)
        self.final = norm_act(layer, channels, groups, workers=workers)
        self.head = nn.Linear(channels, num_classes)
        nn.init.normal_(self.head.weight, std=0.01)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.final(self.blocks(self.stem(x)))
        return self.head(x.mean(dim=(2, 3)))


def build_model(layer: str, model_cfg: dict, in_channels: int, num_classes: int) -> PreActResNet:
    m = model_cfg
    return PreActResNet(layer, int(m["groups"]), list(m["widths"]), list(m["blocks"]), list(m["strides"]),
                        int(m["stem_width"]), str(m["stem"]), str(m["block"]), in_channels, num_classes,
                        int(m.get("workers", 1)))
