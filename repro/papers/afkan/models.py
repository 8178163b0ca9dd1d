"""AF-KAN and the networks it is compared with, following the All-KAN code base (hoangthangta/All-KAN).

Every model maps (B, D_in) to (B, D_out) through the layer widths ``width`` (e.g. [64, 32, 10]).

- AF-KAN (``models/af_kan.py``): per input x and interval j, x1 = act(x - a_j), x2 = act(b_j - x) with
  G + k trainable intervals a_j = (j - k) / G, b_j = a_j + (k + 1) / G; a function type combines x1, x2;
  "L2MM" rescales the whole feature tensor (L2 norm, then min-max to [0, 1]); a global attention
  (score = Linear(G + k -> 1), softmax over the D inputs of score / max(tau, 1)) sums the G + k features
  to one per input; LayerNorm over D; y = W act(.), W of shape (D_out, D_in), no bias.
- MLP (``models/mlp.py``): per layer LayerNorm, then act(W x) with no bias (also after the last layer).
- ReLU-KAN (``models/relu_kan.py``): LayerNorm, then [r ReLU(x - a) ReLU(b - x)]^2, r = 4 G^2 / (k + 1)^2,
  with per-input trainable intervals, mixed by a (G + k) x D convolution (one weight per edge and function).
- Efficient-KAN (``models/efficient_kan.py``): SiLU base branch plus B-splines of order k on G uniform
  intervals of [-1, 1], scaled per edge (the B-spline KAN).
- FastKAN (``models/fast_kan.py``): LayerNorm, Gaussian radial basis functions on 8 centres in [-2, 2],
  plus a SiLU base branch with bias.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {
    "silu": F.silu, "relu": F.relu, "gelu": F.gelu, "elu": F.elu, "selu": F.selu, "softplus": F.softplus,
    "sigmoid": torch.sigmoid, "leaky_relu": F.leaky_relu, "tanh": torch.tanh,
}

# How the pair x1 = act(x - a), x2 = act(b - x) becomes one feature (the paper's "function types").
FUNCTION_TYPES = {
    "quad1": lambda x1, x2: (x1 * x2) ** 2,
    "quad2": lambda x1, x2: x1 * x2 + x1 ** 2 + x2 ** 2,
    "sum": lambda x1, x2: x1 + x2,
    "prod": lambda x1, x2: x1 * x2,
    "sum_prod": lambda x1, x2: x1 + x2 + x1 * x2,
    "cubic1": lambda x1, x2: (x1 + x2) * (x1 ** 2 + x2 ** 2),
    "cubic2": lambda x1, x2: (x1 * x2) ** 3,
}

# Elementwise operations per feature of each function type (after x1 and x2): used by the FLOP count.
FUNCTION_TYPE_OPS = {"quad1": 2, "quad2": 5, "sum": 1, "prod": 1, "sum_prod": 3, "cubic1": 6, "cubic2": 3}


def interval_bounds(grid: int, order: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The initial intervals [a_j, b_j] of ReLU-KAN and AF-KAN: a_j = (j - k)/G, b_j = a_j + (k + 1)/G."""
    low = torch.arange(-order, grid, dtype=torch.float32) / grid
    return low, low + (order + 1) / grid


def l2_min_max(features: torch.Tensor) -> torch.Tensor:
    """L2MM: divide the whole tensor by its L2 norm, then min-max it to [0, 1] (over the whole batch)."""
    features = F.normalize(features.flatten(), p=2, dim=0).view_as(features)
    return (features - features.min()) / (features.max() - features.min())


