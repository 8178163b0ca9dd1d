"""The charged 5-body data (EGNN's generator, as the card specifies) and the GNN backbone with its FA wrapper."""

import itertools

import numpy as np
import torch
from torch import nn

from repro.papers.fa.frames import from_frame, pca_frames, to_frame


def simulate_charged(systems: int, seed: int, n_balls: int = 5, dt: float = 1e-3, every: int = 100,
                     frames: tuple[int, int] = (30, 40), max_force: float = 100.0) -> dict[str, np.ndarray]:
    """Charged particles: q ~ +-1, x ~ N(0, I), |v| = 0.5 in a random direction; force on i
    F_i = sum_j q_i q_j (x_i - x_j) / |x_i - x_j|^3, each component clipped to +-max_force; unit masses.
    EGNN's generator (n_body_system/dataset/synthetic_sim.py): one kick v += dt F before the loop, then per
    step x += dt v, v += dt F(x). Saved frame f is the state after the drift of step (f + 1) * every, before
    that step's kick. Returns frames[0] (x_in, v_in) and frames[1] (x_out, v_out), (systems, n, 3), and the
    charges (systems, n), all float64.

    All systems advance together, coordinate-major (3, n, systems), over the n(n-1)/2 pairs i < j:
    f_ij = q_i q_j (x_i - x_j) / |x_i - x_j|^3 goes to i with + and to j with - (incidence matrix).
    """
    rng = np.random.default_rng(seed)
    charges = rng.choice([1.0, -1.0], size=(systems, n_balls))
    x = rng.standard_normal((systems, n_balls, 3))
    v = rng.standard_normal((systems, n_balls, 3))
    v *= 0.5 / np.linalg.norm(v, axis=-1, keepdims=True)
    first, second = np.array(list(itertools.combinations(range(n_balls), 2))).T  # pairs p = (i, j), i < j
    incidence = np.zeros((n_balls, len(first)))
    incidence[first, np.arange(len(first))] = 1.0
    incidence[second, np.arange(len(first))] = -1.0
    coupling = (charges[:, first] * charges[:, second]).T  # (P, systems)

    def force(x: np.ndarray) -> np.ndarray:  # (3, n, S) -> (3, n, S)
        diff = x[:, first] - x[:, second]  # (3, P, S): x_i - x_j
        dist2 = np.einsum("kps,kps->ps", diff, diff)
        return np.clip(incidence @ (coupling / (dist2 * np.sqrt(dist2)) * diff), -max_force, max_force)

    x, v = np.ascontiguousarray(x.transpose(2, 1, 0)), np.ascontiguousarray(v.transpose(2, 1, 0))
    saved = {}
    v = v + dt * force(x)
    save_in, save_out = (frames[0] + 1) * every, (frames[1] + 1) * every
    for step in range(1, save_out + 1):
        x = x + dt * v
        if step == save_in:
            saved["x_in"], saved["v_in"] = x.transpose(2, 1, 0), v.transpose(2, 1, 0)
        if step == save_out:
            saved["x_out"], saved["v_out"] = x.transpose(2, 1, 0), v.transpose(2, 1, 0)
            break
        v = v + dt * force(x)
    saved["charges"] = charges
    return saved


class GNN(nn.Module):
    """Fully connected message passing (EGNN's GCL without coordinate updates), recurrent node update:
        m_ij = phi_e(h_i, h_j, q_i q_j, |x_i - x_j|^2),   h_i <- h_i + phi_h(h_i, sum_{j != i} m_ij),
    h_i^0 = W [x_i, v_i]; output x_i + phi_out(h_i). Input x, v (B, n, 3), charges (B, n); output (B, n, 3).

    phi_e's first layer W [h_i, h_j, a_ij] + b is evaluated as W_r h_i + W_s h_j + W_a a_ij + b: the two
    h-products are computed once per node (n rows) instead of once per pair (n(n-1) rows); same function.
    """

    def __init__(self, width: int = 32, layers: int = 4) -> None:
        super().__init__()
        act = nn.SiLU
        self.width = width
        self.embed = nn.Linear(6, width)
        self.edge = nn.ModuleList(nn.Sequential(nn.Linear(2 * width + 2, width), act(), nn.Linear(width, width),
                                                act()) for _ in range(layers))
        self.node = nn.ModuleList(nn.Sequential(nn.Linear(2 * width, width), act(), nn.Linear(width, width))
                                  for _ in range(layers))
        self.out = nn.Sequential(nn.Linear(width, width), act(), nn.Linear(width, 3))

    def forward(self, x: torch.Tensor, v: torch.Tensor, charges: torch.Tensor) -> torch.Tensor:
        n = x.shape[-2]
        # ordered pairs (i, j), i != j, grouped by receiver i: pair p = i * (n - 1) + k
        receiver = torch.arange(n, device=x.device).repeat_interleave(n - 1)
        sender = torch.tensor([j for i in range(n) for j in range(n) if j != i], device=x.device)
        h = self.embed(torch.cat([x, v], -1))
        edge_attr = torch.cat([(charges[..., receiver] * charges[..., sender]).unsqueeze(-1),
                               ((x[..., receiver, :] - x[..., sender, :]) ** 2).sum(-1, keepdim=True)], -1)
        for edge, node in zip(self.edge, self.node):
            first = edge[0]
            w_receiver, w_sender, w_attr = first.weight.split([self.width, self.width, 2], dim=1)
            pre = ((h @ w_receiver.T)[..., receiver, :] + (h @ w_sender.T)[..., sender, :]
                   + edge_attr @ w_attr.T + first.bias)
            messages = edge[1:](pre)  # (B, n (n - 1), width)
            messages = messages.unflatten(-2, (n, n - 1)).sum(-2)
            h = h + node(torch.cat([h, messages], -1))
        return x + self.out(h)


class FrameAveraged(nn.Module):
    """<phi>_F(x, v) = 1/|F| sum_{(R, t) in F(x)} [R phi(R^T (x - t), R^T v) + t]: E(3)-equivariant for any phi."""

    def __init__(self, backbone: nn.Module, group: str = "o3") -> None:
        super().__init__()
        self.backbone, self.group = backbone, group

    def forward(self, x: torch.Tensor, v: torch.Tensor, charges: torch.Tensor) -> torch.Tensor:
        rotations, centroid, _ = pca_frames(x.detach(), self.group)  # float64 frames (ties are round-off free)
        rotations, centroid = rotations.to(x.dtype), centroid.to(x.dtype)
        size = rotations.shape[1]
        x_f, v_f = to_frame(x, rotations, centroid), to_frame(v, rotations)
        q = charges.unsqueeze(1).expand(-1, size, -1)
        out = self.backbone(x_f.flatten(0, 1), v_f.flatten(0, 1), q.flatten(0, 1)).view_as(x_f)
        return from_frame(out, rotations, centroid)


def constant_velocity(x: torch.Tensor, v: torch.Tensor, horizon: float) -> torch.Tensor:
    """The linear baseline: x + horizon * v."""
    return x + horizon * v
