"""Digits on a canvas, their affine and projective warps, and the paper's affNIST / homNIST files.

cpu scale: sklearn's 8x8 digits (0..16), divided by 16, upsampled 2x bilinearly and centred on a zero canvas:
the "just centred" training set. Test sets: the held-out digits as they are (clean), under random affine
warps g = T R(theta) Sh(s) diag(sx, sy) about the canvas centre (affine), and under the same warps with
projective terms in the third row (homography).

paper scale: affNIST (40x40; training on the just-centred training split, testing on the 32 affine versions
of each MNIST test digit) downloaded from its Toronto page, and homNIST placed by hand.
Images are returned as uint8 or float tensors in [0, 1]; models see (x - 0.5) / 0.5 as in the reference.
"""

import math
import zipfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import io
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from repro.core.data import fetch, require
from repro.core.errors import ConfigError, DataUnavailableError

AFFNIST_URL = "https://www.cs.toronto.edu/~tijmen/affNIST/32x"
# (folder, file) -> role; the reference downloads exactly these archives. No SHA-256 is published for them.
AFFNIST_FILES = {"train": ("just_centered", "training.mat"), "clean": ("just_centered", "test.mat"),
                 "affine": ("transformed", "test.mat")}
AFFNIST_SIZE = 40


def centred_digits(canvas: int) -> tuple[torch.Tensor, np.ndarray]:
    """All 1,797 sklearn digits, upsampled to 16x16 and centred on a canvas x canvas zero image, in [0, 1]."""
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16.0
    images = F.interpolate(images, scale_factor=2, mode="bilinear", align_corners=False).clamp(0, 1)
    border = canvas - images.shape[-1]
    if border < 0:
        raise ValueError(f"canvas {canvas} is smaller than the 16x16 digits")
    before = border // 2
    return F.pad(images, (before, border - before, before, border - before)), digits.target.astype(np.int64)


def stratified_split(labels: np.ndarray, sizes: dict[str, int], seed: int) -> dict[str, np.ndarray]:
    """Disjoint stratified index sets of the given sizes (in order), drawn with ``seed``."""
    rest, out = np.arange(len(labels)), {}
    names = list(sizes)
    for name in names[:-1]:
        out[name], rest = train_test_split(rest, train_size=sizes[name], stratify=labels[rest], random_state=seed)
    last = sizes[names[-1]]
    out[names[-1]] = rest if last >= len(rest) else train_test_split(
        rest, train_size=last, stratify=labels[rest], random_state=seed)[0]
    return out


