"""The networks on top of a location encoding: linear, SIREN (lucidrains' siren-pytorch, as used by the
official code) and FCNet (the residual ReLU network of Mac Aodha et al. 2019)."""

import math

import torch
from torch import nn

NETWORKS = ("linear", "siren", "fcnet")


class SineLayer(nn.Module):
    """sin(w0 (W x + b)); first layer W ~ U(-1/d, 1/d), later ones U(-sqrt(6/d)/w0, sqrt(6/d)/w0) (Sitzmann et
    al. 2020); the bias is drawn from the same range."""

    def __init__(self, dim_in: int, dim_out: int, w0: float, is_first: bool, sine: bool = True) -> None:
        super().__init__()
        self.linear = nn.Linear(dim_in, dim_out)
        self.w0, self.sine = w0, sine
        bound = 1 / dim_in if is_first else math.sqrt(6 / dim_in) / w0
        nn.init.uniform_(self.linear.weight, -bound, bound)
        nn.init.uniform_(self.linear.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.linear(x)
        return torch.sin(self.w0 * out) if self.sine else out


class Siren(nn.Module):
    """``layers`` sine layers of width ``hidden`` (w0 = 30 on the first, 1 after) and a linear output layer."""

    def __init__(self, dim_in: int, hidden: int, dim_out: int, layers: int, w0_initial: float = 30.0,
                 w0: float = 1.0) -> None:
        super().__init__()
        self.hidden = nn.Sequential(*[SineLayer(dim_in if i == 0 else hidden, hidden, w0_initial if i == 0 else w0,
                                                is_first=i == 0) for i in range(layers)])
        self.out = SineLayer(hidden, dim_out, w0, is_first=False, sine=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.hidden(x))


class ResidualLayer(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Dropout(0.5), nn.Linear(width, width),
                                   nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class FCNet(nn.Module):
    """Linear + ReLU, four residual blocks (dropout 0.5 inside), and a bias-free class embedding."""

    def __init__(self, dim_in: int, hidden: int, dim_out: int) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Linear(dim_in, hidden), nn.ReLU(), *[ResidualLayer(hidden) for _ in range(4)])
        self.out = nn.Linear(hidden, dim_out, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(x))


def build_network(name: str, dim_in: int, dim_out: int, hidden: int = 64, layers: int = 2) -> nn.Module:
    if name == "linear":
        return nn.Linear(dim_in, dim_out)
    if name == "siren":
        return Siren(dim_in, hidden, dim_out, layers)
    if name == "fcnet":
        return FCNet(dim_in, hidden, dim_out)
    raise ValueError(f"unknown network {name!r}; choose one of {NETWORKS}")
