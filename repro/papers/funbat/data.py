"""Data: the synthetic continuous-indexed tensors (generated, deterministic per seed) and loaders for the
paper's processed arrays (BeijingAir PM2.5 / PM10 / SO2, US-TEMP).

Synthetic (indices t ~ U[0, 1]^K, fresh test indices):
- K = 2, rank 1: y = u1(t1) u2(t2) + e, u1(t) = exp(-2t) sin(1.5 pi t), u2(t) = sin(2 pi t)^2 cos(2 pi t);
- K = 3, Tucker (2, 2, 2) with core entries N(0, 1):
  u^1 = (sin 2 pi t, cos 2 pi t), u^2 = ((1 - sin(pi t / 2)^3) sin 4 pi t, sin 2 pi t),
  u^3 = (-2 cos 3 pi t sin 3 pi t sin 2 pi t, exp(-2t) sin 1.5 pi t).
"""

import hashlib
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from repro.core.data import fetch
from repro.core.errors import DataUnavailableError, ReproError
from repro.papers.funbat.model import batched_kron


@dataclass
class TensorData:
    train_index: np.ndarray   # (N, K) real-valued
    train_y: np.ndarray
    test_index: np.ndarray
    test_y: np.ndarray
    truth: list | None = None  # the true latent functions per mode (synthetic only)


def u1_k2(t: np.ndarray) -> np.ndarray:
    return np.exp(-2 * t) * np.sin(1.5 * np.pi * t)


def u2_k2(t: np.ndarray) -> np.ndarray:
    return np.sin(2 * np.pi * t) ** 2 * np.cos(2 * np.pi * t)


def functions_k3() -> list:
    return [
        lambda t: np.stack([np.sin(2 * np.pi * t), np.cos(2 * np.pi * t)], 1),
        lambda t: np.stack([(1 - np.sin(np.pi * t / 2) ** 3) * np.sin(4 * np.pi * t), np.sin(2 * np.pi * t)], 1),
        lambda t: np.stack([-2 * np.cos(3 * np.pi * t) * np.sin(3 * np.pi * t) * np.sin(2 * np.pi * t),
                            np.exp(-2 * t) * np.sin(1.5 * np.pi * t)], 1),
    ]


def synthetic(modes: int, train: int, test: int, noise: float, seed: int) -> TensorData:
    rng = np.random.default_rng(seed)
    if modes == 2:
        truth = [lambda t: u1_k2(t)[:, None], lambda t: u2_k2(t)[:, None]]
        core = np.ones(1)
    elif modes == 3:
        truth, core = functions_k3(), rng.normal(size=8)
    else:
        raise ValueError(f"synthetic tensors have K = 2 or 3 modes, not {modes}")

    def entries(count: int) -> tuple[np.ndarray, np.ndarray]:
        index = rng.uniform(0, 1, size=(count, modes))
        clean = batched_kron([f(index[:, k]) for k, f in enumerate(truth)]) @ core
        return index, clean + noise * rng.normal(size=count)

    train_index, train_y = entries(train)
    test_index, test_y = entries(test)
    return TensorData(train_index, train_y, test_index, test_y, truth)


# The authors' processed arrays: a pickled dict {"ndims", "data": [fold dicts]} saved with np.save, all four in
# their repository at a fixed commit (stable raw URLs). A pickle can run code when it is loaded, so the pipeline
# never unpickles them with numpy: `convert` rebuilds the dict with an unpickler that only knows numpy arrays, dtypes
# and numpy scalars (dicts, lists, numbers and strings need no import), writes the folds as plain arrays into an
# .npz, and `parse_fold` reads that with allow_pickle=False. Every download is checked against the pins in
# conf/paper/funbat.yaml (`data_pins`): the git blob id of each file in the authors' tree at that commit, and the
# SHA-256 where we have read the file's bytes (US-TEMP; the Beijing CONTI blobs were not in our offline mirror).
COMMIT = "100d74363e8cf403d5d643e65f59622dbf8f15e2"
REPOSITORY = f"https://github.com/xuangu-fang/Functional-Bayesian-Tucker-Decomposition/raw/{COMMIT}/"
PAPER_FILES = {
    "beijing_pm25": "data/beijing/beijing_PM2.5/CONTI_428x501x1461.npy",
    "beijing_pm10": "data/beijing/beijing_PM10/CONTI_428x501x1461.npy",
    "beijing_so2": "data/beijing/beijing_SO2/CONTI_428x501x1461.npy",
    "us_temp": "data/US_temp/DISCT_15x95x267.npy",
}
FOLD_KEYS = ("tr_ind_CONTI", "te_ind_CONTI", "tr_ind", "te_ind", "tr_y", "te_y")
# What a pickled numpy array needs and nothing else (numpy 1.x and 2.x module names).
SAFE_GLOBALS = {(module, name) for module in ("numpy.core.multiarray", "numpy._core.multiarray")
                for name in ("_reconstruct", "scalar")} | {("numpy", "ndarray"), ("numpy", "dtype")}


