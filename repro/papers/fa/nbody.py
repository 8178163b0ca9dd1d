"""The charged 5-body data (EGNN's generator, as the card specifies) and the GNN backbone with its FA wrapper."""

import numpy as np
import torch
from torch import nn

from repro.papers.fa.frames import from_frame, pca_frames, to_frame


def simulate_charged(systems: int, seed: int, n_balls: int = 5, dt: float = 1e-3, every: int = 100,
                     frames: tuple[int, int] = (30, 40), max_force: float = 100.0) -> dict[str, np.ndarray]:
    """Charged particles: q ~ +-1, x ~ N(0, I), |v| = 0.5 in a random direction; force on i
    F_i = sum_j q_i q_j (x_i - x_j) / |x_i - x_j|^3, each component clipped to +-max_force; per step
    x += dt v, then v += dt F (unit masses). Saved every ``every`` steps; returns the two saved frames
    (input, target) as x_in, v_in, x_out, v_out (systems, n, 3) and charges (systems, n) in float64.
    """
    rng = np.random.default_rng(seed)
    charges = rng.choice([1.0, -1.0], size=(systems, n_balls))
    x = rng.standard_normal((systems, n_balls, 3))
    v = rng.standard_normal((systems, n_balls, 3))
    v *= 0.5 / np.linalg.norm(v, axis=-1, keepdims=True)
    coupling = charges[:, :, None] * charges[:, None, :]
    off_diagonal = ~np.eye(n_balls, dtype=bool)

    def force(x: np.ndarray) -> np.ndarray:
        diff = x[:, :, None, :] - x[:, None, :, :]  # x_i - x_j
        dist3 = np.where(off_diagonal, (diff**2).sum(-1), 1.0) ** 1.5
        f = (np.where(off_diagonal, coupling / dist3, 0.0)[..., None] * diff).sum(2)
        return np.clip(f, -max_force, max_force)

    saved = {}
    v = v + dt * force(x)  # EGNN's generator gives the first kick before the loop
    for step in range(1, frames[1] * every + 1):
        x = x + dt * v
        v = v + dt * force(x)
        if step == frames[0] * every:
            saved["x_in"], saved["v_in"] = x.copy(), v.copy()
    saved["x_out"], saved["v_out"], saved["charges"] = x, v, charges
    return saved


class GNN(nn.Module):
    """Fully connected message passing (EGNN's GCL without coordinate updates), recurrent node update:
        m_ij = phi_e(h_i, h_j, q_i q_j, |x_i - x_j|^2),   h_i <- h_i + phi_h(h_i, sum_{j != i} m_ij),
    h_i^0 = W [x_i, v_i]; output x_i + phi_out(h_i). Input x, v (B, n, 3), charges (B, n); output (B, n, 3).
    """

    def __init__(self, width: int = 32, layers: int = 4) -> None:
        super().__init__()
        act = nn.SiLU
        self.embed = nn.Linear(6, width)
        self.edge = nn.ModuleList(nn.Sequential(nn.Linear(2 * width + 2, width), act(), nn.Linear(width, width),
                                                act()) for _ in range(layers))
        self.node = nn.ModuleList(nn.Sequential(nn.Linear(2 * width, width), act(), nn.Linear(width, width))
                                  for _ in range(layers))
        self.out = nn.Sequential(nn.Linear(width, width), act(), nn.Linear(width, 3))

    def forward(self, x: torch.Tensor, v: torch.Tensor, charges: torch.Tensor) -> torch.Tensor:
        n = x.shape[-2]
        h = self.embed(torch.cat([x, v], -1))
        coupling = (charges.unsqueeze(-1) * charges.unsqueeze(-2)).unsqueeze(-1)
        dist2 = ((x.unsqueeze(-2) - x.unsqueeze(-3)) ** 2).sum(-1, keepdim=True)
        mask = (1 - torch.eye(n, dtype=x.dtype)).unsqueeze(-1)
        for edge, node in zip(self.edge, self.node):
            pair = torch.cat([h.unsqueeze(-2).expand(*h.shape[:-1], n, h.shape[-1]),
                              h.unsqueeze(-3).expand(*h.shape[:-2], n, n, h.shape[-1]), coupling, dist2], -1)
            messages = (edge(pair) * mask).sum(-2)
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
