"""PaRot's real data sets (scale=paper): ModelNet40 as the HDF5 release the official code reads (classification),
ScanObjectNN OBJ_BG (classification) and ShapeNetPart (segmentation).

ScanObjectNN and ShapeNetPart come as y-up clouds; ``to_z_up`` turns them z-up so that the z/SO3 protocol rotates
about the gravity axis. The ModelNet40 HDF5 clouds are used as stored, rotated about their stored z axis, as the
official code does (its z/SO3 training applies RotateAxisAngle(axis="Z") to the file's coordinates).
"""

from pathlib import Path

import numpy as np

from repro.core.data import require
from repro.core.errors import DataUnavailableError
from repro.core.pyg_cache import sealed_processed

SCANOBJECTNN_CLASSES = 15
SCANOBJECTNN_FILES = {True: "training_objectdataset.h5", False: "test_objectdataset.h5"}
SCANOBJECTNN_HOW = ("ScanObjectNN is distributed after a licence form (https://hkust-vgd.github.io/scanobjectnn/); "
                    "download h5_files.zip and place main_split/training_objectdataset.h5 and "
                    "main_split/test_objectdataset.h5 (the OBJ_BG variant) in this folder")

MODELNET40_H5_FOLDER = "modelnet40_ply_hdf5_2048"
MODELNET40_H5_HOW = ("download https://shapenet.cs.stanford.edu/media/modelnet40_ply_hdf5_2048.zip (the release the "
                     "official PaRot and DGCNN code read) and unzip it into this folder")

# ShapeNetPart: 16 categories with 50 parts numbered consecutively (category c owns parts PART_START[c] ...).
SHAPENET_PARTS = (4, 2, 2, 4, 4, 3, 3, 2, 4, 2, 6, 2, 3, 3, 3, 3)
PART_START = tuple(int(s) for s in np.cumsum((0,) + SHAPENET_PARTS[:-1]))


def to_z_up(points: np.ndarray) -> np.ndarray:
    """y-up -> z-up: the rotation by +90 degrees about x, (x, y, z) -> (x, -z, y)."""
    return np.stack([points[..., 0], -points[..., 2], points[..., 1]], -1)


def normalise(points: np.ndarray) -> np.ndarray:
    """Centre each cloud (..., N, 3) and scale it to unit RMS radius (as the synthetic shapes)."""
    points = points - points.mean(-2, keepdims=True)
    return (points / np.sqrt((points**2).sum(-1).mean(-1))[..., None, None]).astype(np.float32)


def load_modelnet40_h5(data_dir: str | Path, n_points: int, train: bool) -> tuple[np.ndarray, np.ndarray]:
    """ModelNet40 from data_dir/modelnet40_ply_hdf5_2048/ply_data_{train,test}<i>.h5 (datasets ``data`` (M, 2048, 3)
    and ``label`` (M, 1); 9840 train / 2468 test clouds, 40 classes): the files of the split in name order,
    concatenated, the first n_points points of each cloud (the official loader's ``data[item][:num_points]``),
    float32 as stored (the release is already centred and scaled to the unit sphere)."""
    try:
        import h5py
    except ImportError as error:
        raise DataUnavailableError("reading ModelNet40's HDF5 release needs h5py: pip install h5py") from error

    folder = Path(data_dir) / MODELNET40_H5_FOLDER
    split = "train" if train else "test"
    files = sorted(folder.glob(f"ply_data_{split}*.h5"))
    if not files:
        raise DataUnavailableError(f"no ModelNet40 {split} files ply_data_{split}*.h5 in {folder}; {MODELNET40_H5_HOW}")
    points, labels = [], []
    for path in files:
        with h5py.File(path, "r") as f:
            missing = {"data", "label"} - set(f.keys())
            if missing:
                raise DataUnavailableError(f"{path} lacks the datasets {sorted(missing)}; {MODELNET40_H5_HOW}")
            shape = f["data"].shape
            if len(shape) != 3 or shape[1] < n_points or shape[2] != 3:
                raise DataUnavailableError(f"{path}: data has shape {shape}, expected (clouds, >= {n_points} points, 3)"
                                           f"; {MODELNET40_H5_HOW}")
            points.append(f["data"][:, :n_points].astype(np.float32))
            labels.append(f["label"][:].astype(np.int64).ravel())
        if len(labels[-1]) != len(points[-1]):
            raise DataUnavailableError(f"{path}: {len(labels[-1])} labels for {len(points[-1])} clouds; "
                                       f"{MODELNET40_H5_HOW}")
    x, y = np.concatenate(points), np.concatenate(labels)
    if len(y) == 0 or y.min() < 0 or y.max() >= 40 or not np.isfinite(x).all():
        raise DataUnavailableError(f"{folder}: {len(y)} {split} clouds, labels outside 0..39 or non-finite "
                                   f"coordinates; {MODELNET40_H5_HOW}")
    return x, y


