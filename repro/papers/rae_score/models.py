"""M independent auto-encoders r_m: R^d -> R^d trained side by side (one per corruption level sigma_m).

Each is an untied MLP  r(x) = W3 tanh(W2 tanh(W1 x + b1) + b2) + b3  (d -> H -> H -> d). The M
networks share no parameter and the loss is a sum of per-network means, so Adam (elementwise) trains each
exactly as it would alone; batching only saves Python overhead.

Criteria (sigma_m is the m-th network's corruption level):
  DAE   L_m = E_x E_eps || r_m(x + sigma_m eps) - x ||^2,              eps ~ N(0, I)
  RCAE  L_m = E_x [ || r_m(x) - x ||^2 + sigma_m^2 || dr_m/dx (x) ||_F^2 ]
        (exact Jacobian by forward-mode tangents, d is 1 or 2)
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


def forward_with_jacobian(model: BatchedMLP, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """r(x) (M, B, d) and (M, B) ||dr/dx||_F^2 at each point, in the graph, by forward-mode propagation of the d
    input tangents.

    With pre-activations a_l = h_{l-1} W_l + b_l and h_l = tanh(a_l), the tangent of h_l along input direction
    e_i obeys dh_l = (1 - h_l^2) * (dh_{l-1} W_l), starting from dh_0 = e_i; the output tangents are the rows
    of dr/dx. One extra matmul per layer for each of the d (1 or 2) directions: cheaper than the
    double backward of reverse mode.
    """
    models, batch, dim = x.shape
    h = x
    tangent = torch.eye(dim, dtype=x.dtype, device=x.device).expand(models, batch, dim, dim)  # (M, B, d_in, .)
    for i, (w, b) in enumerate(zip(model.weights, model.biases)):
        h = torch.baddbmm(b, h, w)
        tangent = torch.bmm(tangent.reshape(models, batch * dim, -1), w).view(models, batch, dim, -1)
        if i < len(model.weights) - 1:
            h = torch.tanh(h)
            tangent = (1 - h**2).unsqueeze(2) * tangent
    return h, (tangent**2).sum((-2, -1))


def criterion_losses(criterion: str, model: BatchedMLP, x: torch.Tensor, sigma: torch.Tensor,
                     noise: torch.Tensor | None) -> torch.Tensor:
    """(M,) per-network loss on x (M, B, d); ``noise`` ~ N(0, I) of x's shape for the DAE."""
    if criterion == "dae":
        return ((model(x + sigma * noise) - x) ** 2).sum(-1).mean(1)
    r, penalty = forward_with_jacobian(model, x)
    return ((r - x) ** 2).sum(-1).mean(1) + sigma.view(-1) ** 2 * penalty.mean(1)


@dataclass
class Trained:
    """The networks and their validation losses, (evaluations, M), recorded every ``steps // evaluations``."""

    model: BatchedMLP
    val_losses: np.ndarray


def train_autoencoders(criterion: str, train_x: np.ndarray, val_x: np.ndarray, sigmas: list[float], hidden: int,
                       steps: int, batch_size: int, lr: float, seed: int, device: str = "cpu",
                       evaluations: int = 20) -> Trained:
    """One network per sigma, trained by Adam on minibatches of the (n, d) training set; fresh corruption
    at every step (a fixed replicated corruption, as in the authors' scripts, limits the effective sample size).

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
    with torch.no_grad():
        return criterion_losses(criterion, model, val, sigma, noise).cpu().numpy()


def reconstruct(model: BatchedMLP, x: np.ndarray) -> np.ndarray:
    """(M, n, d) r_m(x) of every network at the same (n, d) points, in float64 (on the networks' device)."""
    weights = model.weights[0]
    with torch.no_grad():
        inputs = torch.as_tensor(x, dtype=torch.float32, device=weights.device).expand(len(weights), *x.shape)
        return model(inputs).double().cpu().numpy()
