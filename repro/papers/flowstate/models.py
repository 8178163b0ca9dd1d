"""FlowState at small size: causal RevIN, a scale-aware S5 encoder and a functional-basis (Legendre) decoder.

Time is measured in model units ("hours" of the training rate). A series with seasonal period m steps gets
the scale factor s = 24 / m: one of its steps lasts s model units. s enters three places (paper Sec. 3,
`FlowStateS5Block.get_discretized` and `FlowStateFunctionalBasisDecoder.get_t` in the official code):
(i) every S5 layer's step Delta s, (ii) the decoder's time grid, (iii) the number of output steps of one
decoder patch, floor(patch / s).
"""

import numpy as np
import torch
from torch import nn


def hippo_n(block: int) -> np.ndarray:
    """HiPPO-N (the normal part of HiPPO-LegS), (block, block):

    A = -I/2 + triu(-n n^T / 2) - tril(-n n^T / 2), n_k = sqrt(2 k + 3), k = 0..block-1.

    The diagonals of triu and tril cancel, so A = -I/2 + a skew-symmetric matrix: every eigenvalue has
    real part exactly -1/2. The index starts at sqrt(3) (n_k = sqrt(2 (k+1) + 1)) as in the official code.
    """
    n = np.sqrt(2 * np.arange(1, block + 1) + 1.0)
    outer = -np.outer(n, n) / 2
    return -0.5 * np.eye(block) + np.triu(outer) - np.tril(outer)


