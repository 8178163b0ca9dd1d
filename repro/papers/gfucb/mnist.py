"""MNIST's training set from its original files (gzip-compressed IDX), read with numpy: no torchvision.

scale=paper reads ``<data_dir>/mnist/train-images-idx3-ubyte.gz`` and ``train-labels-idx1-ubyte.gz``; absent
files are downloaded once from the mirror TensorFlow and PyTorch use and checked against the SHA-256 sums of
the canonical files. A file placed there by hand whose sum differs is read as it is (the dry run's small
files are such) and the difference is logged.
"""

import logging
from pathlib import Path

import numpy as np

from repro.core.data import fetch, sha256
from repro.core.errors import DataUnavailableError
from repro.core.idx import read_idx

MIRROR = "https://storage.googleapis.com/cvdf-datasets/mnist/"
FILES = {   # name: (file, SHA-256 of the canonical file, IDX magic number = 0x08 (ubyte) << 8 | dimensions)
    "images": ("train-images-idx3-ubyte.gz", "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
               0x0803),
    "labels": ("train-labels-idx1-ubyte.gz", "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
               0x0801),
}
CLASSES = 10
FIX = f"delete it and rerun to download it again from {MIRROR} (or place the canonical file there)"



def mnist_file(root: Path, name: str, log: logging.Logger | None = None) -> Path:
    """The path of one file, downloaded (and verified) when absent; a present file with another SHA-256 is
    used as placed, with a warning."""
    file, checksum, _ = FILES[name]
    path = Path(root) / file
    if not path.exists():
        return fetch(MIRROR + file, path, checksum)
    if sha256(path) != checksum and log is not None:
        log.warning("%s is not the canonical MNIST file (SHA-256 differs from %s); using it as placed",
                    path, checksum)
    return path


def load_mnist(root: Path, log: logging.Logger | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 784) in [0, 1], labels (N,) in 0..9) of the training set under ``root``."""
    images = read_idx(mnist_file(root, "images", log), FILES["images"][2], FIX)
    labels = read_idx(mnist_file(root, "labels", log), FILES["labels"][2], FIX)
    images_path, labels_path = (Path(root) / FILES[k][0] for k in ("images", "labels"))
    if images.shape[1:] != (28, 28):
        raise DataUnavailableError(f"{images_path}: images of shape {images.shape[1:]}, MNIST's are (28, 28); {FIX}")
    if len(labels) != len(images):
        raise DataUnavailableError(f"{labels_path} holds {len(labels)} labels for {len(images)} images in "
                                   f"{images_path}: the two files are not one set; {FIX}")
    if labels.max() >= CLASSES:
        raise DataUnavailableError(f"{labels_path}: label {int(labels.max())} outside 0..{CLASSES - 1}; {FIX}")
    return images.reshape(len(images), -1) / 255.0, labels.astype(int)
