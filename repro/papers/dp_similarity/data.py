"""Data: sklearn's digits (pixels 0..16, so R = 16; shipped with scikit-learn) and a Gaussian mixture in [0, 1]^d."""

from pathlib import Path
from typing import NamedTuple

import numpy as np
from sklearn.datasets import load_digits

from repro.core.data import require


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


def load_embeddings(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(X_private, y_private, X_test, y_test) from an .npz with train_x, train_y, test_x, test_y
    (CIFAR-10 embedded by a pretrained network: the paper's setting; the network is the user's choice)."""
    require(Path(path), "CIFAR-10 embeddings (.npz with train_x, train_y, test_x, test_y)",
            "embed torchvision's CIFAR-10 train/test images with a pretrained image network (the paper's network "
            "is not named in our notes) and save the four arrays with numpy.savez at this path")
    with np.load(path) as arrays:
        missing = {"train_x", "train_y", "test_x", "test_y"} - set(arrays.files)
        if missing:
            raise ValueError(f"{path} lacks arrays {sorted(missing)}; it needs train_x, train_y, test_x, test_y")
        return (arrays["train_x"].astype(float), arrays["train_y"].astype(int), arrays["test_x"].astype(float),
                arrays["test_y"].astype(int))
