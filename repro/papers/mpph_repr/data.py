"""Point clouds: ORBIT5K-style link-twist orbits, the noisy annulus (both generated), and UCR time series turned
into point clouds by delay embedding (paper scale; the archive's files are placed by hand)."""

from pathlib import Path

import numpy as np
from gudhi.point_cloud.timedelay import TimeDelayEmbedding

from repro.core.errors import DataUnavailableError

UCR_HINT = ("download the UCR 2018 archive from https://www.cs.ucr.edu/~eamonn/time_series_data_2018/ (password "
            "on that page), unzip it, and place <name>/<name>_TRAIN.tsv and <name>/<name>_TEST.tsv under {root}")


def orbit(num_points: int, r: float, rng: np.random.Generator) -> np.ndarray:
    """Link-twist map x' = x + r y (1 - y) mod 1, y' = y + r x' (1 - x') mod 1 from (x0, y0) ~ U[0, 1]^2."""
    points = np.empty((num_points, 2))
    x, y = rng.uniform(size=2)
    for i in range(num_points):
        points[i] = x, y
        x = (x + r * y * (1 - y)) % 1
        y = (y + r * x * (1 - x)) % 1
    return points


def orbits(rs: list[float], per_class: int, num_points: int, rng: np.random.Generator
           ) -> tuple[list[np.ndarray], np.ndarray]:
    """``per_class`` orbits for each r (class label = index of r)."""
    labels = np.repeat(np.arange(len(rs)), per_class)
    return [orbit(num_points, rs[label], rng) for label in labels], labels


def annulus(n_annulus: int, n_outliers: int, rng: np.random.Generator, r1: float = 1.0, r2: float = 2.0
            ) -> np.ndarray:
    """n_annulus points uniform on {r1 <= |x| <= r2} (radius sqrt-uniform in area) then n_outliers uniform in
    [-1.1 r2, 1.1 r2]^2."""
    angle = rng.uniform(0.0, 2 * np.pi, n_annulus)
    radius = np.sqrt(rng.uniform(r1 ** 2, r2 ** 2, n_annulus))
    ring = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    noise = rng.uniform(-1.1 * r2, 1.1 * r2, size=(n_outliers, 2))
    return np.vstack([ring, noise])


def read_ucr_split(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One UCR 2018 .tsv file: a class label then the series' values on each line (equal lengths)."""
    if not path.exists():
        raise DataUnavailableError(f"{path} is missing: " + UCR_HINT.format(root=path.parent.parent))
    table = np.loadtxt(path, delimiter="\t", ndmin=2)
    if table.shape[0] == 0 or table.shape[1] < 3:
        raise DataUnavailableError(f"{path} has no series (expected label<TAB>values per line); re-extract it")
    if not np.isfinite(table).all():
        raise DataUnavailableError(f"{path} has missing or non-finite values (a variable-length data set?); "
                                   "use a data set of equal-length series")
    labels = table[:, 0]
    if not np.array_equal(labels, np.round(labels)):
        raise DataUnavailableError(f"{path}: first column must hold integer class labels")
    return table[:, 1:], labels.astype(int)


def ucr_clouds(root: Path, name: str, dimension: int, delay: int, skip: int
               ) -> tuple[list[np.ndarray], np.ndarray, list[np.ndarray], np.ndarray]:
    """Train and test delay-embedded point clouds of one UCR data set (the archive's own split)."""
    embed = TimeDelayEmbedding(dim=dimension, delay=delay, skip=skip)
    train, y_train = read_ucr_split(root / name / f"{name}_TRAIN.tsv")
    test, y_test = read_ucr_split(root / name / f"{name}_TEST.tsv")
    if set(y_test) - set(y_train):
        raise DataUnavailableError(f"{root / name}: test labels {sorted(set(y_test) - set(y_train))} never occur "
                                   "in the training file; the files do not belong together")
    return list(embed.transform(train)), y_train, list(embed.transform(test)), y_test
