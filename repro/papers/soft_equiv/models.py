"""The networks of the comparison, all on EMLP's block (linear -> bilinear + residual -> gated nonlinearity).

- ``emlp``: weights hard-projected onto the equivariant maps of one group (EMLP(O(3)); EMLP(O(2)xy) is the
  oracle that is told which symmetry holds).
- ``rpp``: residual pathway prior, W = P_O(3) w_equiv + w_basic, with a strong L2 prior on w_basic.
- ``per``: free weights and one projection regulariser per candidate group,
  R_i = sum over layers of 1/2 ||W - P_i W||^2 + 1/2 ||b - P_i b||^2, loss = MSE + sum_i lambda_i R_i.
- ``mlp``: a plain swish MLP of the same width.
"""

import math

import torch
from torch import nn

from repro.papers.soft_equiv.reps import TensorRep, WeightProjector, bias_projector

# The residual pathway and the non-equivariant swish path of RPP's gates start at this scale.
RPP_SCALE = 1e-3
BILINEAR_SCALE = 0.1


def swish(x: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(x) * x


class TensorLinear(nn.Module):
    """A linear map between tensor representations.

    kind "free": W = w (MLP-like; PER); "projected": W = P w, b = P b (EMLP); "residual":
    W = P w_equiv + w_basic (RPP). ``groups``: the one group of the last two, or PER's candidates (whose
    projectors only enter its regulariser). The projectors are constants built on ``device``.
    """

    def __init__(self, rep_in: TensorRep, rep_out: TensorRep, kind: str, groups: list[str], device: str) -> None:
        super().__init__()
        self.rep_in, self.rep_out, self.kind = rep_in, rep_out, kind
        self.weight_projector = WeightProjector(rep_out, rep_in, groups, device)
        self.bias_projector = bias_projector(rep_out, groups, device)
        self.w = nn.Parameter(nn.init.orthogonal_(torch.empty(rep_out.size, rep_in.size)))
        self.b = nn.Parameter(torch.rand(rep_out.size) / math.sqrt(rep_out.size))
        if kind == "residual":
            self.w_basic = nn.Parameter(self.w.detach() * RPP_SCALE)
            self.b_basic = nn.Parameter(self.b.detach() * RPP_SCALE)

    def weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.kind == "free":
            return self.w, self.b
        w = self.weight_projector(self.w)[0]
        b = self.bias_projector[0] @ self.b
        if self.kind == "residual":
            return w + self.w_basic, b + self.b_basic
        return w, b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, b = self.weights()
        return x @ w.T + b


def _parts(x: torch.Tensor, rep: TensorRep) -> list[torch.Tensor]:
    """The channels of each rank r: (B, count_r, 3^r)."""
    sizes = [c * d for c, d in zip(rep.counts, rep.dims)]
    return [part.reshape(len(x), c, d) for part, c, d in zip(torch.split(x, sizes, dim=-1), rep.counts, rep.dims)]


class BiLinear(nn.Module):
    """EMLP's equivariant bilinear layer on a gated representation: x -> 0.1 W(x) x. Every block of W(x)
    from rank-b to rank-a channels transforms as a rank-(a+b) tensor; where x has non-scalar channels of
    rank c = a + b, each copy of that block is a learned combination of (at most 3^c of) those channels,
    read as 3^a x 3^b matrices; other blocks are zero. Such a W(x) transforms like the weights of an
    equivariant map, so the layer is O(3)-equivariant."""

    def __init__(self, rep: TensorRep) -> None:
        super().__init__()
        self.rep = rep
        top = len(rep.counts) - 1
        self.pairs = [(a, b) for a in range(top + 1) for b in range(top + 1)
                      if 1 <= a + b <= top and rep.counts[a + b] > 0 and rep.counts[a] > 0 and rep.counts[b] > 0]
        self.sources = {c: min(rep.counts[c], 3 ** c) for c in range(1, top + 1)}  # EMLP: min(count, 3^rank)
        self.coefficients = nn.ParameterList([
            nn.Parameter(torch.randn(rep.counts[a], rep.counts[b] * self.sources[a + b])) for a, b in self.pairs])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = _parts(x, self.rep)
        out = [torch.zeros_like(p) for p in parts]
        for (a, b), coefficients in zip(self.pairs, self.coefficients):
            n = self.sources[a + b]
            w = parts[a + b][:, :n].reshape(len(x), n * 3 ** a, 3 ** b)     # the x-channels filling W(x)
            applied = torch.bmm(w, parts[b].transpose(1, 2))                # (B, n 3^a, count_b)
            applied = applied.unflatten(1, (n, 3 ** a)).permute(0, 3, 1, 2)  # (B, count_b, n, 3^a)
            out[a] = out[a] + coefficients @ applied.flatten(1, 2)           # (count_a, count_b n) @ (B, ., 3^a)
        return BILINEAR_SCALE * torch.cat([o.flatten(1) for o in out], dim=1)


class GatedNonlinearity(nn.Module):
    """Scalars pass through swish; each non-scalar channel is scaled by the sigmoid of its gate scalar.
    With ``rpp`` (the reference's default for RPP and PER) a learned, L2-penalised non-equivariant path
    w_gated * swish(.) on every channel is added."""

    def __init__(self, rep: TensorRep, rpp: bool) -> None:
        super().__init__()
        self.rep = rep
        self.w_gated = nn.Parameter(torch.full((rep.size,), RPP_SCALE)) if rpp else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = _parts(x, self.rep.gated())
        own = parts[0][..., 0][:, :self.rep.counts[0]]
        gates = torch.sigmoid(parts[0][..., 0][:, self.rep.counts[0]:]).split(list(self.rep.counts[1:]), dim=1)
        values = torch.cat([own] + [p.flatten(1) for p in parts[1:]], dim=1)
        out = torch.cat([swish(own)] + [(g[..., None] * p).flatten(1) for g, p in zip(gates, parts[1:])], dim=1)
        if self.w_gated is not None:
            out = out + self.w_gated * swish(values)
        return out


class Block(nn.Module):
    def __init__(self, rep_in: TensorRep, rep_out: TensorRep, kind: str, groups: list[str], rpp_gates: bool,
                 device: str) -> None:
        super().__init__()
        self.linear = TensorLinear(rep_in, rep_out.gated(), kind, groups, device)
        self.bilinear = BiLinear(rep_out.gated())
        self.nonlinearity = GatedNonlinearity(rep_out, rpp_gates)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lin = self.linear(x)
        return self.nonlinearity(self.bilinear(lin) + lin)


class TensorNet(nn.Module):
    """``layers`` EMLP blocks on the hidden representation, then a linear map to the output."""

    def __init__(self, rep_in: TensorRep, hidden: TensorRep, rep_out: TensorRep, layers: int, kind: str,
                 groups: list[str], rpp_gates: bool, device: str) -> None:
        super().__init__()
        reps = [rep_in] + [hidden] * layers
        self.blocks = nn.Sequential(*[Block(a, b, kind, groups, rpp_gates, device) for a, b in zip(reps, reps[1:])])
        self.head = TensorLinear(hidden, rep_out, kind, groups, device)

    def linears(self) -> list[TensorLinear]:
        return [block.linear for block in self.blocks] + [self.head]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(x))


