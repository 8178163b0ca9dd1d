"""M independent auto-encoders r_m: R^d -> R^d trained side by side (one per corruption level sigma_m).

Each is the card's untied MLP  r(x) = W3 tanh(W2 tanh(W1 x + b1) + b2) + b3  (d -> H -> H -> d). The M
networks share no parameter and the loss is a sum of per-network means, so Adam (elementwise) trains each
exactly as it would alone; batching only saves Python overhead.

Criteria (sigma_m is the m-th network's corruption level):
  DAE   L_m = E_x E_eps || r_m(x + sigma_m eps) - x ||^2,              eps ~ N(0, I)
  RCAE  L_m = E_x [ || r_m(x) - x ||^2 + sigma_m^2 || dr_m/dx (x) ||_F^2 ]   (exact Jacobian, d is 1 or 2)
"""

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from repro.core.errors import ConfigError


def uniform(bound: float, generator: torch.Generator | None, *shape: int) -> torch.Tensor:
    """U(-bound, bound) of the given shape (on the CPU, so the initialisation is the same on every device)."""
    return (torch.rand(*shape, generator=generator) * 2 - 1) * bound


class BatchedMLP(nn.Module):
    """M untied MLPs d -> H -> H -> d with tanh; input and output of shape (M, B, d)."""

    def __init__(self, models: int, dim: int, hidden: int, generator: torch.Generator | None = None) -> None:
        super().__init__()
        shapes = [(dim, hidden), (hidden, hidden), (hidden, dim)]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in shapes:  # PyTorch's nn.Linear initialisation, per network
            bound = 1 / math.sqrt(fan_in)
            self.weights.append(nn.Parameter(uniform(bound, generator, models, fan_in, fan_out)))
            self.biases.append(nn.Parameter(uniform(bound, generator, models, 1, fan_out)))

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
    total = torch.zeros(x.shape[:2], dtype=x.dtype, device=x.device)
    for j in range(r.shape[-1]):
        (row,) = torch.autograd.grad(r[..., j].sum(), x, create_graph=True)
        total = total + (row**2).sum(-1)
    return total


def criterion_losses(criterion: str, model: BatchedMLP, x: torch.Tensor, sigma: torch.Tensor,
                     noise: torch.Tensor | None) -> torch.Tensor:
    """(M,) per-network loss on x (M, B, d); ``noise`` ~ N(0, I) of x's shape for the DAE."""
    if criterion == "dae":
        return ((model(x + sigma * noise) - x) ** 2).sum(-1).mean(1)
    penalty = jacobian_sq_norm(model, x)
    return ((model(x) - x) ** 2).sum(-1).mean(1) + sigma.view(-1) ** 2 * penalty.mean(1)


@dataclass
class Trained:
    """The networks and their validation losses, (evaluations, M), recorded every ``steps // evaluations``."""

    model: BatchedMLP
    val_losses: np.ndarray


def train_autoencoders(criterion: str, train_x: np.ndarray, val_x: np.ndarray, sigmas: list[float], hidden: int,
                       steps: int, batch_size: int, lr: float, seed: int, device: str = "cpu",
                       evaluations: int = 20) -> Trained:
    """One network per sigma, trained by Adam on minibatches of the (n, d) training set; fresh corruption
    at every step (the card's pitfall: fixed replicated corruption limits the effective sample size).

    The validation loss of each network (its own criterion on the held-out ``val_x`` with one fixed draw
    of corruption) is recorded ``evaluations`` times, for the convergence check.
    """
    if criterion not in ("dae", "rcae"):
        raise ConfigError(f"unknown criterion {criterion!r}; choose dae or rcae")
    init = torch.Generator().manual_seed(seed)
    generator = torch.Generator(device=device).manual_seed(seed)
    data = torch.as_tensor(train_x, dtype=torch.float32, device=device)
    models, dim = len(sigmas), data.shape[1]
    sigma = torch.tensor(sigmas, dtype=torch.float32, device=device).view(models, 1, 1)
    model = BatchedMLP(models, dim, hidden, init).to(device)
    val = torch.as_tensor(val_x, dtype=torch.float32, device=device).expand(models, *val_x.shape)
    val_noise = torch.randn(val.shape, generator=generator, device=device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    every = max(1, steps // evaluations)
    history = []
    for step in range(steps):
        x = data[torch.randint(len(data), (models, batch_size), generator=generator, device=device)]
        noise = torch.randn(x.shape, generator=generator, device=device) if criterion == "dae" else None
        loss = criterion_losses(criterion, model, x, sigma, noise).sum()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{criterion} training diverged (loss {loss.item()}) at step {step}")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if (step + 1) % every == 0:
            history.append(validation_losses(criterion, model, val, sigma, val_noise))
    return Trained(model, np.array(history))


def validation_losses(criterion: str, model: BatchedMLP, val: torch.Tensor, sigma: torch.Tensor,
                      noise: torch.Tensor) -> np.ndarray:
    if criterion == "dae":
        with torch.no_grad():
            return criterion_losses(criterion, model, val, sigma, noise).cpu().numpy()
    return criterion_losses(criterion, model, val.clone(), sigma, noise).detach().cpu().numpy()


def reconstruct(model: BatchedMLP, x: np.ndarray) -> np.ndarray:
    """(M, n, d) r_m(x) of every network at the same (n, d) points, in float64 (on the networks' device)."""
    weights = model.weights[0]
    with torch.no_grad():
        inputs = torch.as_tensor(x, dtype=torch.float32, device=weights.device).expand(len(weights), *x.shape)
        return model(inputs).double().cpu().numpy()
