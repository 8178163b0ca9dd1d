"""Data: scikit-learn's 8x8 digits (cpu scale) and MNIST / Fashion-MNIST from their IDX files (paper scale).

Both map pixels to [-1, 1], as the official ``Normalize((0.5,), (0.5,))`` does, and flatten the images.
Paper scale reads ``<data_dir>/<dataset>/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``; absent files are
downloaded once and checked against the SHA-256 sums of the canonical files.
"""

from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from repro.core.data import fetch
from repro.core.errors import DataUnavailableError
from repro.core.idx import read_idx

CLASSES = 10
MIRRORS = {
    "mnist": "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "fashion_mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
}
# file: SHA-256 of the canonical gzip file
CHECKSUMS = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
}
IMAGES_MAGIC, LABELS_MAGIC = 0x0803, 0x0801   # unsigned bytes, 3 or 1 dimensions


def digits_splits(fractions: tuple[float, float, float], seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """8x8 digits in [-1, 1] (x / 8 - 1), stratified into train / val / test with the given fractions."""
    digits = load_digits()
    x, y = digits.data / 8.0 - 1.0, digits.target
    train_frac, val_frac, test_frac = fractions
    x_train, x_rest, y_train, y_rest = train_test_split(x, y, train_size=train_frac, stratify=y, random_state=seed)
    x_val, x_test, y_val, y_test = train_test_split(x_rest, y_rest, test_size=test_frac / (val_frac + test_frac),
                                                    stratify=y_rest, random_state=seed)
    return {"train": (x_train, y_train), "val": (x_val, y_val), "test": (x_test, y_test)}


def load_idx_dataset(root: Path, dataset: str, validation: int, seed: int
                     ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """MNIST or Fashion-MNIST: train minus ``validation`` held-out images, val, and the 10k test set."""
    if dataset not in CHECKSUMS:
        raise DataUnavailableError(f"unknown dataset {dataset!r}; choose one of {sorted(CHECKSUMS)}")
    root = Path(root) / dataset
    fix = f"delete it and rerun to download it again from {MIRRORS[dataset]}, or place the canonical file there"
    arrays = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        files = {kind: f"{prefix}-{kind}-idx{1 if kind == 'labels' else 3}-ubyte.gz" for kind in ("images", "labels")}
        paths = {kind: root / name if (root / name).exists()
                 else fetch(MIRRORS[dataset] + name, root / name, CHECKSUMS[dataset][name])
                 for kind, name in files.items()}
        images = read_idx(paths["images"], IMAGES_MAGIC, fix)
        labels = read_idx(paths["labels"], LABELS_MAGIC, fix)
        if images.shape[1:] != (28, 28):
            raise DataUnavailableError(f"{paths['images']}: images of shape {images.shape[1:]}, expected (28, 28); "
                                       f"{fix}")
        if len(labels) != len(images):
            raise DataUnavailableError(f"{paths['labels']} holds {len(labels)} labels for {len(images)} images: {fix}")
        if labels.max() >= CLASSES:
            raise DataUnavailableError(f"{paths['labels']}: label {int(labels.max())} outside 0..9; {fix}")
        arrays[split] = (images.reshape(len(images), -1) / 127.5 - 1.0, labels.astype(np.int64))
    x, y = arrays["train"]
    if not 0 < validation < len(x):
        raise DataUnavailableError(f"{root}: {len(x)} training images cannot give {validation} for validation")
    order = np.random.default_rng(seed).permutation(len(x))
    arrays["val"] = (x[order[:validation]], y[order[:validation]])
    arrays["train"] = (x[order[validation:]], y[order[validation:]])
    return arrays