def load_scanobjectnn(data_dir: str | Path, n_points: int, train: bool) -> tuple[np.ndarray, np.ndarray]:
    """ScanObjectNN OBJ_BG (2309 train / 581 test objects with background, 15 classes, 2048 points each).

    Reads data_dir/scanobjectnn/main_split/{training,test}_objectdataset.h5 (datasets ``data`` (M, 2048, 3) and
    ``label`` (M,)), keeps the first n_points points (the files store them in random order), turns y-up to z-up.
    """
    path = require(Path(data_dir) / "scanobjectnn" / "main_split" / SCANOBJECTNN_FILES[train],
                   "ScanObjectNN OBJ_BG", SCANOBJECTNN_HOW)
    try:
        import h5py
    except ImportError as error:  # not a dependency of the CPU reproduction
        raise DataUnavailableError("reading ScanObjectNN needs h5py: pip install h5py") from error
    with h5py.File(path, "r") as f:
        missing = {"data", "label"} - set(f.keys())
        if missing:
            raise DataUnavailableError(f"{path} lacks the datasets {sorted(missing)}; {SCANOBJECTNN_HOW}")
        shape = f["data"].shape
        if len(shape) != 3 or shape[0] == 0 or shape[1] < n_points or shape[2] < 3:
            raise DataUnavailableError(f"{path}: data has shape {shape}, expected (objects > 0, >= {n_points} points,"
                                       f" >= 3 coordinates); {SCANOBJECTNN_HOW}")
        points, labels = f["data"][:, :n_points, :3].astype(np.float64), f["label"][:].astype(np.int64).ravel()
    if len(labels) != len(points) or labels.min() < 0 or labels.max() >= SCANOBJECTNN_CLASSES:
        raise DataUnavailableError(f"{path}: {len(labels)} labels for {len(points)} objects, range "
                                   f"{labels.min()}..{labels.max()} (expected 0..{SCANOBJECTNN_CLASSES - 1}); "
                                   f"{SCANOBJECTNN_HOW}")
    if not np.isfinite(points).all():
        raise DataUnavailableError(f"{path}: non-finite coordinates; {SCANOBJECTNN_HOW}")
    return normalise(to_z_up(points)), labels


def load_shapenetpart(data_dir: str | Path, n_points: int, train: bool, seed: int
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ShapeNetPart (torch_geometric.datasets.ShapeNet: 14007 trainval / 2874 test shapes, 16 categories,
    50 parts) as clouds (M, n_points, 3) z-up, categories (M,) and part labels (M, n_points) in 0..49.

    PyG downloads and parses the Stanford release into data_dir/shapenetpart (DataUnavailableError offline);
    every shape is resampled to n_points points (with replacement when it has fewer) by ``seed``.
    """
    import urllib.error

    from torch_geometric.datasets import ShapeNet

    root = Path(data_dir) / "shapenetpart"
    try:
        with sealed_processed(root / "processed"):
            dataset = ShapeNet(str(root), split="trainval" if train else "test")
    except (urllib.error.URLError, OSError) as error:
        raise DataUnavailableError(f"cannot download ShapeNetPart ({error}); fetch {ShapeNet.url} on a machine "
                                   f"with network and unzip it into {root / 'raw'}") from error
    fix = f"delete {root / 'processed'} and {root / 'raw'} and fetch {ShapeNet.url} again"
    if len(dataset) == 0:
        raise DataUnavailableError(f"{root}: no ShapeNetPart shapes in the {'trainval' if train else 'test'} split; "
                                   f"{fix}")
    rng = np.random.default_rng(seed)
    clouds, categories, parts = [], [], []
    for i, shape in enumerate(dataset):
        n, c = len(shape.pos), int(shape.category)
        part = shape.y.numpy()
        if n == 0 or not 0 <= c < len(SHAPENET_PARTS) or not np.isfinite(shape.pos.numpy()).all() or \
                part.min() < PART_START[c] or part.max() >= PART_START[c] + SHAPENET_PARTS[c]:
            raise DataUnavailableError(f"{root}: shape {i} has {n} points, category {c}, parts "
                                       f"{sorted(set(part.tolist()))[:8]} (category c owns parts PART_START[c] .. "
                                       f"+ SHAPENET_PARTS[c]) or non-finite coordinates; {fix}")
        index = rng.choice(n, n_points, replace=n < n_points)
        clouds.append(shape.pos[index].double().numpy())
        parts.append(part[index])
        categories.append(c)
    return normalise(to_z_up(np.stack(clouds))), np.array(categories), np.stack(parts).astype(np.int64)


def part_miou(pred: np.ndarray, parts: np.ndarray, categories: np.ndarray) -> np.ndarray:
    """Per-shape mIoU (M,): mean over the parts of the shape's category of |pred = p and true = p| /
    |pred = p or true = p|, a part absent from both counting as IoU 1 (the ShapeNetPart convention)."""
    out = np.empty(len(pred))
    for s, (p, t, c) in enumerate(zip(pred, parts, categories)):
        ious = []
        for part in range(PART_START[c], PART_START[c] + SHAPENET_PARTS[c]):
            union = np.sum((p == part) | (t == part))
            ious.append(1.0 if union == 0 else np.sum((p == part) & (t == part)) / union)
        out[s] = np.mean(ious)
    return out