def warp(images: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
    """Warp each image by its 3x3 matrix H acting on pixel coordinates centred on the canvas: the output at p
    is the input at H^-1 p (bilinear, zero outside), so that a point x of the input moves to H x."""
    n, _, size, _ = images.shape
    base = F.affine_grid(torch.eye(2, 3, device=images.device).expand(n, 2, 3), list(images.shape),
                         align_corners=False)  # normalised (x, y), pixel centres
    points = torch.cat([base * (size / 2), torch.ones_like(base[..., :1])], -1)  # pixel units, homogeneous
    source = torch.einsum("nij,nhwj->nhwi", torch.linalg.inv(matrices), points)
    grid = source[..., :2] / source[..., 2:] / (size / 2)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def ink_boxes(images: torch.Tensor) -> torch.Tensor:
    """Corners (n, 4, 2) of each image's ink bounding box, in centred pixel coordinates."""
    size = images.shape[-1]
    coords = torch.arange(size, dtype=torch.float32) + 0.5 - size / 2
    rows, cols = images[:, 0].amax(2) > 0, images[:, 0].amax(1) > 0
    big = torch.tensor(float(size))

    def extent(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.where(mask, coords, big).amin(1) - 0.5, torch.where(mask, coords, -big).amax(1) + 0.5)

    (y0, y1), (x0, x1) = extent(rows), extent(cols)
    return torch.stack([torch.stack([x0, y0], -1), torch.stack([x1, y0], -1), torch.stack([x0, y1], -1),
                        torch.stack([x1, y1], -1)], 1)


def random_warps(images: torch.Tensor, ranges: dict, projective: float, generator: torch.Generator) -> torch.Tensor:
    """One random warp per image: H = T R(theta) Sh(s) diag(sx, sy) (+ projective terms p1, p2 in the third
    row when ``projective`` > 0), with theta ~ U[+-rotation_deg], s ~ U[+-shear], sx, sy ~ U[scale] and the
    translation uniform on [+-translation] per axis, restricted so that the ink box stays on the canvas (the
    same law as rejecting translations that push ink off it)."""
    n, size = images.shape[0], images.shape[-1]

    def uniform(low: float, high: float, *shape: int) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, *shape, generator=generator)

    theta = uniform(-1, 1) * math.radians(ranges["rotation_deg"])
    shear = uniform(-ranges["shear"], ranges["shear"])
    scales = uniform(*ranges["scale"], 2)
    linear = torch.zeros(n, 2, 2)
    linear[:, 0, 0], linear[:, 1, 1] = 1.0, 1.0
    linear[:, 0, 1] = shear
    rot = torch.stack([torch.stack([theta.cos(), -theta.sin()], -1), torch.stack([theta.sin(), theta.cos()], -1)], -2)
    linear = rot @ linear @ torch.diag_embed(scales)
    corners = torch.einsum("nij,nkj->nki", linear, ink_boxes(images))
    half, reach = size / 2, ranges["translation"]
    low = torch.clamp(-half - corners.amin(1), min=-reach)
    high = torch.clamp(half - corners.amax(1), max=reach)
    shift = low + (high - low).clamp(min=0) * torch.rand(n, 2, generator=generator)
    matrices = torch.zeros(n, 3, 3)
    matrices[:, :2, :2], matrices[:, :2, 2], matrices[:, 2, 2] = linear, shift, 1.0
    if projective > 0:
        matrices[:, 2, :2] = uniform(-projective, projective, 2)
    return matrices


