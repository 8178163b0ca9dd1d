"""The feature extractor Phi_Omega of the paper on a periodic 1-D grid of spacing h.

Layer n maps each signal U[q] f of a path q to U[lambda] U[q] f = S^{1/2} P(M(U[q] f * g_lambda))(S .) and emits
the features (U[q] f) * chi. On the grid the dilation (S .) keeps the spacing h and shrinks the period by S, so the
factor S^{1/2} keeps norms, ||x||^2 = h sum |x[m]|^2, comparable across layers.

Non-linearities (all with M(0) = 0): modulus and ReLU, tanh (Lipschitz 1), the logistic sigmoid shifted to pass
through 0 (Lipschitz 1/4). Pooling: none (S = 1), sub-sampling (keep every S-th sample) or averaging (mean of S
consecutive samples, Lipschitz 1 by Jensen's inequality).
"""

import torch

from repro.papers.dcnn_theory.filters import Responses, frequencies

NONLINEARITIES = {
    "modulus": (torch.abs, 1.0),
    "relu": (torch.relu, 1.0),
    "tanh": (torch.tanh, 1.0),
    "sigmoid": (lambda x: torch.sigmoid(x) - 0.5, 0.25),
}
POOLINGS = ("none", "sub", "avg")


def lipschitz_constant(nonlinearity: str) -> float:
    return NONLINEARITIES[nonlinearity][1]


def convolve(signals: torch.Tensor, multipliers: torch.Tensor) -> torch.Tensor:
    """Circular convolution of signals (..., M) with filters given by their multipliers (filters, M) at the
    grid's frequencies: returns (..., filters, M), complex."""
    spectra = torch.fft.fft(signals, dim=-1)
    return torch.fft.ifft(spectra.unsqueeze(-2) * multipliers, dim=-1)


def pool(signals: torch.Tensor, method: str, factor: int) -> torch.Tensor:
    """S^{1/2} P(x)(S .) on the grid: none, sub-sampling or block averaging by ``factor``."""
    if method == "none" or factor == 1:
        return signals
    if method == "sub":
        return factor ** 0.5 * signals[..., ::factor]
    if method == "avg":
        return factor ** 0.5 * signals.unflatten(-1, (-1, factor)).mean(-1)
    raise ValueError(f"unknown pooling {method!r}; choose one of {POOLINGS}")


def features(signals: torch.Tensor, responses: Responses, nonlinearity: str, pooling: str, factor: int,
             depth: int, spacing: float) -> list[torch.Tensor]:
    """Phi^n(f) for n = 0..depth: a list of (batch, paths_n, M_n) tensors, paths_n = (#filters)^n.

    ``responses`` is the (rescaled) bank; real-valued non-linearities need a real bank (``filters.real_part``).
    """
    apply = NONLINEARITIES[nonlinearity][0]
    layers = []
    u = signals.to(torch.complex128).unsqueeze(1)  # (batch, 1 path, M)
    for n in range(depth + 1):
        bank, chi = responses(frequencies(u.shape[-1], spacing, str(u.device)))
        layers.append(convolve(u, chi[None])[..., 0, :])
        if n == depth:
            break
        filtered = convolve(u, bank).flatten(1, 2)  # (batch, paths x filters, M)
        activated = apply(filtered) if nonlinearity == "modulus" else apply(filtered.real)
        u = pool(activated, pooling, factor).to(torch.complex128)
    return layers


def layer_norms(layers: list[torch.Tensor], spacing: float) -> torch.Tensor:
    """|||Phi^n|||, the root of h sum over paths and samples of |feature|^2, per layer: (batch, depth + 1)."""
    return torch.stack([(spacing * (x.abs() ** 2).sum(dim=(1, 2))).sqrt() for x in layers], dim=1)


def distance(a: list[torch.Tensor], b: list[torch.Tensor], spacing: float) -> torch.Tensor:
    """|||Phi(f) - Phi(g)||| over all layers, per signal of the batch."""
    per_layer = layer_norms([x - y for x, y in zip(a, b)], spacing)
    return (per_layer ** 2).sum(1).sqrt()
