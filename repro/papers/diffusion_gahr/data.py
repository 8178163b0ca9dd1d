"""Image classes of the paper: C^alpha contour images, disks (a 5-dimensional manifold) and CelebA faces.

The C^alpha and disk generators follow the official ``synthetic_data_generators.py`` (numpy here, vectorised
over images); CelebA is read from the aligned JPEG folder at scale=paper.
"""

from pathlib import Path

import numpy as np

from repro.core.errors import DataUnavailableError

CELEBA_URL = "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html (img_align_celeba.zip, 'Align&Cropped Images')"


def inverse_frequency(n: int, dims: int) -> np.ndarray:
    """1/|k| on the integer frequency grid of an n (or n x n) signal; k = 0 takes its neighbour's value 1."""
    k = np.abs(np.fft.fftfreq(n) * n)
    radius = k if dims == 1 else np.sqrt(k[:, None] ** 2 + k[None, :] ** 2)
    radius = radius.copy()
    radius.flat[0] = 1.0
    return 1.0 / radius


def rescale(values: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Min-max rescale each image (leading axis) to [low, high]."""
    flat = values.reshape(len(values), -1)
    lo, hi = flat.min(1), flat.max(1)
    unit = (values - lo[:, None, None]) / (hi - lo)[:, None, None]
    return unit * (high - low)[:, None, None] + low[:, None, None]


def calpha_images(count: int, size: int, alpha: float, beta: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """C^alpha images: a C^alpha contour between two C^beta backgrounds, mask blurred by a 2x2 box.

    Returns images (count, size, size) in [0, 1] and the contour rows c_j (count, size), already clipped to
    [0, size] (the official code slices rows 0..c_j without clipping, so a negative c_j wraps around).
    """
    rng = np.random.default_rng(seed)
    # Contour: integrate white noise alpha times in Fourier, c = round(size * Re ifft(fft(u) |k|^-alpha)) + size/2.
    u = rng.uniform(-1, 1, (count, size))
    curve = np.fft.ifft(np.fft.fft(u, axis=1) * inverse_frequency(size, 1) ** alpha, axis=1).real
    contour = np.clip(np.round(curve * size).astype(int) + size // 2, 0, size)
    # Backgrounds: Re ifft2(fft2(U) |k|^-beta), one rescaled to [r1, 1], the other to [0, r2].
    fields = [np.fft.ifft2(np.fft.fft2(rng.uniform(-1, 1, (count, size, size))) *
                           inverse_frequency(size, 2) ** beta).real for _ in range(2)]
    bright_first = rng.integers(0, 2, count).astype(bool)
    r1, r2 = rng.uniform(0, 1, count), rng.uniform(0, 1, count)
    bright = [rescale(f, r1, np.ones(count)) for f in fields]
    dark = [rescale(f, np.zeros(count), r2) for f in fields]
    background1 = np.where(bright_first[:, None, None], bright[0], dark[0])
    background2 = np.where(bright_first[:, None, None], dark[1], bright[1])
    # Column j: rows above the contour (index < c_j) take background 2, the others background 1.
    rows = np.arange(size)[None, :, None]
    mask = (rows >= contour[:, None, :]).astype(float)
    # 2x2 box blur with reflect padding, as the official Conv2d(kernel 2, padding 1, reflect) then trim.
    padded = np.pad(mask, ((0, 0), (1, 0), (1, 0)), mode="reflect")
    blurred = (padded[:, :-1, :-1] + padded[:, 1:, :-1] + padded[:, :-1, 1:] + padded[:, 1:, 1:]) / 4
    images = background1 * blurred + background2 * (1 - blurred)
    return images.astype(np.float32), contour


def contour_band(contour: np.ndarray, size: int) -> np.ndarray:
    """Pixels within one row of the contour, in each column (size x size booleans)."""
    rows = np.arange(size)[:, None]
    return np.abs(rows - contour[None, :] + 0.5) <= 1.5


def disk_images(count: int, size: int, supersample: int, min_radius: float,
                seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Disks with random centre, radius, foreground and background grey levels: a 5-dimensional manifold.

    Drawn at ``supersample`` times the size (radius in [min_radius, (S - min_radius) / 2], centre kept inside the
    image), then averaged down in boxes (anti-aliasing), as the official ``circle_dataset`` with translate,
    scale, foreground and background all random. Returns the images and, per pixel, whether the disk's edge
    crosses it or a neighbour (the band where an edge-adapted basis concentrates).
    """
    rng = np.random.default_rng(seed)
    big = size * supersample
    radius = rng.uniform(min_radius, (big - min_radius) / 2, count)
    centre = rng.uniform(radius[:, None], big - radius[:, None], (count, 2))
    foreground, background = rng.uniform(0, 1, count), rng.uniform(0, 1, count)
    grid = np.arange(big) + 0.5
    inside = ((grid[None, :, None] - centre[:, 1, None, None]) ** 2 +
              (grid[None, None, :] - centre[:, 0, None, None]) ** 2) <= radius[:, None, None] ** 2
    images = background[:, None, None] + (foreground - background)[:, None, None] * inside
    images = images.reshape(count, size, supersample, size, supersample).mean((2, 4))
    coverage = inside.reshape(count, size, supersample, size, supersample).mean((2, 4))
    edge = np.pad((coverage > 0) & (coverage < 1), ((0, 0), (1, 1), (1, 1)))
    band = np.zeros_like(edge[:, 1:-1, 1:-1])
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            band |= edge[:, dy:dy + size, dx:dx + size]
    return images.astype(np.float32), band


def load_celeba(root: Path, size: int, limit: int) -> np.ndarray:
    """The first ``limit`` aligned CelebA images, centre-cropped to a square, resized to size x size, grey.

    Reads ``root/img_align_celeba/*.jpg`` (the official archive's layout), sorted by file name.
    """
    from PIL import Image

    folder = root / "img_align_celeba"
    files = sorted(folder.glob("*.jpg"))[:limit]
    if not files:
        raise DataUnavailableError(f"{folder} holds no .jpg images; download img_align_celeba.zip from "
                                   f"{CELEBA_URL} and unzip it into {root}")
    images = np.empty((len(files), size, size), np.float32)
    for i, path in enumerate(files):
        try:
            with Image.open(path) as image:
                grey = image.convert("L")
        except OSError as error:
            raise DataUnavailableError(f"{path} is not a readable JPEG ({error}); re-extract the archive") from error
        width, height = grey.size
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        square = grey.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)
        images[i] = np.asarray(square, np.float32) / 255.0
    if len(files) < limit:
        raise DataUnavailableError(f"{folder} holds {len(files)} images, fewer than the {limit} the subsets need; "
                                   f"unzip the whole archive from {CELEBA_URL}")
    return images
