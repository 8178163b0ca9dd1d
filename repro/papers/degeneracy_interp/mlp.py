"""A ReLU MLP as a function of one flat parameter vector (float64), so per-sample parameter Jacobians,
tangent vectors and SGLD all live in the same R^N.

Layer l: p_l = W_l h_{l-1} + b_l, h_l = relu(p_l) for hidden layers, the last layer linear.
Flat layout: [W_1 (row-major), b_1, W_2, b_2, ...].
"""

import numpy as np
import torch


class FlatMLP:
    def __init__(self, widths: list[int]) -> None:
        self.widths = list(widths)
        self.slices: list[tuple[slice, slice]] = []
        start = 0
        for fan_in, fan_out in zip(widths[:-1], widths[1:]):
            w = slice(start, start + fan_in * fan_out)
            b = slice(w.stop, w.stop + fan_out)
            self.slices.append((w, b))
            start = b.stop
        self.size = start

    def unpack(self, theta: torch.Tensor, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        w, b = self.slices[layer]
        return theta[w].reshape(self.widths[layer + 1], self.widths[layer]), theta[b]

    def init(self, generator: torch.Generator) -> torch.Tensor:
        parts = []
        for fan_in, fan_out in zip(self.widths[:-1], self.widths[1:]):
            parts += [torch.randn(fan_out * fan_in, generator=generator, dtype=torch.float64) / np.sqrt(fan_in),
                      0.1 * torch.randn(fan_out, generator=generator, dtype=torch.float64)]
        return torch.cat(parts)

    def forward(self, theta: torch.Tensor, x: torch.Tensor, masks: list[torch.Tensor] | None = None) -> torch.Tensor:
        """x (..., d_in) -> (..., d_out); `masks` optionally fixes the sets of active units per hidden layer."""
        h = x
        for layer in range(len(self.slices)):
            w, b = self.unpack(theta, layer)
            h = h @ w.T + b
            if layer < len(self.slices) - 1:
                h = h * masks[layer] if masks is not None else torch.relu(h)
        return h

    def activations(self, theta: torch.Tensor, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Inputs of every layer [x, h_1, ..., h_{L-1}] and the hidden preactivations [p_1, ..., p_{L-1}]."""
        inputs, pre = [x], []
        for layer in range(len(self.slices) - 1):
            w, b = self.unpack(theta, layer)
            pre.append(inputs[-1] @ w.T + b)
            inputs.append(torch.relu(pre[-1]))
        return inputs, pre


def train(model: FlatMLP, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float,
          batch: int | None = None, generator: torch.Generator | None = None,
          mask: torch.Tensor | None = None, history: bool = False) -> torch.Tensor | tuple[torch.Tensor, list[float]]:
    """Adam on the mean squared error (full batch, or minibatches of `batch`); parameters outside `mask` stay 0.
    With `history`, also the loss of every step (for the convergence flag)."""
    mask = torch.ones_like(theta) if mask is None else mask
    theta = (theta * mask).requires_grad_(True)
    opt = torch.optim.Adam([theta], lr=lr)
    losses = []
    for _ in range(steps):
        index = torch.randint(0, len(x), (batch,), generator=generator) if batch else slice(None)
        opt.zero_grad()
        loss = ((model.forward(theta * mask, x[index]) - y[index]) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return ((theta * mask).detach(), losses) if history else (theta * mask).detach()
