"""The charged 5-body data (EGNN's generator, or the official release's .npy files at scale=paper) and the GNN
backbone with its two FA wrappers (input frame only; per-layer latent frames as the official model)."""

import hashlib
import itertools
from pathlib import Path

import numpy as np
import torch
from torch import nn

from repro.core.data import fetch
from repro.core.errors import ReproError
from repro.papers.fa.frames import from_frame, pca_frames, to_frame

# The official release: nbody/n_body_system/dataset of github.com/omri1348/Frame-Averaging (EGNN's "charged, 5 balls,
# small" set: 10000 / 2000 / 2000 trajectories of 49 saved frames). Read at this commit.
RELEASE_COMMIT = "9de18e10a6b01f0fc94b11b89db09518ab96d900"
RELEASE_URL = ("https://raw.githubusercontent.com/omri1348/Frame-Averaging/" + RELEASE_COMMIT
               + "/nbody/n_body_system/dataset/{name}")
RELEASE_SPLITS = {"train": "train", "val": "valid", "test": "test"}  # the release names validation "valid"


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


def release_name(kind: str, split: str) -> str:
    """loc | vel | charges, train | val | test -> the release's file name."""
    return f"{kind}_{RELEASE_SPLITS[split]}_charged5_initvel1small.npy"


def git_blob_sha1(path: Path) -> str:
    """Git's object id of a file, SHA-1 of b"blob <size>\\0" + content: the checksum the repository's tree publishes."""
    data = Path(path).read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def load_release(directory: Path, sizes: dict[str, int], frames: tuple[int, int],
                 git_blobs: dict[str, str] | None) -> dict[str, dict[str, np.ndarray]]:
    """The official charged 5-body files -> per split x_in, v_in (frame frames[0]), x_out (frame frames[1]),
    (systems, 5, 3), and charges (systems, 5); the first `sizes[split]` systems, as the official loader's
    max_samples. Files are downloaded into `directory` once and checked against their git blob ids.

    Layout (EGNN's generate_dataset.py): loc and vel (systems, saved frames, 3, n), charges (systems, n, 1). The
    edge files are not read: their entries are q_i q_j, the product of the charges (checked on the test file).
    """
    out = {}
    for split, size in sizes.items():
        arrays = {}
        for kind in ("loc", "vel", "charges"):
            name = release_name(kind, split)
            path = fetch(RELEASE_URL.format(name=name), Path(directory) / name)
            if git_blobs is not None and git_blob_sha1(path) != git_blobs[name]:
                raise ReproError(f"{path} has git blob id {git_blob_sha1(path)}, not the release's {git_blobs[name]}"
                                 f" (commit {RELEASE_COMMIT}); delete it and let the loader download it again")
            arrays[kind] = np.load(path, allow_pickle=False)
        loc, vel, charges = arrays["loc"], arrays["vel"], arrays["charges"]
        if (loc.ndim != 4 or loc.shape[2] != 3 or vel.shape != loc.shape or loc.shape[1] <= max(frames)
                or charges.shape[:2] != (loc.shape[0], loc.shape[3]) or loc.shape[0] < size):
            raise ReproError(f"{directory}: {split} files have loc {loc.shape}, vel {vel.shape}, charges "
                             f"{charges.shape}; expected loc = vel = (systems >= {size}, frames > {max(frames)}, "
                             f"3, n) and charges (systems, n, 1), as the release's generate_dataset.py writes")
        loc, vel = loc[:size].transpose(0, 1, 3, 2), vel[:size].transpose(0, 1, 3, 2)  # (systems, frames, n, 3)
        out[split] = {"x_in": loc[:, frames[0]], "v_in": vel[:, frames[0]], "x_out": loc[:, frames[1]],
                      "charges": charges[:size].reshape(size, -1)}
    return out


