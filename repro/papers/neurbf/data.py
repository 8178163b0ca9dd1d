"""Images to fit: scikit-image's camera (cpu scale) and the DIV2K validation set (paper scale), values in [0, 1],
coordinates (x, y) of pixel centres in [0, 1]^2; and the gradient magnitude that weights the k-means."""

from pathlib import Path

import numpy as np
from scipy import ndimage
from skimage import data as skdata
from skimage import io
from skimage.transform import resize

from repro.core.data import fetch_zip
from repro.core.errors import DataUnavailableError

DIV2K_URL = "https://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_valid_HR.zip"


def skimage_image(name: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(resized image (size, size, c), original image (H, W, c)), floats in [0, 1]."""
    original = getattr(skdata, name)().astype(np.float64) / 255.0
    if original.ndim == 2:
        original = original[..., None]
    return resize(original, (size, size), order=3, anti_aliasing=True).clip(0, 1), original


def fetch_div2k(directory: Path) -> None:
    """Download DIV2K_valid_HR.zip into ``directory`` and unzip it there, unless its PNGs are already present.
    No checksum is published for the archive, so none is pinned; offline, ``fetch_zip`` fails with one line saying
    what to download and where to put it."""
    if any((directory / "DIV2K_valid_HR").glob("*.png")):
        return
    fetch_zip(DIV2K_URL, directory / "DIV2K_valid_HR.zip", directory)


def load_div2k(directory: Path, count: int) -> list[tuple[str, np.ndarray]]:
    """The first ``count`` DIV2K validation HR images (0801.png ...) as (name, (H, W, 3) floats in [0, 1])."""
    folder = directory / "DIV2K_valid_HR"
    files = sorted(folder.glob("*.png"))[:count]
    if not files:
        raise DataUnavailableError(
            f"no PNG images in {folder}; download {DIV2K_URL} and unzip it into {directory} (scale=paper needs it)")
    images = []
    for path in files:
        image = io.imread(path)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 16:
            raise DataUnavailableError(f"{path}: expected an 8-bit RGB image, got {image.dtype} {image.shape}; "
                                       f"re-extract {DIV2K_URL}")
        images.append((path.stem, image.astype(np.float64) / 255.0))
    return images


def pixel_centres(height: int, width: int) -> np.ndarray:
    """(x, y) of every pixel centre in row-major order, shape (H*W, 2): pixel (row i, column j) is at
    ((j + 0.5) / W, (i + 0.5) / H)."""
    y, x = np.meshgrid((np.arange(height) + 0.5) / height, (np.arange(width) + 0.5) / width, indexing="ij")
    return np.stack([x.ravel(), y.ravel()], 1)


def gradient_magnitude(image: np.ndarray) -> np.ndarray:
    """|grad| per pixel from normalised Sobel filters (kernel / 8, as kornia's SpatialGradient), summed over
    channels in quadrature, shape (H*W,)."""
    squared = sum(ndimage.sobel(image[..., c], axis=a, mode="nearest") ** 2 / 64
                  for c in range(image.shape[2]) for a in (0, 1))
    return np.sqrt(squared).ravel()