def digits_splits(sizes: dict[str, int], canvas: int, warps_per_digit: int, ranges: dict, projective: float,
                  seed: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """train / val (just centred) and test as clean, affine (``warps_per_digit`` warps of each test digit) and
    homography versions; all drawn from ``seed``."""
    images, labels = centred_digits(canvas)
    index = stratified_split(labels, sizes, seed)
    generator = torch.Generator().manual_seed(seed)
    labels_t = torch.tensor(labels)
    test = images[index["test"]].repeat(warps_per_digit, 1, 1, 1)
    test_labels = labels_t[index["test"]].repeat(warps_per_digit)
    return {
        "train": (images[index["train"]], labels_t[index["train"]]),
        "val": (images[index["val"]], labels_t[index["val"]]),
        "clean": (images[index["test"]], labels_t[index["test"]]),
        "affine": (warp(test, random_warps(test, ranges, 0.0, generator)), test_labels),
        "homography": (warp(test, random_warps(test, ranges, projective, generator)), test_labels),
    }


def read_affnist(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """One affNIST .mat file: 'affNISTdata' with 'image' (1600 x n, uint8) and 'label_int' (n,)."""
    try:
        data = io.loadmat(path, simplify_cells=True)["affNISTdata"]
        images, labels = np.asarray(data["image"]), np.asarray(data["label_int"]).astype(np.int64).reshape(-1)
    except (KeyError, ValueError, TypeError, OSError) as error:
        raise DataUnavailableError(f"{path} is not an affNIST .mat file ({error}); delete it and rerun to "
                                   "download it again") from error
    if images.ndim != 2 or images.shape[0] != AFFNIST_SIZE ** 2 or images.shape[1] != len(labels) or not len(labels):
        raise DataUnavailableError(f"{path}: expected 'image' of shape (1600, n) with n = {len(labels)} labels, got "
                                   f"{images.shape}; delete it and rerun to download it again")
    if labels.min() < 0 or labels.max() > 9 or images.min() < 0 or images.max() > 255:
        raise DataUnavailableError(f"{path}: labels must lie in 0..9 and pixels in 0..255; the file is damaged, "
                                   "delete it and rerun")
    # The reference reshapes the transposed (n, 1600) array row-major into 40 x 40.
    pixels = torch.from_numpy(np.ascontiguousarray(images.T).astype(np.uint8)).view(-1, 1, AFFNIST_SIZE, AFFNIST_SIZE)
    return pixels, torch.from_numpy(labels)


def affnist_file(root: Path, folder: str, name: str) -> Path:
    """data/affnist/<folder>/<name>, extracted from <name>.zip downloaded from the affNIST page if absent."""
    target = root / folder / name
    if not target.exists():
        archive = fetch(f"{AFFNIST_URL}/{folder}/{name}.zip", root / folder / f"{name}.zip")
        try:
            with zipfile.ZipFile(archive) as zipped:
                member = next((m for m in zipped.namelist() if Path(m).name == name), None)
                if member is None:
                    raise DataUnavailableError(f"{archive} holds no {name}; delete it and rerun")
                target.write_bytes(zipped.read(member))
        except zipfile.BadZipFile as error:
            raise DataUnavailableError(f"{archive} is not a zip archive ({error}); delete it and rerun") from error
    return target


def read_homnist(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """homNIST_test.mat: 'img_data' (n, 40, 40) and 'labels' (n,), pixels in [0, 1] or [0, 255]."""
    require(path, "homNIST (homNIST_test.mat)", "it has no public download; place the file released with the "
            "paper there (keys img_data, labels, hom_matrices)")
    try:
        data = io.loadmat(path, simplify_cells=True)
        images = np.asarray(data["img_data"], dtype=np.float32)
        labels = np.asarray(data["labels"]).astype(np.int64).reshape(-1)
    except (KeyError, ValueError, TypeError, OSError) as error:
        raise DataUnavailableError(f"{path} is not a homNIST .mat file with keys img_data, labels ({error})") from error
    square = images.ndim == 3 and images.shape[1:] == (AFFNIST_SIZE, AFFNIST_SIZE)
    if not square or len(images) != len(labels) or not len(labels):
        raise DataUnavailableError(f"{path}: expected img_data of shape (n, 40, 40) with n labels, got {images.shape} "
                                   f"and {len(labels)} labels")
    if not np.isfinite(images).all() or labels.min() < 0 or labels.max() > 9 or images.min() < 0:
        raise DataUnavailableError(f"{path}: pixels must be finite and non-negative and labels in 0..9")
    scale = 255.0 if images.max() > 1.0 else 1.0
    return torch.from_numpy(images / scale)[:, None], torch.from_numpy(labels)


def affnist_splits(data_dir: Path, validation: int, max_images: int | None,
                   seed: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """train / val from the just-centred training file (val: a held-out slice, clean), clean test, the affine
    test (32 warps of each MNIST test digit) and homNIST; every split cut to its first ``max_images`` when given
    (the dry run)."""
    root = data_dir / "affnist"
    parts = {role: read_affnist(affnist_file(root, *where)) for role, where in AFFNIST_FILES.items()}
    parts["homography"] = read_homnist(data_dir / "homNIST" / "homNIST_test.mat")
    images, labels = parts.pop("train")
    if validation < 1 or validation >= len(labels):
        raise ConfigError(f"paper.data.validation={validation} must lie in 1..{len(labels) - 1} (the size of the "
                          "clean validation slice of affNIST's training file)")
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    parts["val"], parts["train"] = (images[order[:validation]], labels[order[:validation]]), (
        images[order[validation:]], labels[order[validation:]])
    return {name: (x[:max_images], y[:max_images]) for name, (x, y) in parts.items()}