class AFKANLayer(nn.Module):
    def __init__(self, d_in: int, d_out: int, grid: int, order: int, activation: str = "silu",
                 function: str = "quad1", l2mm: bool = True, layer_norm: bool = True) -> None:
        super().__init__()
        self.act, self.combine, self.l2mm = ACTIVATIONS[activation], FUNCTION_TYPES[function], l2mm
        low, high = interval_bounds(grid, order)
        self.low, self.high = nn.Parameter(low), nn.Parameter(high)     # shared by all inputs, trainable
        self.score = nn.Linear(grid + order, 1)                         # global attention score per input
        self.temperature = nn.Parameter(torch.tensor(math.sqrt(d_in)))  # tau, init sqrt(D)
        self.norm = nn.LayerNorm(d_in) if layer_norm else nn.Identity()
        self.weight = nn.Parameter(torch.empty(d_out, d_in))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def basis(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) -> (B, D, G + k): the combined pair act(x - a_j), act(b_j - x) for every interval."""
        x = x.unsqueeze(-1)
        features = self.combine(self.act(x - self.low), self.act(self.high - x))
        return l2_min_max(features) if self.l2mm else features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.basis(x)
        # Softmax over the D inputs (dim -2), not over the G + k functions; tau is clamped at 1 from below.
        attention = torch.softmax(self.score(features) / self.temperature.clamp(min=1.0), dim=-2)
        x = (features * attention).sum(-1)
        return F.linear(self.act(self.norm(x)), self.weight)


class LayerStack(nn.Module):
    """A network that applies its `layers` in turn (every KAN here is a stack of its own layer)."""

    layers: nn.ModuleList

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class AFKAN(LayerStack):
    def __init__(self, width: list[int], grid: int = 3, order: int = 3, activation: str = "silu",
                 function: str = "quad1", l2mm: bool = True, layer_norm: bool = True) -> None:
        super().__init__()
        self.grid, self.order, self.function = grid, order, function
        self.layers = nn.ModuleList(AFKANLayer(d_in, d_out, grid, order, activation, function, l2mm, layer_norm)
                                    for d_in, d_out in zip(width, width[1:]))


class MLP(nn.Module):
    def __init__(self, width: list[int], activation: str = "silu") -> None:
        super().__init__()
        self.act = ACTIVATIONS[activation]
        self.norms = nn.ModuleList(nn.LayerNorm(d) for d in width[:-1])
        self.linears = nn.ModuleList(nn.Linear(d_in, d_out, bias=False) for d_in, d_out in zip(width, width[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for norm, linear in zip(self.norms, self.linears):
            x = self.act(linear(norm(x)))
        return x


class ReLUKANLayer(nn.Module):
    def __init__(self, d_in: int, d_out: int, grid: int, order: int) -> None:
        super().__init__()
        self.grid, self.order = grid, order
        self.r = 4 * grid ** 2 / (order + 1) ** 2   # makes the peak of [r ReLU(x-a) ReLU(b-x)]^2 equal 1
        low, high = interval_bounds(grid, order)
        self.low = nn.Parameter(low.repeat(d_in, 1))    # (D, G + k): one set of intervals per input
        self.high = nn.Parameter(high.repeat(d_in, 1))
        self.norm = nn.LayerNorm(d_in)
        self.mix = nn.Conv2d(1, d_out, (grid + order, d_in))

    def basis(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) -> (B, D, G + k): ReLU-KAN's [r ReLU(x - a) ReLU(b - x)]^2."""
        x = x.unsqueeze(-1)
        return (F.relu(x - self.low) * F.relu(self.high - x) * self.r) ** 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.basis(self.norm(x))
        # The official layer reshapes the (B, D, G + k) tensor to (B, 1, G + k, D) without transposing.
        features = features.reshape(len(x), 1, self.grid + self.order, -1)
        return self.mix(features).reshape(len(x), -1)


class ReLUKAN(LayerStack):
    def __init__(self, width: list[int], grid: int = 3, order: int = 3) -> None:
        super().__init__()
        self.layers = nn.ModuleList(ReLUKANLayer(d_in, d_out, grid, order) for d_in, d_out in zip(width, width[1:]))


def bspline_basis(x: torch.Tensor, knots: torch.Tensor, order: int) -> torch.Tensor:
    """Cox-de Boor recursion: (B, D) inputs, (D, G + 2k + 1) knots -> (B, D, G + k) B-splines of order k."""
    x = x.unsqueeze(-1)
    bases = ((x >= knots[:, :-1]) & (x < knots[:, 1:])).to(x.dtype)
    for p in range(1, order + 1):
        left = (x - knots[:, :-(p + 1)]) / (knots[:, p:-1] - knots[:, :-(p + 1)]) * bases[..., :-1]
        right = (knots[:, p + 1:] - x) / (knots[:, p + 1:] - knots[:, 1:-p]) * bases[..., 1:]
        bases = left + right
    return bases


