"""M independent auto-encoders r_m: R^d -> R^d trained side by side (one per corruption level sigma_m).

Each is the card's untied MLP  r(x) = W3 tanh(W2 tanh(W1 x + b1) + b2) + b3  (d -> H -> H -> d). The M
networks share no parameter and the loss is a sum of per-network means, so Adam (elementwise) trains each
exactly as it would alone; batching only saves Python overhead.

Criteria (sigma_m is the m-th network's corruption level):
  DAE   L_m = E_x E_eps || r_m(x + sigma_m eps) - x ||^2,              eps ~ N(0, I)
  RCAE  L_m = E_x [ || r_m(x) - x ||^2 + sigma_m^2 || dr_m/dx (x) ||_F^2 ]   (exact Jacobian, d is 1 or 2)
"""

import math

import numpy as np
import torch
from torch import nn

from repro.core.errors import ConfigError


class BatchedMLP(nn.Module):
    """M untied MLPs d -> H -> H -> d with tanh; input and output of shape (M, B, d)."""

    def __init__(self, models: int, dim: int, hidden: int) -> None:
        super().__init__()
        shapes = [(dim, hidden), (hidden, hidden), (hidden, dim)]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in shapes:  # PyTorch's nn.Linear initialisation, per network
            bound = 1 / math.sqrt(fan_in)
            self.weights.append(nn.Parameter(torch.empty(models, fan_in, fan_out).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(models, 1, fan_out).uniform_(-bound, bound)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(b, h, w)
            if i < len(self.weights) - 1:
                h = torch.tanh(h)
        return h


def jacobian_sq_norm(model: BatchedMLP, x: torch.Tensor) -> torch.Tensor:
    """(M, B) ||dr/dx||_F^2 at each point, kept in the graph (each output row depends on its own input only)."""
    x = x.requires_grad_(True)
    r = model(x)
    total = torch.zeros(x.shape[:2], dtype=x.dtype)
    for j in range(r.shape[-1]):
        (row,) = torch.autograd.grad(r[..., j].sum(), x, create_graph=True)
        total = total + (row**2).sum(-1)
    return total


def train_autoencoders(criterion: str, train_x: np.ndarray, sigmas: list[float], hidden: int, steps: int,
                       batch_size: int, lr: float, seed: int) -> BatchedMLP:
    """One network per sigma, trained by Adam on minibatches of the (n, d) training set; fresh corruption
    at every step (the card's pitfall: fixed replicated corruption limits the effective sample size)."""
    if criterion not in ("dae", "rcae"):
        raise ConfigError(f"unknown criterion {criterion!r}; choose dae or rcae")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the networks are tiny: intra-op threads only add synchronisation overhead
    try:
        return _train(criterion, train_x, sigmas, hidden, steps, batch_size, lr, seed)
    finally:
        torch.set_num_threads(threads)


def _train(criterion: str, train_x: np.ndarray, sigmas: list[float], hidden: int, steps: int,
           batch_size: int, lr: float, seed: int) -> BatchedMLP:
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    data = torch.as_tensor(train_x, dtype=torch.float32)
    models, dim = len(sigmas), data.shape[1]
    sigma = torch.tensor(sigmas, dtype=torch.float32).view(models, 1, 1)
    model = BatchedMLP(models, dim, hidden)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        x = data[torch.randint(len(data), (models, batch_size), generator=generator)]
        if criterion == "dae":
            noisy = x + sigma * torch.randn(x.shape, generator=generator)
            per_model = ((model(noisy) - x) ** 2).sum(-1).mean(1)
        else:
            penalty = jacobian_sq_norm(model, x)
            per_model = ((model(x) - x) ** 2).sum(-1).mean(1) + sigma.view(models) ** 2 * penalty.mean(1)
        loss = per_model.sum()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{criterion} training diverged (loss {loss.item()})")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


def reconstruct(model: BatchedMLP, x: np.ndarray) -> np.ndarray:
    """(M, n, d) r_m(x) of every network at the same (n, d) points, in float64."""
    with torch.no_grad():
        inputs = torch.as_tensor(x, dtype=torch.float32).expand(len(model.weights[0]), *x.shape)
        return model(inputs).double().numpy()
