"""The sequence-to-sequence flow-equivariant RNN (FERNN) and its non-equivariant special case, the G-RNN.

Hidden state h_t has one copy h_t[v] per velocity v in a finite set V (a lift of the translation group to
the group of flows). One step of the recurrence, for every v in V:

    h_t[v] = ReLU( conv_u(u_t) + conv_h( roll(h_{t-1}[v], v) ) )

with circular 3x3 convolutions without bias, so that every operation commutes with a wrap-around
translation. With V = {0} this is the G-RNN (a translation-equivariant convolutional RNN, not flow
equivariant). The decoder pools over V with max, applies (3x3 conv + ReLU) blocks and a 3x3 conv to one
channel, and feeds its own detached prediction back as the next input (autoregressive, no teacher forcing).
"""

import torch
import torch.nn.functional as F
from torch import nn

# Method name -> velocity range r: V = {-r..r}^2 pixels per frame.
METHODS = {"grnn": 0, "fernn_v1": 1, "fernn_v2": 2}


def velocity_set(v_range: int) -> list[tuple[int, int]]:
    """V = {-r..r}^2 as (vy, vx) pairs, the (vertical, horizontal) order of ``torch.roll``'s shifts."""
    return [(vy, vx) for vx in range(-v_range, v_range + 1) for vy in range(-v_range, v_range + 1)]


def circular_conv(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, padding=1, padding_mode="circular", bias=False)


def shift_index(velocities: list[tuple[int, int]], height: int, width: int, device: torch.device) -> torch.Tensor:
    """Flat pixel indices (|V|, 1, (H+2)(W+2)) that read every copy rolled by its velocity and padded
    circularly by one pixel for a 3x3 convolution, in one gather:

        padded[v, i, j] = roll(h[v], v)[(i - 1) mod H, (j - 1) mod W] = h[v, (i - 1 - vy) mod H, (j - 1 - vx) mod W]
    """
    rows = torch.stack([(torch.arange(height + 2, device=device) - 1 - vy) % height for vy, _ in velocities])
    cols = torch.stack([(torch.arange(width + 2, device=device) - 1 - vx) % width for _, vx in velocities])
    return (rows[:, :, None] * width + cols[:, None, :]).reshape(len(velocities), 1, -1)


def moved_and_padded(h: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """(B, |V|, C, H, W) -> (B |V|, C, H+2, W+2): every copy rolled and circularly padded by ``index``."""
    batch, copies, channels, height, width = h.shape
    moved = h.reshape(batch, copies, channels, height * width).gather(3, index.expand(batch, -1, channels, -1))
    return moved.reshape(batch * copies, channels, height + 2, width + 2)


class ShiftConv(torch.autograd.Function):
    """conv_h(roll(h[v], v)) for every copy v: a circular 3x3 convolution (no bias) of each rolled copy.

    The forward pass is one gather and one convolution. So is the input gradient, by the adjoints: the adjoint
    of a circular cross-correlation with kernel w[o, c, a, b] is the circular cross-correlation with the flipped,
    transposed kernel w[c, o, 2 - a, 2 - b], and the adjoint of roll(., v) is roll(., -v):

        dL/dh[v] = conv_{flip(w)^T}( pad(roll(dL/dout[v], -v)) ).

    Autograd through gather and conv2d gives the same numbers (tested with gradcheck against torch.roll), but
    its scatter-add and transposed convolution cost about twice as much on cpu.
    """

    @staticmethod
    def forward(ctx, h: torch.Tensor, weight: torch.Tensor, index: torch.Tensor, inverse_index: torch.Tensor
                ) -> torch.Tensor:
        moved = moved_and_padded(h, index)
        ctx.save_for_backward(moved, weight, inverse_index)
        return F.conv2d(moved, weight).reshape(h.shape)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None, None]:
        moved, weight, inverse_index = ctx.saved_tensors
        grad_h = grad_weight = None
        if ctx.needs_input_grad[0]:
            adjoint = weight.flip(2, 3).transpose(0, 1)
            grad_h = F.conv2d(moved_and_padded(grad, inverse_index), adjoint).reshape(grad.shape)
        if ctx.needs_input_grad[1]:
            grad_weight = torch.nn.grad.conv2d_weight(moved, weight.shape, grad.flatten(0, 1))
        return grad_h, grad_weight, None, None