class UnsafeDataError(ReproError):
    """A data file that would run code (a pickle) or does not have the expected layout."""


class BadDataError(ReproError):
    """A converted data file whose folds do not hold what the loader needs (shapes, finite values, indices)."""


def git_blob_id(path: Path) -> str:
    """The id git gives the file's content (SHA-1 of "blob <size>\\0" + bytes), as listed in a repository tree."""
    path = Path(path)
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode(), usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def paper_file(name: str, data_dir: Path, pins: Mapping | None = None) -> Path:
    """The converted .npz of a paper data set: the authors' .npy downloaded (or placed by the user) under
    <data_dir>/funbat/, checked against `pins` ({sha256, git_blob}, either optional), then converted once."""
    if name not in PAPER_FILES:
        raise ValueError(f"unknown FunBaT data set {name!r}; choose from {sorted(PAPER_FILES)} or synthetic_k2/k3")
    relative = PAPER_FILES[name]
    dest = Path(data_dir) / "funbat" / Path(relative).name.replace(".npy", f"_{name}.npy")
    converted = dest.with_suffix(".npz")
    if converted.exists():
        return converted
    pins = dict(pins or {})
    fetch(REPOSITORY + relative, dest, checksum=pins.get("sha256"))
    if pins.get("git_blob") and git_blob_id(dest) != pins["git_blob"]:
        raise DataUnavailableError(
            f"{dest}: git blob id {git_blob_id(dest)} is not that of the authors' {relative} at commit {COMMIT} "
            f"({pins['git_blob']}): another version or a damaged copy. Delete it and rerun to download "
            f"{REPOSITORY + relative}")
    return convert(dest, converted)


class _ArrayUnpickler(pickle.Unpickler):
    def __init__(self, file, path: Path) -> None:
        super().__init__(file)
        self.path = path

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in SAFE_GLOBALS:
            raise UnsafeDataError(f"{self.path}: the pickle asks for {module}.{name}, which is not part of a numpy "
                                  "array; refusing to load it (a pickle can run code). Check where the file came from")
        return super().find_class(module, name)


