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


class FlowCell(nn.Module):
    """One recurrence step of all velocity copies at once; the convolution weights are shared over V."""

    def __init__(self, in_channels: int, hidden: int, velocities: list[tuple[int, int]]) -> None:
        super().__init__()
        self.velocities = velocities
        self.hidden = hidden
        self.conv_u = circular_conv(in_channels, hidden)
        # No padding of its own: its input is already padded circularly by the shift (a gather is about twice
        # as fast on cpu as 25 torch.roll calls followed by circular padding, and gives the same numbers).
        self.conv_h = nn.Conv2d(hidden, hidden, 3, bias=False)

    def forward(self, u: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """u: (B, C, H, W) one frame; h: (B, |V|, hidden, H, W) the previous state; returns the next state."""
        batch, copies, channels, height, width = h.shape
        # Each copy moves along its own flow before the recurrent convolution: roll(h[v], v).
        index = shift_index(self.velocities, height, width, h.device).expand(batch, -1, channels, -1)
        moved = h.reshape(batch, copies, channels, height * width).gather(3, index)
        recurrent = self.conv_h(moved.reshape(batch * copies, channels, height + 2, width + 2))
        recurrent = recurrent.reshape(batch, copies, channels, height, width)
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
        for t in range(frames.shape[1]):
            h = self.cell(frames[:, t], h)
            states.append(h)
        return states

    def forward(self, frames: torch.Tensor, pred_len: int) -> torch.Tensor:
        """Predict ``pred_len`` frames after the input frames (B, T_in, C, H, W) -> (B, pred_len, C, H, W).

        As in the official code, the first decoder step reads the last input frame again, and every later
        step its own previous (detached) prediction; the hidden state keeps flowing on every decoder step.
        """
        h = self.encode(frames)[-1]
        previous, outputs = frames[:, -1], []
        for _ in range(pred_len):
            h = self.cell(previous.detach(), h)
            prediction = self.decoder(h.max(dim=1).values)   # pool over velocities with max
            outputs.append(prediction)
            previous = prediction
        return torch.stack(outputs, 1)


def build_model(method: str, hidden: int, decoder_blocks: int) -> Seq2SeqFERNN:
    return Seq2SeqFERNN(METHODS[method], hidden, decoder_blocks)
