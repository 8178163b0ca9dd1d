"""Shared 3-D geometry for the point-cloud papers (tinvnn, fa, parot).

- ``shape_dataset``: the cards' eight synthetic surface classes (z is the up axis), one instance per call of
  ``sample_shape`` with a random anisotropic scale, jitter, centring and unit RMS radius;
- ``random_rotations``: Haar-random elements of SO(3), O(3) (reflections included) or rotations about z;
- ``PointNet``: the cards' PointNet-lite, a shared per-point MLP, a max-pool and an MLP head.
"""

import numpy as np
import torch
from scipy.spatial.transform import Rotation
from torch import nn

SHAPES = ("sphere", "ellipsoid", "cube", "cylinder", "cone", "torus", "flat_box", "l_shape")


def _box_surface(n: int, lo: np.ndarray, hi: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """n points uniform on the surface of the axis-aligned box [lo, hi] (faces picked by area)."""
    size = hi - lo
    areas = np.array([size[1] * size[2], size[0] * size[2], size[0] * size[1]]).repeat(2)  # +-x, +-y, +-z faces
    face = rng.choice(6, size=n, p=areas / areas.sum())
    points = lo + rng.random((n, 3)) * size
    axis, upper = face // 2, face % 2
    points[np.arange(n), axis] = np.where(upper == 1, hi[axis], lo[axis])
    return points


def _boxes_surface(n: int, boxes: list[tuple[np.ndarray, np.ndarray]], rng: np.random.Generator) -> np.ndarray:
    """n points on the surfaces of several boxes, each box drawn with probability proportional to its area."""
    areas = np.array([2 * (s[0] * s[1] + s[1] * s[2] + s[0] * s[2]) for s in (hi - lo for lo, hi in boxes)])
    counts = rng.multinomial(n, areas / areas.sum())
    return np.concatenate([_box_surface(c, lo, hi, rng) for c, (lo, hi) in zip(counts, boxes)])


def _disk(n: int, radius: float, z: float, rng: np.random.Generator) -> np.ndarray:
    r, phi = radius * np.sqrt(rng.random(n)), 2 * np.pi * rng.random(n)
    return np.stack([r * np.cos(phi), r * np.sin(phi), np.full(n, z)], axis=1)


def _canonical_shape(name: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 3) points uniform (by area) on the canonical surface ``name``; z is the up axis."""
    if name in ("sphere", "ellipsoid"):
        directions = rng.standard_normal((n, 3))
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        return directions * (np.array([1.0, 0.6, 0.35]) if name == "ellipsoid" else 1.0)
    if name == "cube":
        return _box_surface(n, -np.ones(3), np.ones(3), rng)
    if name == "flat_box":
        half = np.array([1.0, 0.5, 0.05])
        return _box_surface(n, -half, half, rng)
    if name == "l_shape":  # a 2 x 0.5 x 0.5 bar on the ground and a 0.5 x 0.5 x 1.5 post on its end
        return _boxes_surface(n, [(np.zeros(3), np.array([2.0, 0.5, 0.5])),
                                  (np.zeros(3), np.array([0.5, 0.5, 1.5]))], rng)
    if name == "cylinder":  # r = 0.5, h = 2, with caps: side area 2 pi r h, caps 2 pi r^2
        r, h = 0.5, 2.0
        on_side = rng.random(n) < (2 * np.pi * r * h) / (2 * np.pi * r * h + 2 * np.pi * r**2)
        phi, z = 2 * np.pi * rng.random(n), h * (rng.random(n) - 0.5)
        side = np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)
        caps = _disk(n, r, 0.0, rng)
        caps[:, 2] = np.where(rng.random(n) < 0.5, -h / 2, h / 2)
        return np.where(on_side[:, None], side, caps)
    if name == "cone":  # r = 0.7, h = 1.5, apex up, with its base; lateral area pi r l
        r, h = 0.7, 1.5
        lateral, base = np.pi * r * np.hypot(r, h), np.pi * r**2
        on_side = rng.random(n) < lateral / (lateral + base)
        s, phi = np.sqrt(rng.random(n)), 2 * np.pi * rng.random(n)  # s = distance from the apex / slant length
        side = np.stack([r * s * np.cos(phi), r * s * np.sin(phi), h * (1 - s)], axis=1)
        return np.where(on_side[:, None], side, _disk(n, r, 0.0, rng))
    if name == "torus":  # R = 0.8, r = 0.25; area element (R + r cos theta) -> rejection sampling of theta
        big, small = 0.8, 0.25
        theta = np.empty(0)
        while len(theta) < n:
            proposal = 2 * np.pi * rng.random(2 * n)
            keep = rng.random(2 * n) * (big + small) < big + small * np.cos(proposal)
            theta = np.concatenate([theta, proposal[keep]])
        theta, phi = theta[:n], 2 * np.pi * rng.random(n)
        ring = big + small * np.cos(theta)
        return np.stack([ring * np.cos(phi), ring * np.sin(phi), small * np.sin(theta)], axis=1)
    raise ValueError(f"unknown shape {name!r}; choose from {SHAPES}")


def sample_shape(name: str, n_points: int, rng: np.random.Generator, jitter: float = 0.01) -> np.ndarray:
    """One instance: canonical surface, anisotropic scale U[0.8, 1.2]^3, jitter, centred, unit RMS radius."""
    points = _canonical_shape(name, n_points, rng) * rng.uniform(0.8, 1.2, size=3)
    points = points + jitter * rng.standard_normal(points.shape)
    points = points - points.mean(0)
    return points / np.sqrt((points**2).sum(1).mean())


def shape_dataset(n_per_class: int, n_points: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Points (n_per_class * 8, n_points, 3) float32 and labels (index into SHAPES), canonical pose."""
    rng = np.random.default_rng(seed)
    clouds = [sample_shape(name, n_points, rng) for name in SHAPES for _ in range(n_per_class)]
    labels = np.repeat(np.arange(len(SHAPES)), n_per_class)
    return np.stack(clouds).astype(np.float32), labels


def random_rotations(n: int, rng: np.random.Generator, kind: str = "so3") -> np.ndarray:
    """(n, 3, 3) Haar-random orthogonal matrices: ``so3``, ``o3`` (+-R, reflections included) or ``z``."""
    if kind == "so3":
        return Rotation.random(n, random_state=rng).as_matrix()
    if kind == "o3":
        return Rotation.random(n, random_state=rng).as_matrix() * rng.choice([-1.0, 1.0], size=(n, 1, 1))
    if kind == "z":
        return Rotation.from_euler("z", 2 * np.pi * rng.random((n, 1))).as_matrix()
    if kind == "none":
        return np.broadcast_to(np.eye(3), (n, 3, 3)).copy()
    raise ValueError(f"unknown rotation kind {kind!r}; choose so3, o3, z or none")


def rotate(points: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """Apply one rotation per cloud: (B, N, 3) x (B, 3, 3) -> (B, N, 3), x_i -> R x_i."""
    return np.einsum("bij,bnj->bni", rotations, points).astype(points.dtype)


def fix_signs(coords: torch.Tensor, tol: float = 1e-9) -> torch.Tensor:
    """Flip each column of (..., N, k) so its third moment sum_i y_i^3 is positive; when that moment vanishes
    (to tol relative), the entry of largest magnitude is made positive instead."""
    moment = (coords**3).sum(-2)
    scale = (coords**2).sum(-2).clamp_min(1e-300) ** 1.5
    largest = torch.gather(coords, -2, coords.abs().argmax(-2, keepdim=True)).squeeze(-2)
    sign = torch.where(moment.abs() > tol * scale, moment.sign(), largest.sign())
    return coords * torch.where(sign == 0, torch.ones_like(sign), sign).unsqueeze(-2)


def pca_canonicalise(points: np.ndarray) -> np.ndarray:
    """Clouds (B, N, 3) -> PCA scores (centred, covariance eigenbasis, largest variance first, signs fixed)."""
    x = torch.as_tensor(points, dtype=torch.float64)
    x = x - x.mean(-2, keepdim=True)
    _, vectors = torch.linalg.eigh(x.transpose(-2, -1) @ x)
    return fix_signs(x @ vectors.flip(-1)).float().numpy()


class PointNet(nn.Module):
    """PointNet-lite: h_i = MLP(x_i) (widths 64-128-256 by default), g = max_i h_i, logits = MLP(g).

    Input (B, N, in_dim); output (B, n_classes). BatchNorm-free so that a single cloud is evaluated
    exactly like a batch (needed by the invariance tests).
    """

    def __init__(self, n_classes: int, in_dim: int = 3, widths: tuple[int, ...] = (64, 128, 256),
                 head: tuple[int, ...] = (128,), dropout: float = 0.0) -> None:
        super().__init__()
        layers, last = [], in_dim
        for width in widths:
            layers += [nn.Linear(last, width), nn.ReLU()]
            last = width
        self.point_mlp = nn.Sequential(*layers)
        layers = []
        for width in head:
            layers += [nn.Linear(last, width), nn.ReLU(), nn.Dropout(dropout)]
            last = width
        self.head = nn.Sequential(*layers, nn.Linear(last, n_classes))

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        return self.head(self.point_mlp(points).amax(dim=1))


MODELNET40_URL = "http://modelnet.cs.princeton.edu/ModelNet40.zip"


def mesh_to_cloud(mesh, n_points: int, seed: int) -> np.ndarray:
    """Sample n_points on a mesh (torch_geometric Data with pos, face) by area; centred, unit RMS radius."""
    from torch_geometric.transforms import SamplePoints

    torch.manual_seed(seed)
    points = SamplePoints(n_points)(mesh.clone()).pos.double().numpy()
    points = points - points.mean(0)
    return (points / np.sqrt((points**2).sum(1).mean())).astype(np.float32)


def load_modelnet40(data_dir, n_points: int, train: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """ModelNet40 (z-up meshes, 9843 train / 2468 test) as (M, n_points, 3) clouds and labels.

    Downloads the Princeton zip through repro.core.data.fetch into data_dir/modelnet40 (DataUnavailableError
    offline), unpacks it where torch_geometric.datasets.ModelNet expects its raw files, and lets PyG parse the
    OFF meshes.
    """
    import zipfile
    from pathlib import Path

    from torch_geometric.datasets import ModelNet

    from repro.core.data import fetch

    root = Path(data_dir) / "modelnet40"
    if not (root / "raw").exists():
        archive = fetch(MODELNET40_URL, root / "ModelNet40.zip")
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(root)
        (root / "ModelNet40").rename(root / "raw")
    from repro.core.pyg_cache import sealed_processed

    try:
        with sealed_processed(root / "processed"):
            dataset = ModelNet(str(root), name="40", train=train)
    except (IndexError, ValueError, RuntimeError) as error:    # PyG parses every OFF file of both splits here
        from repro.core.errors import DataUnavailableError

        raise DataUnavailableError(f"the ModelNet40 files under {root / 'raw'} could not be read ({error}); delete "
                                   f"{root} and let it download again (or restore the OFF files)") from error
    check_meshes(dataset, root / "raw", "train" if train else "test")
    clouds = [mesh_to_cloud(mesh, n_points, seed + i) for i, mesh in enumerate(dataset)]
    return np.stack(clouds), np.array([int(mesh.y) for mesh in dataset])


def check_meshes(dataset, folder, split: str) -> None:
    """Refuse an empty split, a mesh without faces, non-finite vertices, face indices outside the vertex list
    and labels outside the 40 classes, naming the folder and the fix."""
    from repro.core.errors import DataUnavailableError

    fix = f"delete {folder.parent} and let it download again (or restore the ModelNet40 OFF files)"
    if len(dataset) == 0:
        raise DataUnavailableError(f"no {split} meshes under {folder}; {fix}")
    for index, mesh in enumerate(dataset):
        where = f"{split} mesh {index} under {folder}"
        face = mesh.face
        if face is None or face.numel() == 0 or mesh.pos.numel() == 0:
            raise DataUnavailableError(f"{where} has no vertices or faces; {fix}")
        if not torch.isfinite(mesh.pos).all():
            raise DataUnavailableError(f"{where} has non-finite vertex coordinates; {fix}")
        if int(face.min()) < 0 or int(face.max()) >= mesh.pos.shape[0]:
            raise DataUnavailableError(f"{where} has face indices outside its {mesh.pos.shape[0]} vertices; {fix}")
        if not 0 <= int(mesh.y) < 40:
            raise DataUnavailableError(f"{where} has label {int(mesh.y)}, outside ModelNet40's 40 classes; {fix}")