def read_authors_array(path: Path) -> dict:
    """The dict inside an authors' np.save'd object array, unpickled with only numpy's array globals allowed."""
    path = Path(path)
    with open(path, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
            if version not in readers:
                raise ValueError(f"unsupported .npy version {version}")
            _, _, dtype = readers[version](f)
        except ValueError as error:
            raise UnsafeDataError(f"{path}: not an .npy file ({error})") from error
        if not dtype.hasobject:
            raise UnsafeDataError(f"{path}: a plain {dtype} array, not the authors' dict of folds")
        try:
            content = _ArrayUnpickler(f, path).load()
        except UnsafeDataError:
            raise
        except Exception as error:  # a truncated or malformed pickle
            raise UnsafeDataError(f"{path}: unreadable pickle ({type(error).__name__}: {error})") from error
    content = content.item() if isinstance(content, np.ndarray) and content.shape == () else content
    if not isinstance(content, dict) or not isinstance(content.get("data"), list | tuple):
        raise UnsafeDataError(f"{path}: expected the authors' dict with a 'data' list of folds, got "
                              f"{type(content).__name__}")
    return content


def convert(source: Path, dest: Path) -> Path:
    """Write the folds of an authors' array as plain numeric arrays (keys fold<k>.<name>) into an .npz."""
    content = read_authors_array(source)
    if not content["data"]:
        raise UnsafeDataError(f"{source}: the authors' dict has an empty 'data' list (no folds); get the file again "
                              f"from {REPOSITORY.split('/raw/')[0]}")
    arrays = {}
    for k, split in enumerate(content["data"]):
        if not isinstance(split, dict):
            raise UnsafeDataError(f"{source}: fold {k} is a {type(split).__name__}, not a dict")
        for key in FOLD_KEYS:
            if key in split:
                value = np.asarray(split[key])
                if value.dtype.hasobject or value.dtype.kind not in "biuf":
                    raise UnsafeDataError(f"{source}: fold {k} {key} has dtype {value.dtype}, not numbers")
                arrays[f"fold{k}.{key}"] = value
    dest = Path(dest)
    partial = dest.with_name(dest.name + ".part.npz")
    np.savez(partial, **arrays)
    partial.replace(dest)
    return dest


def parse_fold(path: Path, fold: int) -> TensorData:
    """One train/test split of a converted authors' array (.npz, read without pickle); continuous keys
    (tr_ind_CONTI) are preferred, integer keys (tr_ind) otherwise. Every mode's indices are scaled to [0, 1] with
    the training range. The fold is validated: non-empty, (N, K) indices with the same K in train and test, one
    finite target per entry, finite indices, integer indices non-negative."""
    path = Path(path)
    try:
        content = np.load(path, allow_pickle=False)
        if not isinstance(content, np.lib.npyio.NpzFile):
            raise UnsafeDataError(f"{path}: a single array, not the converted .npz of folds; convert the authors' "
                                  f"file with: python -m repro.papers.funbat.data <their .npy> {path}.npz")
        with content:
            folds = sorted({int(key[4:].split(".", 1)[0]) for key in content.files if key.startswith("fold")})
            split = {key.split(".", 1)[1]: content[key] for key in content.files
                     if key.startswith(f"fold{fold}.")}
    except ValueError as error:   # numpy refuses object (pickled) arrays when allow_pickle=False
        raise UnsafeDataError(f"{path} holds pickled Python objects ({error}); loading them could run code. "
                              f"Convert the authors' file once with: python -m repro.papers.funbat.data {path} "
                              f"{path.with_suffix('.npz')} (it rebuilds only numeric arrays)") from error
    redo = (f"delete {path} (and the .npy it was converted from, if that is damaged too) and rerun to convert "
            "the authors' file again")

    def bad(what: str) -> BadDataError:
        return BadDataError(f"{path}: fold {fold} {what}; {redo}")

    if not split:
        raise BadDataError(f"{path}: no fold {fold} (the file has folds {folds}; the paper scale reads fold "
                           f"replicate % 5 of the authors' 5 splits); {redo}")
    missing = [k for k in ("tr_y", "te_y") if k not in split]
    if missing:
        raise bad(f"has no {missing}")
    suffix = "_CONTI" if "tr_ind_CONTI" in split else ""
    if "tr_ind" + suffix not in split or "te_ind" + suffix not in split:
        raise bad(f"has neither tr_ind_CONTI/te_ind_CONTI nor tr_ind/te_ind (keys: {sorted(split)})")
    indices, targets = {}, {}
    for part in ("tr", "te"):
        index, y = split[f"{part}_ind{suffix}"], split[f"{part}_y"]
        if index.ndim != 2 or index.shape[0] == 0 or index.shape[1] == 0:
            raise bad(f"{part}_ind{suffix} has shape {index.shape}, not (entries > 0, modes > 0)")
        if y.size != index.shape[0] or (y.ndim > 1 and y.size != y.shape[0]):
            raise bad(f"{part}_y has shape {y.shape} for {index.shape[0]} entries")
        if not np.isfinite(index).all() or not np.isfinite(y).all():
            raise bad(f"{part}_ind{suffix} or {part}_y holds NaN or inf")
        if index.dtype.kind in "iu" and (index < 0).any():
            raise bad(f"{part}_ind{suffix} holds negative integer indices")
        indices[part], targets[part] = np.asarray(index, dtype=float), np.asarray(y, dtype=float).ravel()
    if indices["tr"].shape[1] != indices["te"].shape[1]:
        raise bad(f"has {indices['tr'].shape[1]} modes in training and {indices['te'].shape[1]} in test indices")
    train_index, test_index = indices["tr"], indices["te"]
    low, high = train_index.min(0), train_index.max(0)
    scale = np.where(high > low, high - low, 1.0)
    return TensorData((train_index - low) / scale, targets["tr"], (test_index - low) / scale, targets["te"])


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 3:
        sys.exit("usage: python -m repro.papers.funbat.data <authors' .npy> <dest .npz>")
    print(convert(Path(sys.argv[1]), Path(sys.argv[2])))
