"""Data: ill-conditioned SPD classes (generated), region covariances of sklearn's digits (shipped), and
the MAMEM-SSVEP-II EEG trials of the paper (scale=paper, the per-subject MAT files of the official code)."""

from pathlib import Path

import numpy as np
from scipy.linalg import expm

from repro.core.data import fetch
from repro.core.errors import DataUnavailableError

# The official repository at a fixed commit, so that the pinned SHA-256 of each file (conf/paper_scale) stays valid.
MAMEM_COMMIT = "1ec323214a1f3444afc430c35e2c3b6efd4852c8"
MAMEM_URL = ("https://raw.githubusercontent.com/jjscc/GBWBN/" + MAMEM_COMMIT
             + "/GBWBN_SPDNet/experiments/data/MAMEM/U{subject:03d}.mat")
MAMEM_CHANNELS, MAMEM_CLASSES = 8, 5


def random_skew(n: int, rng: np.random.Generator, std: float) -> np.ndarray:
    a = rng.normal(0.0, std, (n, n))
    return np.triu(a, 1) - np.triu(a, 1).T


def ill_conditioned_classes(n: int, classes: int, kappa: float, per_class: int, template_std: float,
                            rotation_std: float, jitter_std: float, draws: int, ridge: float,
                            template_rng: np.random.Generator, sample_rng: np.random.Generator
                            ) -> tuple[np.ndarray, np.ndarray]:
    """Class c has template U_c diag(lam) U_c^T, lam_j = 10^(-kappa (j-1)/(n-1)) (condition number 10^kappa),
    U_c = expm(S_c). A sample rotates it by R = expm(rotation_std * skew), jitters its eigenvalues by
    exp(N(0, jitter_std^2)), and is replaced by the sample covariance of `draws` Gaussian vectors (+ ridge I)."""
    lam = 10.0 ** (-kappa * np.arange(n) / (n - 1))
    bases = [expm(random_skew(n, template_rng, template_std)) for _ in range(classes)]
    matrices, labels = [], []
    for c, basis in enumerate(bases):
        for _ in range(per_class):
            rotation = expm(rotation_std * random_skew(n, sample_rng, 1.0)) @ basis
            jittered = lam * np.exp(sample_rng.normal(0.0, jitter_std, n))
            factor = rotation * np.sqrt(jittered)  # rotation diag(jittered)^1/2
            z = sample_rng.standard_normal((draws, n)) @ factor.T
            matrices.append(np.cov(z, rowvar=False) + ridge * np.eye(n))
            labels.append(c)
    order = sample_rng.permutation(len(labels))
    return np.stack(matrices)[order], np.asarray(labels)[order]


def region_covariance(image: np.ndarray, ridge: float) -> np.ndarray:
    """Covariance over the pixels of [x, y, I, |dI/dx|, |dI/dy|, |d2I/dx2|, |d2I/dy2|] (7 x 7, + ridge I)."""
    rows, cols = np.mgrid[0:image.shape[0], 0:image.shape[1]].astype(float)
    d_row, d_col = np.gradient(image)
    features = np.stack([cols, rows, image, np.abs(d_col), np.abs(d_row), np.abs(np.gradient(d_col, axis=1)),
                         np.abs(np.gradient(d_row, axis=0))]).reshape(7, -1)
    return np.cov(features) + ridge * np.eye(7)


def digits_covariances(ridge: float) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images / 16.0
    return np.stack([region_covariance(im, ridge) for im in images]), digits.target.astype(np.int64)


def load_mamem_subject(data_dir: Path, subject: int, checksum: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Trials (N, 8, T) and labels 0..4 of one subject from the official repository's MAT file (keys x_test,
    y_test), verified against `checksum` (SHA-256) when one is given, and its content validated."""
    from scipy.io import loadmat

    path = fetch(MAMEM_URL.format(subject=subject), Path(data_dir) / "mamem" / f"U{subject:03d}.mat", checksum)
    try:
        contents = loadmat(path)
    except (ValueError, OSError) as error:
        raise DataUnavailableError(f"{path} is not a readable MAT file ({error}); delete it to download again") \
            from error
    if "x_test" not in contents or "y_test" not in contents:
        raise DataUnavailableError(f"{path} lacks the keys x_test/y_test of the official MAMEM files; "
                                   "delete it to download again")
    trials = np.asarray(contents["x_test"], dtype=np.float64)
    labels = np.asarray(contents["y_test"]).reshape(-1).astype(np.int64)
    if trials.ndim != 3 or trials.shape[1] != MAMEM_CHANNELS or len(trials) != len(labels) or len(trials) == 0:
        raise DataUnavailableError(f"{path}: expected x_test of shape (N, {MAMEM_CHANNELS}, T) and N labels, got "
                                   f"{trials.shape} and {labels.shape}; delete it to download again")
    if not np.isfinite(trials).all() or labels.min() < 0 or labels.max() >= MAMEM_CLASSES:
        raise DataUnavailableError(f"{path}: non-finite trials or labels outside 0..{MAMEM_CLASSES - 1}; "
                                   "delete it to download again")
    return trials, labels
