"""CRReLU and the activations it is compared with (the ReLU corrections and GELU, as torch defines them)."""

import torch
from torch import nn


class CRReLU(nn.Module):
    """Correction Regularized ReLU: ReLU(x) + eps * x * exp(-x^2 / 2), eps a learnable scalar (init 0.01).

    The correction x exp(-x^2/2) is the first-order (Taylor) term of the entropy functional around ReLU that EAFO
    derives; it is odd, largest at |x| = 1 (value eps / sqrt(e)), and makes CRReLU non-monotone for x < 0 when
    eps > 0 (minimum at x = -1).
    """

    def __init__(self, eps: float = 0.01) -> None:
        super().__init__()
        self.eps = nn.Parameter(torch.tensor(float(eps)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x) + self.eps * x * torch.exp(-x * x / 2)


ACTIVATIONS = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "celu": nn.CELU,
    "leaky_relu": lambda: nn.LeakyReLU(0.01),
    "prelu": nn.PReLU,          # one learnable slope per layer, init 0.25
    "crrelu": CRReLU,
}


def make_activation(name: str, crrelu_eps: float) -> nn.Module:
    return CRReLU(crrelu_eps) if name == "crrelu" else ACTIVATIONS[name]()