class ScaledSSM(nn.Module):
    """Diagonal S5 layer with a scalable step: for a sequence u (B, L, H) and scale factors s (B,),

        x_k = Lambda_bar x_{k-1} + B_bar u_k,   y_k = Re(C x_k) + D u_k,
        Lambda_bar = exp(Lambda Delta s),       B_bar = (Lambda_bar - 1) / Lambda B   (zero-order hold),

    with P complex states. Lambda starts at the eigenvalues of block-diagonal HiPPO-N (V its eigenvectors;
    B = V^-1 B0 and C = C0 V for complex Gaussian B0, C0), log Delta ~ U[log 1e-3, log 1e-1] per state.
    The scan is a causal FFT convolution with the kernel Lambda_bar^k, k = 0..L-1.
    """

    def __init__(self, width: int, states: int, block: int, rng: np.random.Generator) -> None:
        super().__init__()
        if states % block:
            raise ValueError(f"model.states={states} must be a multiple of model.block={block}")
        a = np.kron(np.eye(states // block), hippo_n(block))
        lam, v = np.linalg.eig(a)
        v_inv = np.linalg.inv(v)

        def gaussian(rows: int, cols: int, scale: float) -> np.ndarray:
            return scale * (rng.standard_normal((rows, cols)) + 1j * rng.standard_normal((rows, cols)))

        b = v_inv @ gaussian(states, width, 0.5 / np.sqrt(width))
        c = gaussian(width, states, 0.5 / np.sqrt(states)) @ v

        def param(x: np.ndarray) -> nn.Parameter:
            return nn.Parameter(torch.as_tensor(x, dtype=torch.float32))

        self.log_neg_re = param(np.log(-lam.real))
        self.im = param(lam.imag)
        self.b = param(np.stack([b.real, b.imag], -1))          # (P, H, 2)
        self.c = param(np.stack([c.real, c.imag], -1))          # (H, P, 2)
        self.d = param(rng.standard_normal(width))
        self.log_delta = param(rng.uniform(np.log(1e-3), np.log(1e-1), states))

    def eigenvalues(self) -> torch.Tensor:
        return torch.complex(-self.log_neg_re.exp(), self.im)

    def forward(self, u: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """u (B, L, H) real, s (B,) or (1,) (one factor shared by the batch) -> y (B, L, H).

        The states are kept time-last, (B, P, L), so both FFTs run over contiguous memory (about 20% faster
        per training step than time-second on one CPU thread; the arithmetic is the same)."""
        length = u.shape[1]
        lam = self.eigenvalues()                                                  # (P,)
        log_lam_bar = lam * (self.log_delta.exp() * s[:, None])                   # (S, P): Lambda Delta s
        b_bar = ((log_lam_bar.exp() - 1) / lam)[..., None] * torch.view_as_complex(self.b)   # (S, P, H)
        u_t = u.transpose(1, 2)                                                   # (B, H, L)
        bu = torch.complex(b_bar.real @ u_t, b_bar.imag @ u_t)                    # (B, P, L), u real
        steps = torch.arange(length, device=u.device, dtype=u.dtype)
        kernel = torch.exp(log_lam_bar[..., None] * steps)                        # (S, P, L): Lambda_bar^k
        n = 2 * length
        x = torch.fft.ifft(torch.fft.fft(bu, n=n) * torch.fft.fft(kernel, n=n), n=n)[..., :length]   # (B, P, L)
        c = torch.view_as_complex(self.c)                                         # (H, P)
        return (c.real @ x.real - c.imag @ x.imag).transpose(1, 2) + self.d * u


class EncoderLayer(nn.Module):
    """x + LayerNorm(g * sigmoid(W g)), g = SELU(S5(x)): the official layer (SSM, self-gate, norm, residual)."""

    def __init__(self, width: int, states: int, block: int, rng: np.random.Generator) -> None:
        super().__init__()
        self.ssm = ScaledSSM(width, states, block, rng)
        self.gate = nn.Linear(width, width)
        self.norm = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        g = nn.functional.selu(self.ssm(x, s))
        return x + self.norm(g * torch.sigmoid(self.gate(g)))


def causal_stats(x: torch.Tensor, observed: torch.Tensor | None = None, eps: float = 1e-5
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Causal RevIN statistics of x (B, L): running mean and std at every position, each (B, L).

    With n_t = sum_{k<=t} o_k the number of observed steps so far (o = ``observed``, 1 observed and 0
    missing; all ones when None; n_t = 0 counts as 1), and x_k = 0 at missing steps:
    mean_t = sum_{k<=t} x_k / n_t; std_t = sqrt(max(sum_{k<=t} o_k (x_k - mean_k)^2 / n_t, eps)), each x_k
    centred by its own running mean (the official FlowStateCausalRevIN). Position t uses only the prefix,
    so every position can forecast in parallel during training; a missing step leaves both unchanged.
    """
    if observed is None:
        observed = torch.ones_like(x)
    count = observed.cumsum(1)
    count = torch.where(count == 0, torch.ones_like(count), count)
    mean = x.cumsum(1) / count
    var = (((x - mean) * observed).pow(2).cumsum(1) / count).clamp(min=eps)
    return mean.detach(), var.sqrt().detach()


def with_missing(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The official missing-value input: NaNs become 0, and the observed indicator (1 - mask) comes along."""
    missing = values.isnan()
    return torch.where(missing, torch.zeros_like(values), values), (~missing).to(values.dtype)


def legendre_basis(degree: int, t: torch.Tensor) -> torch.Tensor:
    """P_0..P_{degree-1} at t (any shape), (..., degree), by the three-term recurrence
    (n+1) P_{n+1}(t) = (2n+1) t P_n(t) - n P_{n-1}(t)."""
    values = [torch.ones_like(t), t]
    for n in range(1, degree - 1):
        values.append(((2 * n + 1) * t * values[n] - n * values[n - 1]) / (n + 1))
    return torch.stack(values[:degree], -1)


def fourier_basis(degree: int, t: torch.Tensor) -> torch.Tensor:
    """1, sin(2 pi t), cos(2 pi t), sin(4 pi t), cos(4 pi t), ... at t (any shape), (..., degree); degree odd."""
    n = torch.arange(1, degree // 2 + 1, dtype=t.dtype, device=t.device)
    angles = 2 * torch.pi * t[..., None] * n
    pairs = torch.stack([angles.sin(), angles.cos()], -1).flatten(-2)
    return torch.cat([torch.ones_like(t)[..., None], pairs], -1)


# decoder bases of the official code: name -> (grid range of one patch, basis function)
BASES = {"legs": ((-1.0, 0.95), legendre_basis), "hlegs": ((0.0, 0.95), legendre_basis),
         "fourier": ((0.0, 1.0), fourier_basis)}


def patch_steps(patch: float, s: float) -> int:
    """Output steps of one decoder patch at scale s: floor(patch / s) (1e-6 guards 48 / (24/52) = 103.99..)."""
    return int(patch / s + 1e-6)


def decoder_grid(s: torch.Tensor, steps: int, patch: float, grid_range: tuple[float, float] = (-1.0, 0.95)
                 ) -> torch.Tensor:
    """Decoder times of output steps j = 1..steps for scales s (B,): t_j = lo + j s (hi - lo) / patch, (B, steps).

    One step of a series lasts s model units, so step j sits at model time j s within the patch."""
    lo, hi = grid_range
    j = torch.arange(1, steps + 1, dtype=s.dtype, device=s.device)
    return (lo + s[:, None] * j * (hi - lo) / patch).clamp(min=lo)


class FlowState(nn.Module):
    """Values (B, L) (NaN = missing) and scale factors s -> quantile forecasts (B, L, steps, Q) from every
    position.

    Input (official with_missing): NaNs become 0 and a missing-mask channel is appended; causal RevIN
    normalises position t by the statistics of its observed prefix and sets missing steps back to 0;
    Linear(2 -> W) embeds (value, mask); encoder layers run with step Delta s; the functional basis decoder
    maps each position's output to `degree` coefficients per quantile, evaluated on the grid of the next
    floor(patch / s) steps and divided by 4 (official scaling). basis: legs (Legendre on [-1, 0.95]), hlegs
    (Legendre on [0, 0.95]), fourier, or linear (the ablation: a plain Linear(W -> patch x Q) head with a
    fixed number of steps, blind to s). Forecasts stay in normalised units; `forecast` denormalises.
    """

    def __init__(self, width: int, states: int, block: int, layers: int, degree: int, quantiles: int,
                 patch: float, seed: int, basis: str = "legs") -> None:
        super().__init__()
        if basis not in (*BASES, "linear"):
            raise ValueError(f"unknown decoder basis {basis!r}; choose one of {[*BASES, 'linear']}")
        if basis == "fourier" and degree % 2 == 0:
            raise ValueError(f"the Fourier decoder needs an odd model.degree, got {degree}")
        rng = np.random.default_rng(seed)
        torch.manual_seed(seed)
        self.degree, self.quantiles, self.patch, self.basis = degree, quantiles, patch, basis
        self.embed = nn.Linear(2, width)                  # (normalised value, missing mask)
        self.layers = nn.ModuleList(EncoderLayer(width, states, block, rng) for _ in range(layers))
        outputs = patch_steps(patch, 1.0) if basis == "linear" else degree
        self.head = nn.Linear(width, outputs * quantiles)

    def max_steps(self, s: float) -> int:
        """Steps of one forecast: floor(patch / s) for a functional basis, fixed for the linear head."""
        return patch_steps(self.patch, 1.0 if self.basis == "linear" else s)

    def normalised_forecasts(self, values: torch.Tensor, s: torch.Tensor, steps: int,
                             first: int = 0) -> torch.Tensor:
        """Forecasts (B, L - first, steps, Q) of the next `steps` steps from positions first..L-1, in the
        units of each position's causal RevIN statistics (`causal_stats` of the observed prefix)."""
        s = s.to(values.dtype)
        x, observed = with_missing(values)
        mean, std = causal_stats(x, observed)
        h = self.embed(torch.stack([(x - mean) / std * observed, 1 - observed], -1))
        for layer in self.layers:
            h = layer(h, s)
        out = self.head(h[:, first:]).unflatten(-1, (self.quantiles, -1))                 # (B, L', Q, N)
        if self.basis == "linear":
            return out[..., :steps].transpose(-1, -2)
        grid_range, basis = BASES[self.basis]
        functions = basis(self.degree, decoder_grid(s, steps, self.patch, grid_range)) / 4  # (S, steps, N)
        return torch.einsum("blqn,bjn->bljq", out, functions)

    def forecast(self, context: torch.Tensor, s: float, horizon: int) -> torch.Tensor:
        """Quantile forecasts (B, horizon, Q) after the context (B, L) (NaN = missing).

        Horizons beyond one patch (fl = max_steps(s) steps) follow the official multi-patch inference:
        horizon - fl missing steps are appended, every position from the last observed one on forecasts
        a patch, and step j (1-based) is read from position p = min(fl floor((j-1) / fl), horizon - fl)
        (the official `_combine_cpm_predictions`; its index arithmetic drops steps when
        horizon - fl + 1 is a multiple of fl, a case this rule covers). Missing steps leave the causal RevIN
        statistics unchanged, so every position denormalises with those of the last observed step."""
        fl = self.max_steps(s)
        masked = max(0, horizon - fl)
        nan = torch.full((context.shape[0], masked), torch.nan, dtype=context.dtype, device=context.device)
        scale = torch.tensor([float(s)], dtype=context.dtype, device=context.device)
        z = self.normalised_forecasts(torch.cat([context, nan], 1), scale, fl, first=context.shape[1] - 1)
        j = torch.arange(horizon, device=context.device)
        position = torch.clamp(fl * (j // fl), max=masked)
        z = z[:, position, j - position]                                                  # (B, horizon, Q)
        mean, std = causal_stats(*with_missing(context))
        return z * std[:, -1, None, None] + mean[:, -1, None, None]


class MLP(nn.Module):
    """Fixed-rate baseline: context (B, 256) normalised by its mean and std -> the next 48 steps."""

    def __init__(self, context: int, horizon: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(context, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                                 nn.Linear(hidden, horizon))

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        mean, std = context.mean(1, keepdim=True), context.std(1, keepdim=True).clamp(min=1e-5)
        return self.net((context - mean) / std) * std + mean
