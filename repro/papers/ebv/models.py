"""Backbones (a small MLP at cpu scale; ResNet-50 as timm builds it for scale=paper) and the three heads.

Every head sits on the backbone's feature f. As in the official code (timm's resnet50 with num_classes = d,
then F.normalize), an EBV model keeps a trainable linear map f -> R^d; only the N x d basis is fixed.

- fc:     logits = W f + b (the standard softmax classifier, N outputs)
- cosine: logits = <z/|z|, p_i/|p_i|> / T with learned prototypes p_i in R^N (z = A f + a, T = 0.07)
- ebv:    logits = <z/|z|, e_i> / T with the fixed, generated unit rows e_i in R^d (z = A f + a)
"""

import torch
import torch.nn.functional as F
from torch import nn

# method -> divisor of the number of classes N giving the EBV dimension d (None: not an EBV head)
METHODS = {"fc": None, "cosine": None, "ebv": 1, "ebv_half": 2, "ebv_quarter": 4}


def ebv_dim(method: str, classes: int) -> int | None:
    divisor = METHODS[method]
    return None if divisor is None else max(2, classes // divisor)


class FCHead(nn.Module):
    def __init__(self, features: int, classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(features, classes)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.fc(f)


class CosineHead(nn.Module):
    """Learned normalised prototypes, the same temperature: separates "fixed" from "normalised"."""

    def __init__(self, features: int, classes: int, temperature: float) -> None:
        super().__init__()
        self.project = nn.Linear(features, classes)
        self.prototypes = nn.Parameter(F.normalize(torch.randn(classes, classes), dim=1))
        self.temperature = temperature

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.project(f), dim=1) @ F.normalize(self.prototypes, dim=1).T / self.temperature


class EBVHead(nn.Module):
    """The fixed basis is a buffer (saved with the model, never trained); it is normalised again on entry."""

    def __init__(self, features: int, basis: torch.Tensor, temperature: float) -> None:
        super().__init__()
        self.project = nn.Linear(features, basis.shape[1])
        self.register_buffer("basis", F.normalize(basis.detach().clone(), dim=1))
        self.temperature = temperature

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.project(f), dim=1) @ self.basis.T / self.temperature


def mlp(inputs: int, hidden: int, layers: int) -> nn.Sequential:
    """The cpu-scale backbone: [Linear, BatchNorm, ReLU] x layers."""
    blocks, width = [], inputs
    for _ in range(layers):
        blocks += [nn.Linear(width, hidden), nn.BatchNorm1d(hidden), nn.ReLU()]
        width = hidden
    return nn.Sequential(*blocks)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inputs: int, width: int, stride: int) -> None:
        super().__init__()
        out = width * self.expansion
        self.conv1, self.bn1 = nn.Conv2d(inputs, width, 1, bias=False), nn.BatchNorm2d(width)
        # the stride sits on the 3x3 convolution (ResNet v1.5, as timm's resnet50)
        self.conv2, self.bn2 = nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width)
        self.conv3, self.bn3 = nn.Conv2d(width, out, 1, bias=False), nn.BatchNorm2d(out)
        nn.init.zeros_(self.bn3.weight)   # timm's zero_init_last
        self.shortcut = nn.Identity() if stride == 1 and inputs == out else nn.Sequential(
            nn.Conv2d(inputs, out, 1, stride, bias=False), nn.BatchNorm2d(out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        return F.relu(self.bn3(self.conv3(y)) + self.shortcut(x))


class ResNet50(nn.Module):
    """ResNet-50 as timm's ``resnet50`` (7x7/2 stem, max pool, [3, 4, 6, 3] bottlenecks, stride on the 3x3,
    global average pool), without its classifier: returns the 2048-d feature."""

    def __init__(self, blocks: tuple[int, ...] = (3, 4, 6, 3)) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        layers, inputs = [], 64
        for stage, count in enumerate(blocks):
            width = 64 * 2 ** stage
            for k in range(count):
                layers.append(Bottleneck(inputs, width, 2 if stage > 0 and k == 0 else 1))
                inputs = width * Bottleneck.expansion
        self.layers = nn.Sequential(*layers)
        self.features = inputs
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self.stem(x)).mean((2, 3))


class Classifier(nn.Module):
    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def build_head(method: str, features: int, classes: int, temperature: float,
               basis: torch.Tensor | None = None) -> nn.Module:
    if method == "fc":
        return FCHead(features, classes)
    if method == "cosine":
        return CosineHead(features, classes, temperature)
    if basis is None or basis.shape[0] != classes:
        raise ValueError(f"{method} needs a generated basis of {classes} rows")
    return EBVHead(features, basis, temperature)


def trainable_head_parameters(head: nn.Module) -> int:
    return sum(p.numel() for p in head.parameters() if p.requires_grad)
