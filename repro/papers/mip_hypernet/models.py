"""The primary network, the hypernetwork and its four parametrisations (default, MIP and MIP's two halves).

A hypernetwork h(gamma; w) predicts the flat parameter vector theta of a primary network f(x; theta).
- default:   theta = h(gamma), the last layer's bias starts at zero, so with zero biases and a positively
             homogeneous activation h(c gamma) = c h(gamma): ||theta|| grows linearly with gamma.
- encoding:  theta = h(E(gamma)) with E(gamma) = [cos(pi gamma / 2), sin(pi gamma / 2)] (||E||^2 = d).
- residual:  theta = theta0 + h(gamma), theta0 a free vector initialised like the primary network.
- mip:       both, theta = theta0 + h(E(gamma)) (magnitude-invariant parametrisation).
The residual theta0 is the bias of the hypernetwork's last layer, as in the authors' hyperlight library; every
variant has that bias as a trainable parameter and they differ only in its initial value and in the input map.
"""

import math

import torch
from torch import nn

VARIANTS = ("default", "encoding", "residual", "mip")
ACTIVATIONS = {"leakyrelu": lambda: nn.LeakyReLU(0.01), "relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}
# torch.nn.init gains of the hidden activations (hyperlight maps GELU to the leaky-ReLU gain as well).
INIT_GAINS = {"leakyrelu": "leaky_relu", "relu": "relu", "gelu": "leaky_relu", "tanh": "tanh"}
NORMALISERS = ("none", "batchnorm", "layernorm")


def primary_network(width: int) -> nn.Sequential:
    """f(x; theta): the 1-width-width-1 ReLU MLP whose parameters the hypernetwork predicts."""
    return nn.Sequential(nn.Linear(1, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 1))


def parameter_shapes(primary: nn.Module) -> dict[str, torch.Size]:
    """Name -> shape of the primary parameters, in the order they are laid out in the flat theta."""
    return {name: p.shape for name, p in primary.named_parameters()}


def encode(gamma: torch.Tensor) -> torch.Tensor:
    """E(gamma) = [cos(pi gamma / 2), sin(pi gamma / 2)] per coordinate (gamma in [0, 1])."""
    angle = math.pi * gamma / 2
    return torch.cat([torch.cos(angle), torch.sin(angle)], dim=-1)


def _gain(activation: str) -> float:
    name = INIT_GAINS[activation]
    return nn.init.calculate_gain(name, 0.01) if name == "leaky_relu" else nn.init.calculate_gain(name)


class HyperNetwork(nn.Module):
    """MLP d -> hidden... -> |theta| with the variant's input map and initial output bias.

    Initialisation follows the official code: hidden layers Kaiming-normal with fan-out, zero biases; the
    last layer's weight is initialised block by block (one block per primary tensor) with fan-out equal to
    that tensor's size, and the blocks that predict primary biases start at zero.
    """

    def __init__(self, variant: str, shapes: dict[str, torch.Size], gamma_dim: int, hidden: list[int],
                 activation: str = "leakyrelu", normaliser: str = "none") -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown hypernetwork variant {variant!r}; choose one of {VARIANTS}")
        self.variant, self.shapes = variant, dict(shapes)
        self.encoded = variant in ("encoding", "mip")
        layers: list[nn.Module] = []
        width = 2 * gamma_dim if self.encoded else gamma_dim
        for size in hidden:
            layers.append(nn.Linear(width, size))
            if normaliser == "batchnorm":
                layers.append(nn.BatchNorm1d(size))
            elif normaliser == "layernorm":
                layers.append(nn.LayerNorm(size))
            layers.append(ACTIVATIONS[activation]())
            width = size
        self.hidden = nn.Sequential(*layers)
        self.output = nn.Linear(width, sum(math.prod(s) for s in self.shapes.values()))
        self._initialise(_gain(activation))

    def _initialise(self, gain: float) -> None:
        for layer in self.hidden:
            if isinstance(layer, nn.Linear):
                nn.init.normal_(layer.weight, std=gain / math.sqrt(layer.out_features))
                nn.init.zeros_(layer.bias)
        theta0 = torch.zeros(self.output.out_features)
        offset = 0
        with torch.no_grad():
            for name, shape in self.shapes.items():
                size = math.prod(shape)
                block = self.output.weight[offset:offset + size]
                if name.endswith("bias"):
                    block.zero_()
                else:
                    block.normal_(std=gain / math.sqrt(size))
                    # theta0: the primary network's usual init, Kaiming normal (fan-in) for its weights.
                    fan_in = shape[1] if len(shape) > 1 else 1
                    theta0[offset:offset + size] = torch.randn(size) * (_gain("leakyrelu") / math.sqrt(fan_in))
                offset += size
            residual = self.variant in ("residual", "mip")
            self.output.bias.copy_(theta0 if residual else torch.zeros_like(theta0))

    def forward(self, gamma: torch.Tensor) -> torch.Tensor:
        """gamma (batch, d) -> flat theta (batch, |theta|)."""
        return self.output(self.hidden(encode(gamma) if self.encoded else gamma))

    def unflatten(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        """Flat theta (batch, |theta|) -> {primary parameter name: (batch, *shape)}."""
        params, offset = {}, 0
        for name, shape in self.shapes.items():
            size = math.prod(shape)
            params[name] = theta[:, offset:offset + size].reshape(-1, *shape)
            offset += size
        return params


class HyperModel(nn.Module):
    """The pair (h, f): predicts f's parameters for each gamma and evaluates f on that gamma's points."""

    def __init__(self, variant: str, width: int, gamma_dim: int, hidden: list[int], activation: str = "leakyrelu",
                 normaliser: str = "none") -> None:
        super().__init__()
        primary = primary_network(width)
        self.hyper = HyperNetwork(variant, parameter_shapes(primary), gamma_dim, hidden, activation, normaliser)
        # The primary network holds no trainable state of its own: only its structure is used.
        self.primary = primary.requires_grad_(False)

    def forward(self, gamma: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """gamma (batch, d), x (batch, points) -> f(x; theta(gamma)) (batch, points), one network per gamma."""
        params = self.hyper.unflatten(self.hyper(gamma))

        def apply(p: dict[str, torch.Tensor], points: torch.Tensor) -> torch.Tensor:
            return torch.func.functional_call(self.primary, p, (points.unsqueeze(-1),)).squeeze(-1)

        return torch.func.vmap(apply)(params, x)
