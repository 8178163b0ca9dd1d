"""Normalization-activation layers, written from the paper's equations and the official TF code's semantics.

EvoNorm-B0:  y = x / max(sqrt(var_{N,H,W}(x) + eps), v * x + sqrt(var_{H,W}(x) + eps)) * gamma + beta
EvoNorm-S0:  y = x * sigmoid(v * x) / sqrt(var_{H,W,C/g}(x) + eps) * gamma + beta
All variances are population (biased) variances, eps sits inside the square root, nothing is centred.
B0 keeps a moving batch variance (initialised to 1, decay 0.9, i.e. momentum 0.1, updated with the biased
batch variance as the official ``_batch_std`` does) and uses it in eval mode; its instance term is always the
sample's own. With ``nonlinearity=False`` both layers are the affine map x * gamma + beta and nothing else
(the official "no nonlinearity" path: no normalisation at all).

``workers`` > 1 emulates the paper's data-parallel training (batch statistics are per worker: a global batch of
1024 over 8 workers normalises over 128 samples) on one device: in training, the batch-dependent layers (BN,
B0's batch term) compute their statistics over each of ``workers`` equal consecutive chunks of the batch, and
each chunk updates the moving statistic in turn. ``workers`` = 1 is ordinary single-device training.
"""

import torch
from torch import nn

EPS = 1e-5
DECAY = 0.9  # the official MOVING_AVERAGE_DECAY; PyTorch's momentum = 1 - decay


def group_count(channels: int, groups: int) -> int:
    """The official fallback: the largest g <= groups that divides the channel count (32, 31, ...)."""
    while groups > 1 and channels % groups:
        groups -= 1
    return max(groups, 1)


def instance_std(x: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    return torch.sqrt(x.var(dim=(2, 3), unbiased=False, keepdim=True) + eps)


def group_std(x: torch.Tensor, groups: int, eps: float = EPS) -> torch.Tensor:
    n, c, h, w = x.shape
    var = x.reshape(n, groups, c // groups, h, w).var(dim=(2, 3, 4), unbiased=False, keepdim=True)
    return torch.sqrt(var + eps).expand(n, groups, c // groups, h, w).reshape(n, c, h, w)


def worker_chunks(x: torch.Tensor, workers: int) -> torch.Tensor:
    """(N, C, H, W) -> (workers, N / workers, C, H, W): the per-worker batches of a data-parallel step."""
    if len(x) % workers:
        raise ValueError(f"batch of {len(x)} does not split over {workers} workers; use a multiple of {workers}")
    return x.reshape(workers, len(x) // workers, *x.shape[1:])


class _Affine(nn.Module):
    def __init__(self, channels: int, nonlinearity: bool, zero_init: bool) -> None:
        super().__init__()
        self.nonlinearity = nonlinearity
        shape = (1, channels, 1, 1)
        self.gamma = nn.Parameter(torch.zeros(shape) if zero_init else torch.ones(shape))
        self.beta = nn.Parameter(torch.zeros(shape))
        self.v = nn.Parameter(torch.ones(shape)) if nonlinearity else None


class EvoNormB0(_Affine):
    def __init__(self, channels: int, nonlinearity: bool = True, zero_init: bool = False, eps: float = EPS,
                 decay: float = DECAY, workers: int = 1) -> None:
        super().__init__(channels, nonlinearity, zero_init)
        self.eps, self.decay, self.workers = eps, decay, workers
        self.register_buffer("moving_variance", torch.ones(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.nonlinearity:
            return x * self.gamma + self.beta
        if self.training:
            chunks = worker_chunks(x, self.workers)
            variance = chunks.var(dim=(1, 3, 4), unbiased=False, keepdim=True)  # (workers, 1, C, 1, 1)
            with torch.no_grad():
                for chunk_variance in variance.detach().to(self.moving_variance.dtype):
                    self.moving_variance.sub_((self.moving_variance - chunk_variance) * (1 - self.decay))
            variance = variance.expand(-1, chunks.shape[1], -1, -1, -1).reshape(len(x), -1, 1, 1)
        else:
            variance = self.moving_variance
        left = torch.sqrt(variance + self.eps)
        right = self.v * x + instance_std(x, self.eps)
        return x / torch.maximum(left, right) * self.gamma + self.beta


class EvoNormS0(_Affine):
    def __init__(self, channels: int, nonlinearity: bool = True, zero_init: bool = False, eps: float = EPS,
                 groups: int = 32) -> None:
        super().__init__(channels, nonlinearity, zero_init)
        self.eps, self.groups = eps, group_count(channels, groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.nonlinearity:
            return x * self.gamma + self.beta
        return x * torch.sigmoid(self.v * x) / group_std(x, self.groups, self.eps) * self.gamma + self.beta


class BNReLU(nn.Module):
    """BatchNorm (momentum 0.1 = decay 0.9, eps 1e-5; moving statistics at eval) then ReLU."""

    def __init__(self, channels: int, nonlinearity: bool = True, zero_init: bool = False, eps: float = EPS,
                 workers: int = 1) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, eps=eps, momentum=1 - DECAY)
        if zero_init:
            nn.init.zeros_(self.norm.weight)
        self.nonlinearity, self.workers = nonlinearity, workers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.workers > 1:  # each virtual worker normalises its own chunk
            x = torch.cat([self.norm(chunk) for chunk in worker_chunks(x, self.workers)])
        else:
            x = self.norm(x)
        return torch.relu(x) if self.nonlinearity else x


class GNReLU(nn.Module):
    """GroupNorm (mean-subtracting, batch-independent) then ReLU: the paper's batch-independent baseline."""

    def __init__(self, channels: int, nonlinearity: bool = True, zero_init: bool = False, eps: float = EPS,
                 groups: int = 32) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(group_count(channels, groups), channels, eps=eps)
        if zero_init:
            nn.init.zeros_(self.norm.weight)
        self.nonlinearity = nonlinearity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x)
        return torch.relu(x) if self.nonlinearity else x


LAYERS = ("bn_relu", "gn_relu", "evonorm_b0", "evonorm_s0")


def norm_act(name: str, channels: int, groups: int, nonlinearity: bool = True, zero_init: bool = False,
             workers: int = 1) -> nn.Module:
    if name == "bn_relu":
        return BNReLU(channels, nonlinearity, zero_init, workers=workers)
    if name == "gn_relu":
        return GNReLU(channels, nonlinearity, zero_init, groups=groups)
    if name == "evonorm_b0":
        return EvoNormB0(channels, nonlinearity, zero_init, workers=workers)
    if name == "evonorm_s0":
        return EvoNormS0(channels, nonlinearity, zero_init, groups=groups)
    raise ValueError(f"unknown norm-act layer {name!r}; choose one of {LAYERS}")


def is_norm_parameter(module: nn.Module) -> bool:
    """Parameters the official code leaves out of weight decay ('batch_normalization' and 'evonorm' scopes)."""
    return isinstance(module, EvoNormB0 | EvoNormS0 | nn.BatchNorm2d | nn.GroupNorm)
