"""OLinear and its ablations: OrthoTrans (Q from the training split), NormLin token mixing, RLinear.

Shapes: B batch, T lookback, tau horizon, N channels (tokens), D embedding size, d = d_model.
"""

import numpy as np
import scipy.fft
import torch
from torch import nn

from repro.core.forecasting import sliding_windows

TRANSFORMS = ("ortho", "identity", "dct")
MIXERS = ("normlin", "attention")


def ortho_basis(train: np.ndarray, length: int) -> np.ndarray:
    """OrthoTrans Q (length x length, eigenvectors as rows, eigenvalues decreasing).

    For each channel, the lag matrix of all length-`length` windows of the training split gives a
    covariance C; its Pearson form D^-1/2 C D^-1/2 (symmetric; the repository's notebook divides
    column-wise) is averaged over channels and diagonalised with eigh.
    """
    windows, _ = sliding_windows(train, length, 0)                      # (M, length, N)
    correlations = []
    for channel in range(train.shape[1]):
        c = np.cov(windows[:, :, channel], rowvar=False)
        scale = 1 / np.sqrt(np.diag(c))
        correlations.append(c * scale[:, None] * scale[None, :])
    _, vectors = np.linalg.eigh(np.mean(correlations, axis=0))
    return vectors[:, ::-1].T.copy()


def basis(kind: str, train: np.ndarray, length: int) -> np.ndarray:
    if kind == "ortho":
        return ortho_basis(train, length)
    if kind == "identity":
        return np.eye(length)
    if kind == "dct":
        return scipy.fft.dct(np.eye(length), type=2, norm="ortho", axis=0)
    raise ValueError(f"unknown transform {kind!r}; choose from {TRANSFORMS}")


class RevIN(nn.Module):
    """Reversible instance normalisation over time, per channel, with an affine map; x is (B, T, N)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def normalise(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        mean, std = x.mean(1, keepdim=True), torch.sqrt(x.var(1, keepdim=True, unbiased=False) + 1e-5)
        return (x - mean) / std * self.weight + self.bias, (mean, std)

    def denormalise(self, y: torch.Tensor, stats: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        mean, std = stats
        return (y - self.bias) / (self.weight + 1e-10) * std + mean


class NormLin(nn.Module):
    """Token mixing y = W_o drop(A) W_v x with A = rownorm_L1(softplus(W)), W (N x N) = I + N(0, 1) at init
    (the repository's LinearEncoder also applies dropout to A itself)."""

    def __init__(self, tokens: int, width: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.eye(tokens) + torch.randn(tokens, tokens))
        self.value = nn.Linear(width, width)
        self.out = nn.Linear(width, width)
        self.drop = nn.Dropout(dropout)

    def mixing(self) -> torch.Tensor:
        a = nn.functional.softplus(self.weight)
        return a / a.sum(dim=1, keepdim=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.drop(self.mixing()) @ self.value(x))


class Attention(nn.Module):
    """Multi-head self-attention over the channel tokens (iTransformer style), the NormLin ablation."""

    def __init__(self, tokens: int, width: int, heads: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attention(x, x, x, need_weights=False)[0]


class MixerBlock(nn.Module):
    """x = LN(x + drop(mix(x))); x = LN(x + drop(W_2 drop(GELU(W_1 x)))); x is (B, N, d)."""

    def __init__(self, mixer: str, tokens: int, width: int, hidden: int, dropout: float) -> None:
        super().__init__()
        if mixer not in MIXERS:
            raise ValueError(f"unknown mixer {mixer!r}; choose from {MIXERS}")
        self.mix = NormLin(tokens, width, dropout) if mixer == "normlin" else Attention(tokens, width, dropout=dropout)
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.ffn = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, width))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.drop(self.mix(x)))
        return self.norm2(x + self.drop(self.ffn(x)))


class OLinear(nn.Module):
    """RevIN -> x (B,N,T) * e (D) -> (B,N,D,T) Q_in^T + delta1 -> flatten T*D -> Linear to d ->
    mixer blocks over N tokens -> LN -> Linear to tau*D -> (B,N,D,tau) Q_out + delta2 -> flatten ->
    MLP (tau*D -> d_ff -> tau) -> RevIN^-1; output (B, tau, N)."""

    def __init__(self, q_in: np.ndarray, q_out: np.ndarray, channels: int, embed: int, width: int,
                 hidden: int, blocks: int, mixer: str, dropout: float) -> None:
        super().__init__()
        lookback, horizon = len(q_in), len(q_out)
        self.register_buffer("q_in", torch.as_tensor(q_in, dtype=torch.float32))
        self.register_buffer("q_out", torch.as_tensor(q_out, dtype=torch.float32))
        self.horizon, self.embed = horizon, embed
        self.revin = RevIN(channels)
        self.embedding = nn.Parameter(torch.randn(embed))
        self.delta1 = nn.Parameter(torch.zeros(1, channels, 1, lookback))
        self.delta2 = nn.Parameter(torch.zeros(1, channels, 1, horizon))
        self.inp = nn.Linear(lookback * embed, width)
        self.blocks = nn.ModuleList(MixerBlock(mixer, channels, width, hidden, dropout) for _ in range(blocks))
        self.norm = nn.LayerNorm(width)
        self.outp = nn.Linear(width, horizon * embed)
        self.head = nn.Sequential(nn.Linear(horizon * embed, hidden), nn.GELU(), nn.Linear(hidden, horizon))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z, stats = self.revin.normalise(x)
        z = z.transpose(1, 2)[:, :, None, :] * self.embedding[None, None, :, None]   # (B, N, D, T)
        z = z @ self.q_in.T + self.delta1                                         # coefficients Q x
        h = self.inp(z.flatten(2))                                                # (B, N, d)
        for block in self.blocks:
            h = block(h)
        c = self.outp(self.norm(h)).view(len(x), x.shape[2], self.embed, self.horizon)
        y = c @ self.q_out + self.delta2                                          # back to time: Q^T c
        y = self.drop(self.head(y.flatten(2)))                                    # (B, N, tau)
        return self.revin.denormalise(y.transpose(1, 2), stats)


class RLinear(nn.Module):
    """Channel-independent linear map T -> tau with RevIN (the linear baseline)."""

    def __init__(self, lookback: int, horizon: int, channels: int) -> None:
        super().__init__()
        self.revin = RevIN(channels)
        self.linear = nn.Linear(lookback, horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z, stats = self.revin.normalise(x)
        return self.revin.denormalise(self.linear(z.transpose(1, 2)).transpose(1, 2), stats)