class FlowCell(nn.Module):
    """One recurrence step of all velocity copies at once; the convolution weights are shared over V."""

    def __init__(self, in_channels: int, hidden: int, velocities: list[tuple[int, int]]) -> None:
        super().__init__()
        self.velocities = velocities
        self.hidden = hidden
        self.conv_u = circular_conv(in_channels, hidden)
        # Applied through ShiftConv, whose gather pads circularly (a gather is about twice as fast on cpu as
        # 25 torch.roll calls followed by circular padding, and gives the same numbers).
        self.conv_h = nn.Conv2d(hidden, hidden, 3, bias=False)

    def shift_indices(self, height: int, width: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The gather indices of roll(., v) and of its inverse roll(., -v), both with circular padding."""
        inverse = [(-vy, -vx) for vy, vx in self.velocities]
        return (shift_index(self.velocities, height, width, device), shift_index(inverse, height, width, device))

    def forward(self, u: torch.Tensor, h: torch.Tensor, indices: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """u: (B, C, H, W) one frame; h: (B, |V|, hidden, H, W) the previous state; ``indices`` from
        ``shift_indices``; returns the next state."""
        # Each copy moves along its own flow before the recurrent convolution: conv_h(roll(h[v], v)).
        recurrent = ShiftConv.apply(h, self.conv_h.weight, *indices)
        # The lift: the same input drive for every velocity copy.
        return torch.relu(self.conv_u(u).unsqueeze(1) + recurrent)


class Seq2SeqFERNN(nn.Module):
    def __init__(self, v_range: int, hidden: int, decoder_blocks: int, in_channels: int = 1) -> None:
        super().__init__()
        self.cell = FlowCell(in_channels, hidden, velocity_set(v_range))
        blocks = []
        for _ in range(decoder_blocks):
            blocks += [circular_conv(hidden, hidden), nn.ReLU()]
        self.decoder = nn.Sequential(*blocks, circular_conv(hidden, in_channels))

    def initial_state(self, frames: torch.Tensor) -> torch.Tensor:
        batch, _, _, height, width = frames.shape
        return frames.new_zeros(batch, len(self.cell.velocities), self.cell.hidden, height, width)

    def encode(self, frames: torch.Tensor) -> list[torch.Tensor]:
        """The hidden states h_1..h_T of an input sequence (B, T, C, H, W), starting from h_0 = 0."""
        h, states = self.initial_state(frames), []
        indices = self.cell.shift_indices(*frames.shape[-2:], frames.device)
        for t in range(frames.shape[1]):
            h = self.cell(frames[:, t], h, indices)
            states.append(h)
        return states

    def forward(self, frames: torch.Tensor, pred_len: int) -> torch.Tensor:
        """Predict ``pred_len`` frames after the input frames (B, T_in, C, H, W) -> (B, pred_len, C, H, W).

        As in the official code, the first decoder step reads the last input frame again, and every later
        step its own previous (detached) prediction; the hidden state keeps flowing on every decoder step.
        """
        h = self.encode(frames)[-1]
        indices = self.cell.shift_indices(*frames.shape[-2:], frames.device)
        previous, outputs = frames[:, -1], []
        for _ in range(pred_len):
            h = self.cell(previous.detach(), h, indices)
            prediction = self.decoder(h.max(dim=1).values)   # pool over velocities with max
            outputs.append(prediction)
            previous = prediction
        return torch.stack(outputs, 1)


def build_model(method: str, hidden: int, decoder_blocks: int) -> Seq2SeqFERNN:
    return Seq2SeqFERNN(METHODS[method], hidden, decoder_blocks)
