"""Data: sklearn's digits (pixels 0..16, so R = 16; shipped with scikit-learn) and a Gaussian mixture in [0, 1]^d."""

import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np
from sklearn.datasets import load_digits

from repro.core.data import require
from repro.core.errors import DataUnavailableError


class DigitsSplit(NamedTuple):
    """A random split of the 1797 digits (pixels in [0, 16]): private data, a public held-out split (for
    bandwidths and other choices; never the queries), and the queries / test set."""

    private: np.ndarray
    private_labels: np.ndarray
    public: np.ndarray
    queries: np.ndarray
    query_labels: np.ndarray


def digits_split(private: int, public: int, seed: int) -> DigitsSplit:
    features, labels = load_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(labels))
    head, middle, tail = order[:private], order[private:private + public], order[private + public:]
    return DigitsSplit(features[head], labels[head], features[middle], features[tail], labels[tail])


def gaussian_mixture(count: int, dim: int, centres: int, sd: float, rng: np.random.Generator,
                     centre_points: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """count points around `centres` uniform centres in [0, 1]^dim (sd per coordinate), clipped to [0, 1].
    Returns (points, centre_points) so that queries can be drawn from the same mixture."""
    if centre_points is None:
        centre_points = rng.uniform(0, 1, size=(centres, dim))
    labels = rng.integers(len(centre_points), size=count)
    return np.clip(centre_points[labels] + sd * rng.normal(size=(count, dim)), 0, 1), centre_points


EMBEDDINGS_HOW = ("embed torchvision's CIFAR-10 train/test images with a pretrained image network (the paper's "
                  "network is not named in our notes) and save train_x (n, d) float, train_y (n,) int in 0..9, "
                  "test_x (m, d), test_y (m,) with numpy.savez at this path")


def load_embeddings(path: Path, classes: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(X_private, y_private, X_test, y_test) from an .npz with train_x, train_y, test_x, test_y
    (CIFAR-10 embedded by a pretrained network: the paper's setting; the network is the user's choice).

    Read without pickle; every array is checked (shapes, finite values, integer labels in 0..classes-1)."""
    require(Path(path), "CIFAR-10 embeddings (.npz with train_x, train_y, test_x, test_y)", EMBEDDINGS_HOW)

    def bad(problem: str) -> DataUnavailableError:
        return DataUnavailableError(f"{path}: {problem}; recreate it: {EMBEDDINGS_HOW}")

    try:
        with np.load(path, allow_pickle=False) as arrays:
            missing = {"train_x", "train_y", "test_x", "test_y"} - set(arrays.files)
            if missing:
                raise bad(f"lacks arrays {sorted(missing)} (it needs train_x, train_y, test_x, test_y)")
            loaded = {name: arrays[name] for name in ("train_x", "train_y", "test_x", "test_y")}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:   # not an npz, or object arrays
        raise bad(f"not a readable .npz of numeric arrays ({error})") from error
    for split in ("train", "test"):
        x, y = loaded[f"{split}_x"], loaded[f"{split}_y"]
        if x.ndim != 2 or len(x) == 0 or x.shape[1] == 0 or not np.issubdtype(x.dtype, np.number):
            raise bad(f"{split}_x has shape {x.shape} and dtype {x.dtype}; expected a non-empty numeric (n, d) array")
        if not np.isfinite(x).all():
            raise bad(f"{split}_x holds {int((~np.isfinite(x)).sum())} non-finite values")
        if y.shape != (len(x),):
            raise bad(f"{split}_y has shape {y.shape}; expected ({len(x)},), one label per row of {split}_x")
        if not np.issubdtype(y.dtype, np.number) or not np.array_equal(y, np.round(y)) or y.min() < 0 or \
                y.max() >= classes:
            raise bad(f"{split}_y must hold integer labels in 0..{classes - 1} (found {y.dtype}, "
                      f"range {y.min()}..{y.max()})")
    if loaded["train_x"].shape[1] != loaded["test_x"].shape[1]:
        raise bad(f"train_x has {loaded['train_x'].shape[1]} features, test_x {loaded['test_x'].shape[1]}: "
                  "embed both splits with the same network")
    return (loaded["train_x"].astype(float), loaded["train_y"].astype(int), loaded["test_x"].astype(float),
            loaded["test_y"].astype(int))