class BSplineKANLayer(nn.Module):
    """Efficient-KAN's layer: y = W_base SiLU(x) + sum_j (c_ij s_ij) B_j(x_i), knots uniform on [-1, 1]."""

    def __init__(self, d_in: int, d_out: int, grid: int, order: int, grid_range: tuple[float, float] = (-1.0, 1.0),
                 scale_noise: float = 0.1) -> None:
        super().__init__()
        self.order = order
        step = (grid_range[1] - grid_range[0]) / grid
        knots = torch.arange(-order, grid + order + 1, dtype=torch.float32) * step + grid_range[0]
        self.register_buffer("knots", knots.expand(d_in, -1).contiguous())
        self.base_weight = nn.Parameter(torch.empty(d_out, d_in))
        self.spline_weight = nn.Parameter(torch.empty(d_out, d_in, grid + order))
        self.spline_scaler = nn.Parameter(torch.empty(d_out, d_in))
        nn.init.kaiming_uniform_(self.base_weight, a=math.sqrt(5))
        nn.init.kaiming_uniform_(self.spline_scaler, a=math.sqrt(5))
        with torch.no_grad():
            # Efficient-KAN starts the splines as the least-squares fit of small noise at the grid points.
            points = knots[order:-order].unsqueeze(1).expand(-1, d_in)
            noise = (torch.rand(grid + 1, d_in, d_out) - 0.5) * scale_noise / grid
            design = bspline_basis(points, self.knots, order).transpose(0, 1)        # (D, G + 1, G + k)
            self.spline_weight.copy_(torch.linalg.lstsq(design, noise.transpose(0, 1)).solution.permute(2, 0, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        splines = bspline_basis(x, self.knots, self.order).flatten(1)
        weights = (self.spline_weight * self.spline_scaler.unsqueeze(-1)).flatten(1)
        return F.linear(F.silu(x), self.base_weight) + F.linear(splines, weights)


class BSplineKAN(LayerStack):
    def __init__(self, width: list[int], grid: int = 5, order: int = 3) -> None:
        super().__init__()
        self.layers = nn.ModuleList(BSplineKANLayer(d_in, d_out, grid, order) for d_in, d_out in zip(width, width[1:]))


class FastKANLayer(nn.Module):
    """FastKAN: Gaussian RBFs exp(-((x - c_j)/h)^2) on a LayerNorm-ed input plus a SiLU base branch."""

    def __init__(self, d_in: int, d_out: int, centres: int = 8, low: float = -2.0, high: float = 2.0) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_in)
        self.register_buffer("centres", torch.linspace(low, high, centres))
        self.width = (high - low) / (centres - 1)
        self.spline = nn.Linear(d_in * centres, d_out, bias=False)
        nn.init.trunc_normal_(self.spline.weight, std=0.1)
        self.base = nn.Linear(d_in, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rbf = torch.exp(-((self.norm(x).unsqueeze(-1) - self.centres) / self.width) ** 2)
        return self.spline(rbf.flatten(1)) + self.base(F.silu(x))


class FastKAN(LayerStack):
    def __init__(self, width: list[int], centres: int = 8) -> None:
        super().__init__()
        self.layers = nn.ModuleList(FastKANLayer(d_in, d_out, centres) for d_in, d_out in zip(width, width[1:]))


# Each method: the network and its settings (the AF-KAN ablations change one thing of the full model).
METHODS = {
    "af_kan": ("af_kan", {}),
    "mlp": ("mlp", {}),
    "relu_kan": ("relu_kan", {}),
    "bspline_kan": ("bspline_kan", {}),
    "fast_kan": ("fast_kan", {}),
    "af_kan_relu": ("af_kan", {"activation": "relu"}),
    "af_kan_no_l2mm": ("af_kan", {"l2mm": False}),
    "af_kan_no_layernorm": ("af_kan", {"layer_norm": False}),
}


def build_model(method: str, width: list[int], model_cfg: dict, overrides: dict | None = None) -> nn.Module:
    """The network of ``method`` with the widths and the sizes of ``model_cfg`` (``overrides`` change AF-KAN's
    activation, function type, grid or order for the ablations)."""
    kind, changes = METHODS[method]
    if kind == "af_kan":
        settings = {**model_cfg["af_kan"], **changes, **(overrides or {})}
        return AFKAN(width, **settings)
    if kind == "mlp":
        return MLP(width, model_cfg["mlp"]["activation"])
    if kind == "relu_kan":
        return ReLUKAN(width, **model_cfg["relu_kan"])
    if kind == "bspline_kan":
        return BSplineKAN(width, **model_cfg["bspline_kan"])
    return FastKAN(width, **model_cfg["fast_kan"])


def used_parameters(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> int:
    """Parameters that receive a gradient from one cross-entropy step (All-KAN's "used parameters")."""
    model.zero_grad()
    F.cross_entropy(model(inputs), targets).backward()
    used = sum(p.numel() for p in model.parameters() if p.grad is not None)
    model.zero_grad()
    return used


def flops_per_sample(model: nn.Module) -> int:
    """Floating-point operations of one forward pass of one sample, counted by hand from the layer sizes.

    A multiply-add counts 2; an elementwise operation or activation 1. Per layer (D in, O out, F = G + k):
    AF-KAN: 2 subtractions + 2 activations + the function type's ops per feature (D F each), L2MM 5 D F
    (square-sum, divide, subtract, divide, min/max), the attention score 2 D F, softmax 3 D, weighted sum
    2 D F, LayerNorm 5 D, activation D, W 2 D O. The other networks are counted the same way.
    """
    total = 0
    for layer in model.modules():
        if isinstance(layer, AFKANLayer):
            d_out, d_in = layer.weight.shape
            f = layer.low.numel()
            function = next(name for name, fn in FUNCTION_TYPES.items() if fn is layer.combine)
            per_feature = 4 + FUNCTION_TYPE_OPS[function] + (5 if layer.l2mm else 0) + 2 + 2
            norm = 5 * d_in if isinstance(layer.norm, nn.LayerNorm) else 0
            total += d_in * f * per_feature + 3 * d_in + norm + d_in + 2 * d_in * d_out
        elif isinstance(layer, ReLUKANLayer):
            d_in, f = layer.low.shape
            d_out = layer.mix.out_channels
            total += 5 * d_in + d_in * f * 6 + 2 * d_in * f * d_out + d_out
        elif isinstance(layer, BSplineKANLayer):
            d_out, d_in, f = layer.spline_weight.shape
            k = layer.order
            recursion = sum(9 * (f + k - p) for p in range(1, k + 1)) + 2 * (f + k)
            total += d_in + 2 * d_in * d_out + d_in * recursion + d_out * d_in * f + 2 * d_in * f * d_out + d_out
        elif isinstance(layer, FastKANLayer):
            d_out, d_in = layer.base.weight.shape
            f = layer.centres.numel()
            total += 5 * d_in + 4 * d_in * f + 2 * d_in * f * d_out + d_in + 2 * d_in * d_out + 2 * d_out
        elif isinstance(layer, MLP):
            for linear in layer.linears:
                d_out, d_in = linear.weight.shape
                total += 5 * d_in + 2 * d_in * d_out + d_out
    return total


def matmul_flops(model: nn.Module) -> int:
    """The multiply-add part of ``flops_per_sample`` alone (what torch's FlopCounterMode counts)."""
    total = 0
    for layer in model.modules():
        if isinstance(layer, AFKANLayer):
            d_out, d_in = layer.weight.shape
            total += 2 * d_in * layer.low.numel() + 2 * d_in * d_out
        elif isinstance(layer, ReLUKANLayer):
            d_in, f = layer.low.shape
            total += 2 * d_in * f * layer.mix.out_channels
        elif isinstance(layer, BSplineKANLayer):
            d_out, d_in, f = layer.spline_weight.shape
            total += 2 * d_in * d_out + 2 * d_in * f * d_out
        elif isinstance(layer, FastKANLayer):
            d_out, d_in = layer.base.weight.shape
            total += 2 * d_in * layer.centres.numel() * d_out + 2 * d_in * d_out
        elif isinstance(layer, MLP):
            total += sum(2 * linear.weight.numel() for linear in layer.linears)
    return total