class MLP(nn.Sequential):
    """The reference's MLP baseline: swish layers of the hidden representation's width."""

    def __init__(self, size_in: int, width: int, size_out: int, layers: int) -> None:
        sizes = [size_in] + [width] * layers
        super().__init__(*[m for a, b in zip(sizes, sizes[1:]) for m in (nn.Linear(a, b), nn.SiLU())],
                         nn.Linear(width, size_out))


class PER(TensorNet):
    """Free weights plus one projection regulariser per candidate group; the weights lambda_i live in a
    buffer so that a resumed training keeps the tuned values."""

    def __init__(self, rep_in: TensorRep, hidden: TensorRep, rep_out: TensorRep, layers: int, groups: list[str],
                 initial_weights: list[float], device: str) -> None:
        super().__init__(rep_in, hidden, rep_out, layers, "free", groups, True, device)
        self.groups = groups
        self.register_buffer("lambdas", torch.tensor(initial_weights, dtype=torch.float32, device=device))

    def regularisers(self) -> torch.Tensor:
        """R_i for every candidate group i: (groups,)."""
        total = 0.0
        for linear in self.linears():
            pb = linear.bias_projector @ linear.b
            total = total + linear.weight_projector.residuals(linear.w) + 0.5 * ((linear.b - pb) ** 2).sum(1)
        return total

    @torch.no_grad()
    def retune(self, power: float) -> None:
        """The reference's automatic tuning: lambda_i <- lambda_i (min_j R_j / R_i)^power over the groups
        with a non-zero weight, so that the groups the data respects (small R) keep the strongest pull."""
        r = self.regularisers()
        active = self.lambdas != 0
        smallest = r[active].min()
        self.lambdas[active] = self.lambdas[active] * (smallest / r[active]) ** power


def squared_weights(model: TensorNet, names: tuple[str, ...]) -> torch.Tensor:
    """Sum of squares of the named parameters (e.g. "w_basic", "w_gated") over the whole network."""
    return sum((p ** 2).sum() for n, p in model.named_parameters() if n.rsplit(".", 1)[-1] in names)
