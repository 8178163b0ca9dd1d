"""Translating-digit sequences: sprites zero-padded to the frame, each moving with its own constant integer
velocity under wrap-around, overlapping sprites summed and clamped to [0, 1] (the official generator's rule).

Frame t of a sequence:  clamp( sum_d roll(sprite_d, (y0_d + vy_d t, x0_d + vx_d t)), 0, 1 ),  t = 0, 1, ...

Sprites: scikit-learn's 8x8 digits / 16 (cpu scale) or MNIST 28x28 / 255 read from its IDX files (paper
scale, downloaded once and checked against the SHA-256 of the canonical files).
"""

from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits

from repro.core.data import fetch
from repro.core.errors import DataUnavailableError
from repro.core.idx import read_idx

MNIST_MIRROR = "https://storage.googleapis.com/cvdf-datasets/mnist/"
# file: SHA-256 of the canonical gzip file
MNIST_CHECKSUMS = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
}
IMAGES_MAGIC = 0x0803   # unsigned bytes, 3 dimensions


def digits_sprites(train: int, seed: int) -> dict[str, np.ndarray]:
    """scikit-learn's 1797 8x8 digits in [0, 1], shuffled and split: ``train`` sprites build the training and
    validation sequences, the rest the test sequences (no sprite is shared)."""
    images = load_digits().images / 16.0
    order = np.random.default_rng(seed).permutation(len(images))
    return {"train": images[order[:train]], "test": images[order[train:]]}


def load_mnist_sprites(root: Path, validation_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """MNIST digits in [0, 1]: the training images minus a held-out fraction (validation sequences are built
    from those) and the 10k test images, from ``<root>/{train,t10k}-images-idx3-ubyte.gz``."""
    root = Path(root)
    fix = f"delete it and rerun to download it again from {MNIST_MIRROR}, or place the canonical file there"
    splits = {}
    for split, name in (("train", "train-images-idx3-ubyte.gz"), ("test", "t10k-images-idx3-ubyte.gz")):
        path = root / name if (root / name).exists() else fetch(MNIST_MIRROR + name, root / name,
                                                                 MNIST_CHECKSUMS[name])
        images = read_idx(path, IMAGES_MAGIC, fix)
        if images.shape[1:] != (28, 28):
            raise DataUnavailableError(f"{path}: images of shape {images.shape[1:]}, expected (28, 28); {fix}")
        if images.max() == 0:
            raise DataUnavailableError(f"{path}: every pixel is 0, not digit images; {fix}")
        splits[split] = images / 255.0
    held_out = int(round(validation_fraction * len(splits["train"])))
    if not 0 < held_out < len(splits["train"]):
        raise DataUnavailableError(f"{root}: {len(splits['train'])} training images cannot hold out "
                                   f"{validation_fraction:.0%} for validation; place the full MNIST files there")
    order = np.random.default_rng(seed).permutation(len(splits["train"]))
    return {"train": splits["train"][order[held_out:]], "val": splits["train"][order[:held_out]],
            "test": splits["test"]}


def pad_to_frame(sprites: np.ndarray, size: int) -> np.ndarray:
    """Zero-pad (N, s, s) sprites to (N, size, size), centred; the odd pixel goes right/bottom."""
    before = (size - sprites.shape[1]) // 2
    after = size - sprites.shape[1] - before
    return np.pad(sprites, ((0, 0), (before, after), (before, after)))


def render(bank: torch.Tensor, index: np.ndarray, start: np.ndarray, velocity: np.ndarray, length: int
           ) -> torch.Tensor:
    """Frames (count, length, 1, H, W) of sprites ``bank[index[n, d]]`` at (y, x) = start[n, d] + velocity[n, d] t."""
    count, digits = index.shape
    size = bank.shape[-1]
    device = bank.device
    t = torch.arange(length, device=device)
    grid = torch.arange(size, device=device)
    frames = torch.zeros(count, length, size, size, device=device)
    for d in range(digits):
        shift = (torch.as_tensor(start[:, d], device=device)[:, None, :]
                 + torch.as_tensor(velocity[:, d], device=device)[:, None, :] * t[None, :, None])  # (count, T, 2)
        # roll(x, s)[y] = x[(y - s) mod size], along y and along x
        rows = (grid[None, None, :] - shift[..., 0:1]) % size                                     # (count, T, H)
        cols = (grid[None, None, :] - shift[..., 1:2]) % size                                     # (count, T, W)
        sprite = torch.as_tensor(index[:, d], device=device)[:, None, None, None]
        frames = frames + bank[sprite, rows[..., :, None], cols[..., None, :]]
    return frames.clamp(0.0, 1.0).unsqueeze(2)


def translating_sequences(bank: torch.Tensor, count: int, length: int, rng: np.random.Generator,
                          v_range: int = 0, velocity: tuple[int, int] | None = None,
                          digits: int = 2) -> torch.Tensor:
    """``count`` sequences (count, length, 1, H, W) on the device of ``bank`` (padded sprites (N, H, W)).

    Each of ``digits`` sprites is drawn uniformly from the bank, starts at a uniform integer position and
    moves with its own integer (vy, vx) uniform on {-v_range..v_range}^2, or with the fixed ``velocity``
    when given (the velocity-generalisation sets, where every sprite moves alike).
    """
    index = rng.integers(0, len(bank), (count, digits))
    if velocity is None:
        velocities = rng.integers(-v_range, v_range + 1, (count, digits, 2))
    else:
        velocities = np.tile(np.asarray(velocity), (count, digits, 1))
    start = rng.integers(0, bank.shape[-1], (count, digits, 2))
    return render(bank, index, start, velocities, length)