class GNN(nn.Module):
    """Fully connected message passing (EGNN's GCL without coordinate updates), recurrent node update:
        m_ij = phi_e(h_i, h_j, q_i q_j, |x_i - x_j|^2),   h_i <- h_i + phi_h(h_i, sum_{j != i} m_ij),
    h_i^0 = W [x_i, v_i]; output phi_out(h_i), the predicted positions themselves (no skip from x_i), as EGNN's GNN
    baseline and the official FA_GNN decode. Input x, v (B, n, 3), charges (B, n); output (B, n, 3).

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

    @staticmethod
    def pairs(n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Ordered pairs (i, j), i != j, grouped by receiver i: pair p = i * (n - 1) + k."""
        receiver = torch.arange(n, device=device).repeat_interleave(n - 1)
        sender = torch.tensor([j for i in range(n) for j in range(n) if j != i], device=device)
        return receiver, sender

    def edge_features(self, x: torch.Tensor, charges: torch.Tensor) -> torch.Tensor:
        """a_ij = (q_i q_j, |x_i - x_j|^2): (B, n, 3), (B, n) -> (B, n (n - 1), 2)."""
        receiver, sender = self.pairs(x.shape[-2], x.device)
        return torch.cat([(charges[..., receiver] * charges[..., sender]).unsqueeze(-1),
                          ((x[..., receiver, :] - x[..., sender, :]) ** 2).sum(-1, keepdim=True)], -1)

    def layer(self, index: int, h: torch.Tensor, edge_attr: torch.Tensor) -> torch.Tensor:
        """One GCL: h (B, n, width) -> (B, n, width)."""
        n = h.shape[-2]
        receiver, sender = self.pairs(n, h.device)
        edge, node = self.edge[index], self.node[index]
        first = edge[0]
        w_receiver, w_sender, w_attr = first.weight.split([self.width, self.width, 2], dim=1)
        pre = ((h @ w_receiver.T)[..., receiver, :] + (h @ w_sender.T)[..., sender, :]
               + edge_attr @ w_attr.T + first.bias)
        messages = edge[1:](pre).unflatten(-2, (n, n - 1)).sum(-2)  # (B, n, width)
        return h + node(torch.cat([h, messages], -1))

    def forward(self, x: torch.Tensor, v: torch.Tensor, charges: torch.Tensor) -> torch.Tensor:
        edge_attr = self.edge_features(x, charges)
        h = self.embed(torch.cat([x, v], -1))
        for index in range(len(self.edge)):
            h = self.layer(index, h, edge_attr)
        return self.out(h)


class FrameAveraged(nn.Module):
    """Input frame only: <phi>_F(x, v) = 1/|F| sum_{(R, t) in F(x)} [R phi(R^T (x - t), R^T v) + t], the
    frame-averaging formula applied once around the whole backbone. E(3)-equivariant for any phi."""

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


class LatentFrameAveraged(nn.Module):
    """FA-GNN as the official n-body model (`FA_GNN` with `create_latent_frame` / `invert_latent_frame`).

    Layer 1 runs in the PCA frames F(x) of the input (centred at its centroid t). After every layer but the
    last, each node's width-w hidden vector is read as w/3 latent 3-vectors, mapped back to the world and
    averaged over the frame, Y = 1/|F| sum_R R y_R, which makes Y equivariant. The n w/3 latent vectors form a
    new cloud, whose own PCA frames F(Y) (centred at Y's centroid) hold the next layer: h_R' = R'^T (Y - mean Y).
    The decoder's output is a position relative to t in the last frame: 1/|F| sum_R' R' phi_out(h_R') + t.
    Frames are computed from detached inputs, as the official code does (`F_ops.detach()`).
    """

    def __init__(self, backbone: GNN, group: str = "o3") -> None:
        super().__init__()
        if backbone.width % 3:
            raise ValueError(f"latent frames read the hidden width as 3-vectors; width {backbone.width} is not a "
                             f"multiple of 3")
        self.backbone, self.group = backbone, group

    def frames(self, cloud: torch.Tensor) -> torch.Tensor:
        return pca_frames(cloud.detach(), self.group)[0].to(cloud.dtype)

    def forward(self, x: torch.Tensor, v: torch.Tensor, charges: torch.Tensor) -> torch.Tensor:
        net, (batch, n) = self.backbone, x.shape[:2]
        rotations, centroid, _ = pca_frames(x.detach(), self.group)
        rotations, centroid = rotations.to(x.dtype), centroid.to(x.dtype)
        size = rotations.shape[1]
        x_f, v_f = to_frame(x, rotations, centroid).flatten(0, 1), to_frame(v, rotations).flatten(0, 1)
        edge_attr = net.edge_features(x_f, charges.unsqueeze(1).expand(-1, size, -1).flatten(0, 1))
        h = net.embed(torch.cat([x_f, v_f], -1))                                   # (B |F|, n, w)
        for index in range(len(net.edge)):
            h = net.layer(index, h, edge_attr)
            if index < len(net.edge) - 1:
                cloud = from_frame(h.reshape(batch, size, n * net.width // 3, 3), rotations)  # (B, n w/3, 3)
                rotations = self.frames(cloud)
                h = to_frame(cloud, rotations, cloud.mean(-2)).reshape(batch * size, n, net.width)
        return from_frame(net.out(h).view(batch, size, n, 3), rotations, centroid)


def constant_velocity(x: torch.Tensor, v: torch.Tensor, horizon: float) -> torch.Tensor:
    """The linear baseline: x + horizon * v."""
    return x + horizon * v
