"""Data: scikit-learn's 8x8 digits (cpu scale) and CIFAR-10 from its binary archive (paper scale).

Paper scale reads ``<data_dir>/cifar10/cifar-10-binary.tar.gz`` (downloaded once and checked against the
SHA-256 of the canonical archive when absent; a file placed there by hand with another sum is read as placed,
with a warning). The binary version holds raw bytes (1 label byte + 3072 pixel bytes per image), so nothing
is unpickled.
"""

import logging
import tarfile
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from repro.core.data import fetch, sha256
from repro.core.errors import DataUnavailableError

CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR_SHA256 = "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"
CIFAR_MEMBERS = {"train": [f"cifar-10-batches-bin/data_batch_{i}.bin" for i in range(1, 6)],
                 "test": ["cifar-10-batches-bin/test_batch.bin"]}
RECORD = 1 + 3 * 32 * 32


def digits_splits(train: int, val: int, test: int, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Stratified splits of the 1797 digits as (n, 1, 8, 8) images in [0, 1] and labels."""
    digits = load_digits()
    images, labels = digits.images[:, None] / 16.0, digits.target
    if train + val + test > len(labels):
        raise ValueError(f"train + val + test = {train + val + test} exceeds the {len(labels)} digits")
    rest_x, test_x, rest_y, test_y = train_test_split(images, labels, test_size=test, stratify=labels,
                                                      random_state=seed)
    train_x, val_x, train_y, val_y = train_test_split(rest_x, rest_y, train_size=train, test_size=val,
                                                      stratify=rest_y, random_state=seed)
    return {"train": (train_x, train_y), "val": (val_x, val_y), "test": (test_x, test_y)}


def cifar10_splits(root: Path, validation: int, seed: int, log: logging.Logger | None = None
                   ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """CIFAR-10 as (n, 3, 32, 32) images in [0, 1] and labels; ``validation`` training images held out."""
    path = Path(root) / "cifar10" / "cifar-10-binary.tar.gz"
    fix = f"delete it and rerun to download it again from {CIFAR_URL}, or place the canonical archive there"
    if not path.exists():
        fetch(CIFAR_URL, path, CIFAR_SHA256)
    elif log is not None and sha256(path) != CIFAR_SHA256:
        log.warning("%s is not the canonical CIFAR-10 archive (SHA-256 differs); using it as placed", path)
    arrays = {}
    try:
        with tarfile.open(path, "r:gz") as archive:
            for split, members in CIFAR_MEMBERS.items():
                blobs = []
                for member in members:
                    handle = archive.extractfile(member)
                    if handle is None:
                        raise DataUnavailableError(f"{path}: {member} is not a file; {fix}")
                    blobs.append(handle.read())
                arrays[split] = np.frombuffer(b"".join(blobs), dtype=np.uint8)
    except (tarfile.TarError, EOFError, OSError, KeyError) as error:
        raise DataUnavailableError(f"{path} is not a readable CIFAR-10 binary archive ({error}): {fix}") from error
    splits = {}
    for split, raw in arrays.items():
        if raw.size == 0 or raw.size % RECORD:
            raise DataUnavailableError(f"{path}: the {split} batches hold {raw.size} bytes, not a positive multiple "
                                       f"of the {RECORD}-byte record; {fix}")
        records = raw.reshape(-1, RECORD)
        labels = records[:, 0].astype(np.int64)
        if labels.max() > 9:
            raise DataUnavailableError(f"{path}: label {int(labels.max())} in the {split} batches, outside 0..9; {fix}")
        splits[split] = (records[:, 1:].reshape(-1, 3, 32, 32) / 255.0, labels)
    x, y = splits["train"]
    if not 0 < validation < len(x):
        raise DataUnavailableError(f"{path}: {len(x)} training images cannot give {validation} for validation")
    order = np.random.default_rng(seed).permutation(len(x))
    splits["val"] = (x[order[:validation]], y[order[:validation]])
    splits["train"] = (x[order[validation:]], y[order[validation:]])
    return splits
