"""SIE and its baselines (official ``src/models.py``, ``src/hypernetwork.py``, ``src/predictors.py``).

The representation is split into an invariant part (first dims) and an equivariant part (last ``equi``
dims), each with its own projector whose widths are the full projector's scaled by the part's share. The
equivariant predictor maps view 1's equivariant embedding to view 2's given the relative rotation (a
quaternion): a hypernetwork whose output is the weight matrix of a linear map, or an MLP fed
[quaternion, embedding]. The loss is VICReg's, with the variance and covariance terms on the concatenated
[invariant, equivariant] embedding (so that the two parts do not duplicate information).
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

METHODS = ("vicreg", "sie", "sie_equi_only", "sie_mlp_predictor")


class Encoder(nn.Module):
    """A small CNN backbone: 3x3 convs with stride 2, BatchNorm and ReLU, then a linear map to the representation
    (the CPU stand-in for ResNet-18)."""

    def __init__(self, channels: list[int], size: int, representation: int) -> None:
        super().__init__()
        layers, previous = [], 3
        for width in channels:
            layers += [nn.Conv2d(previous, width, 3, stride=2, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
            previous = width
        self.features = nn.Sequential(*layers, nn.Flatten())
        final = size // 2 ** len(channels)
        self.head = nn.Linear(previous * final * final, representation)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))


class BasicBlock(nn.Module):
    """ResNet's basic block: two 3x3 convs with BatchNorm, identity or 1x1 projection shortcut."""

    def __init__(self, inputs: int, outputs: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False), nn.BatchNorm2d(outputs),
                                  nn.ReLU(), nn.Conv2d(outputs, outputs, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(outputs))
        nn.init.zeros_(self.body[-1].weight)  # zero_init_residual=True, as the official backbone
        self.shortcut = nn.Identity() if stride == 1 and inputs == outputs else nn.Sequential(
            nn.Conv2d(inputs, outputs, 1, stride, bias=False), nn.BatchNorm2d(outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 without its classifier: 512-d average-pooled representation (the paper's backbone)."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                                   nn.MaxPool2d(3, 2, 1)]
        previous = 64
        for width, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [BasicBlock(previous, width, stride), BasicBlock(width, width, 1)]
            previous = width
        self.net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


def build_encoder(backbone: str, channels: list[int], size: int, representation: int) -> nn.Module:
    """``cnn`` (the CPU backbone) or ``resnet18`` (representation must then be 512)."""
    if backbone == "resnet18":
        if representation != 512:
            raise ValueError(f"resnet18 gives a 512-d representation, not {representation}")
        return ResNet18()
    return Encoder(channels, size, representation)


def projector(inputs: int, widths: list[int]) -> nn.Sequential:
    """Official Projector: (Linear, BatchNorm1d, ReLU) for all but the last layer, last Linear without bias."""
    sizes, layers = [inputs, *widths], []
    for a, b in zip(sizes[:-2], sizes[1:-1]):
        layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU()]
    layers.append(nn.Linear(sizes[-2], sizes[-1], bias=False))
    return nn.Sequential(*layers)


class HypernetworkPredictor(nn.Module):
    """A linear hypernetwork (no bias): the quaternion q sets the weights W(q) = sum_k q_k W_k of a linear map
    (dim x dim) applied to the equivariant embedding; the prediction is W(q) e. It cannot ignore q."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.hypernet = nn.Linear(4, dim * dim, bias=False)

    def forward(self, embedding: torch.Tensor, quaternion: torch.Tensor) -> torch.Tensor:
        # W(q) e = sum_{j,k} H[i*dim + j, k] q_k e_j (H the hypernetwork's weight): one matmul of the outer
        # products e_j q_k (batch, dim*4) with H read as (dim, dim*4). The same sum as building W(q) per sample and
        # multiplying (official ParametrizedNet), without materialising a dim x dim matrix per sample.
        outer = (embedding[:, :, None] * quaternion[:, None, :]).flatten(1)
        return outer @ self.hypernet.weight.view(self.dim, self.dim * 4).T


class MLPPredictor(nn.Module):
    """The official ``predictor_type=mlp`` with one layer: Linear([quaternion, embedding]) -> embedding."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim + 4, dim)

    def forward(self, embedding: torch.Tensor, quaternion: torch.Tensor) -> torch.Tensor:
        return self.linear(torch.cat([quaternion, embedding], dim=1))


def split_widths(widths: list[int], share: float) -> list[int]:
    """The part's projector widths: the full widths scaled by the part's share of the representation."""
    return [int(w) for w in np.round(np.array(widths) * share).astype(int)]


def off_diagonal(matrix: torch.Tensor) -> torch.Tensor:
    n = matrix.shape[0]
    return matrix.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()


def variance_hinge(z: torch.Tensor) -> torch.Tensor:
    """mean(relu(1 - std)) / 2 with std = sqrt(var + 1e-4) per dimension (VICReg's variance term)."""
    z = z - z.mean(0)
    return F.relu(1 - torch.sqrt(z.var(0) + 1e-4)).mean() / 2


def covariance_penalty(z: torch.Tensor) -> torch.Tensor:
    """Squared off-diagonal covariances (normalised by batch - 1), summed and divided by the dimension."""
    z = z - z.mean(0)
    cov = z.T @ z / (len(z) - 1)
    return off_diagonal(cov).pow(2).sum() / z.shape[1]


class SSLModel(nn.Module):
    """One of METHODS: the backbone, projector(s), predictor and the official loss of that method."""

    def __init__(self, method: str, encoder: nn.Module, representation: int, equi: int, widths: list[int],
                 coefficients: dict) -> None:
        super().__init__()
        self.method, self.encoder, self.c = method, encoder, coefficients
        self.equi = {"vicreg": 0, "sie_equi_only": representation}.get(method, equi)
        self.inv = representation - self.equi
        if self.inv:
            self.projector_inv = projector(self.inv, split_widths(widths, self.inv / representation))
        if self.equi:
            equi_widths = split_widths(widths, self.equi / representation)
            self.projector_equi = projector(self.equi, equi_widths)
            dim = equi_widths[-1]
            self.predictor = MLPPredictor(dim) if method == "sie_mlp_predictor" else HypernetworkPredictor(dim)

    def representation(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder(images)

    def forward(self, first: torch.Tensor, second: torch.Tensor, quaternion: torch.Tensor) -> torch.Tensor:
        """The training loss of a batch of pairs (view 1, view 2, rotation from view 1 to view 2)."""
        r1, r2 = self.encoder(first), self.encoder(second)
        c = self.c
        parts1, parts2 = [], []
        loss = first.new_zeros(())
        if self.inv:
            i1, i2 = self.projector_inv(r1[:, :self.inv]), self.projector_inv(r2[:, :self.inv])
            loss = loss + c["sim"] * F.mse_loss(i1, i2)
            parts1.append(i1)
            parts2.append(i2)
        if self.equi:
            e1, e2 = self.projector_equi(r1[:, self.inv:]), self.projector_equi(r2[:, self.inv:])
            predicted = self.predictor(e1, quaternion)
            # SIE weighs the equivariant term by equi_factor; SIE equivariant-only by 1 (official code).
            factor = 1.0 if self.method == "sie_equi_only" else c["equi_factor"]
            loss = loss + factor * c["sim"] * F.mse_loss(predicted, e2) + c["std"] * variance_hinge(predicted)
            parts1.append(e1)
            parts2.append(e2)
        z1, z2 = torch.cat(parts1, 1), torch.cat(parts2, 1)
        loss = loss + c["std"] * (variance_hinge(z1) + variance_hinge(z2))
        return loss + c["cov"] * (covariance_penalty(z1) + covariance_penalty(z2))
