"""Long Range Arena (scale=paper): loaders for the LRA tasks, and S4 trained on them (test accuracy).

Sources, downloaded into <data_dir>/hippo/ with `repro.core.data.fetch` (offline: DataUnavailableError naming
the file and where it goes):

- the LRA release archive (google-research/long-range-arena, `lra_release.gz`), unpacked once, gives
  ListOps   listops-1000/basic_{train,val,test}.tsv: header `Source\tTarget`, e.g. `( ( [MAX 2 9 ] ) 1 )\t9`;
  Retrieval tsv_data/new_aan_pairs.{train,eval,test}.tsv: no header, `label\tid1\tid2\ttext1\ttext2`;
  Pathfinder pathfinder32/curv_contour_length_14/: metadata/<k>.npy (text despite the name), lines
            `<dir> <file> <i> <label> ...`, images imgs/<dir>/<file> (32 x 32 grayscale PNG);
  Path-X    pathfinder128/curv_contour_length_14/ (same layout, 128 x 128).
- Text: the IMDB reviews the LRA Text task is built from (aclImdb_v1.tar.gz, Stanford),
  aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt, read at the byte level (LRA: 4096 bytes).
- Image: CIFAR-10 python batches (cifar-10-python.tar.gz, Toronto): pickled dicts, b"data" (M, 3072) uint8
  as R, G, B planes of 32 x 32, b"labels"; grayscale by the ITU-R 601 luma as in LRA.

Every task becomes token ids (0 = padding) or pixel values, the true lengths and labels; the model is the
s4 configs' bidirectional S4 classifier (`S4Classifier`), trained with AdamW (A, B, Delta at the SSM
learning rate without weight decay) under a linear-warmup cosine schedule; the epoch with the best
validation accuracy is kept and its test accuracy reported.
"""

import io
import math
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig

from repro.core.context import RunContext
from repro.core.data import fetch
from repro.core.errors import ConfigError, DataUnavailableError, ReproError
from repro.core.safe_pickle import TensorUnpickler
from repro.core.train import fit
from repro.papers.hippo.s4 import S4Classifier, ssm_parameters

LRA_URL = "https://storage.googleapis.com/long-range-arena/lra_release.gz"
IMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
IMDB_SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"    # as published by users of the
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"                 # archives (torchvision's
CIFAR_SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"   # prototype datasets, others)
# The LRA release publishes no checksum; its files are validated as they are parsed.
TASKS = ("listops", "text", "retrieval", "image", "pathfinder", "pathx")

LISTOPS_VOCAB = ("<pad>", "[MAX", "[MIN", "[MED", "[SM", "]", *"0123456789")


@dataclass
class Split:
    """One split: x (M, L) token ids (int16) or normalised pixels (float16), lengths (M,), y (M,); x2 / lengths2
    for pairs. Stored small (Retrieval's 2 x 4000 ids and Path-X's 16384 pixels per example add up) and cast
    per batch."""

    x: torch.Tensor
    lengths: torch.Tensor
    y: torch.Tensor
    x2: torch.Tensor | None = None
    lengths2: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.y)

    def batch(self, index: torch.Tensor, device: str) -> tuple:
        def cast(x: torch.Tensor) -> torch.Tensor:
            return x.to(device).float() if x.is_floating_point() else x.to(device).long()
        pair = (cast(self.x2[index]), self.lengths2[index].to(device)) if self.x2 is not None else (None, None)
        return cast(self.x[index]), self.lengths[index].to(device), *pair, self.y[index].to(device)


# ----------------------------------------------------------------------------------------------- parsers

def listops_tokens(source: str) -> list[int]:
    """`( ( [MAX 2 9 ] ) 1 )` -> ids of [MAX 2 9 ] 1: brackets of the tree are dropped (as in s4)."""
    ids = []
    for token in source.replace("(", " ").replace(")", " ").split():
        if token not in LISTOPS_VOCAB[1:]:
            raise ValueError(f"ListOps token {token!r} is not one of {LISTOPS_VOCAB[1:]}: not a ListOps TSV?")
        ids.append(LISTOPS_VOCAB.index(token))
    return ids


def byte_tokens(text: str) -> list[int]:
    """UTF-8 bytes shifted by one (0 is padding): the byte-level vocabulary of LRA Text and Retrieval."""
    return [b + 1 for b in text.encode("utf-8")]


def pad(sequences: list[list[int]], max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Truncate to max_length and right-pad with 0: (M, max_length) int16 ids and (M,) true lengths >= 1."""
    out = torch.zeros(len(sequences), max_length, dtype=torch.int16)
    lengths = torch.empty(len(sequences), dtype=torch.long)
    for i, seq in enumerate(sequences):
        seq = seq[:max_length] or [0]
        out[i, : len(seq)] = torch.as_tensor(seq, dtype=torch.int16)
        lengths[i] = len(seq)
    return out, lengths


def labels_in_range(values: np.ndarray, classes: int, path: Path, what: str) -> torch.Tensor:
    """Integer labels 0..classes-1 (a missing or fractional one is an error naming the file, never a huge
    negative label from a NaN cast to int64)."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        raise ReproError(f"{path}: no examples; replace it with the file from the LRA release")
    bad = ~np.isfinite(values) | (values != np.round(values)) | (values < 0) | (values >= classes)
    if bad.any():
        raise ReproError(f"{path}: {what} of row {int(np.flatnonzero(bad)[0])} is {values[bad][0]!r}, not an integer "
                         f"in 0..{classes - 1}; the file is damaged or not this task's: replace it with the file "
                         "from the LRA release")
    return torch.as_tensor(values.astype(np.int64))


def parse_listops(path: Path, max_length: int) -> Split:
    frame = pd.read_csv(path, sep="\t")
    if list(frame.columns) != ["Source", "Target"]:
        raise ValueError(f"{path}: expected the columns Source, Target, got {list(frame.columns)}")
    if frame["Source"].isna().any():
        raise ReproError(f"{path}: row {int(np.flatnonzero(frame['Source'].isna())[0])} has no Source; replace the "
                         "file with the one from the LRA release")
    labels = labels_in_range(pd.to_numeric(frame["Target"], errors="coerce").to_numpy(float), 10, path, "Target")
    x, lengths = pad([listops_tokens(s) for s in frame["Source"]], max_length)
    return Split(x, lengths, labels)


def parse_aan(path: Path, max_length: int) -> Split:
    frame = pd.read_csv(path, sep="\t", header=None, names=["label", "id1", "id2", "text1", "text2"],
                        dtype={"text1": str, "text2": str}, keep_default_na=False)
    labels = labels_in_range(pd.to_numeric(frame["label"], errors="coerce").to_numpy(float), 2, path, "label")
    x, lengths = pad([byte_tokens(t) for t in frame["text1"]], max_length)
    x2, lengths2 = pad([byte_tokens(t) for t in frame["text2"]], max_length)
    return Split(x, lengths, labels, x2, lengths2)


def parse_imdb_archive(path: Path) -> dict[str, tuple[list[str], list[int]]]:
    """aclImdb_v1.tar.gz -> {"train": (texts, labels), "test": ...}; label 1 = pos, 0 = neg (unsup skipped)."""
    out: dict[str, tuple[list[str], list[int]]] = {"train": ([], []), "test": ([], [])}
    with tarfile.open(path, "r:gz") as archive:
        for member in archive:
            parts = member.name.split("/")
            if member.isfile() and len(parts) == 4 and parts[1] in out and parts[2] in ("pos", "neg"):
                texts, labels = out[parts[1]]
                texts.append(archive.extractfile(member).read().decode("utf-8"))
                labels.append(int(parts[2] == "pos"))
    if not out["train"][0] or not out["test"][0]:
        raise ValueError(f"{path}: no aclImdb/{{train,test}}/{{pos,neg}}/*.txt members: not the IMDB archive?")
    return out


def cifar_grayscale(data: np.ndarray) -> np.ndarray:
    """(M, 3072) uint8 R, G, B planes -> (M, 1024) luma 0.299 R + 0.587 G + 0.114 B, in [0, 1]."""
    rgb = data.reshape(-1, 3, 1024).astype(np.float32) / 255
    return 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]


class CifarUnpickler(TensorUnpickler):
    """The CIFAR python batches are Python 2 pickles of dicts of bytes, lists and numpy arrays: this allows
    the globals a numpy array needs (and nothing else; a planted payload is refused, naming its global)."""

    NUMPY = {("numpy.core.multiarray", "_reconstruct"): np.ndarray.__reduce__(np.zeros(0))[0],
             ("numpy._core.multiarray", "_reconstruct"): np.ndarray.__reduce__(np.zeros(0))[0],
             ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}

    def __init__(self, file: io.BytesIO) -> None:
        pickle.Unpickler.__init__(self, file, encoding="bytes")    # Python 2 str -> bytes, as the batches' keys
        self.extra = self.NUMPY


def cifar_batch(payload: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch -> (data (M, 3072) uint8, labels (M,) in 0..9), validated."""
    try:
        batch = CifarUnpickler(io.BytesIO(payload)).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as error:
        raise ReproError(f"{where} is not a plain CIFAR batch of data ({error}); refusing to load it (a pickle can "
                         "run code): replace the archive with cifar-10-python.tar.gz from the Toronto site") from error
    if not isinstance(batch, dict):
        raise ReproError(f"{where}: a CIFAR batch is a dict, got {type(batch).__name__}; replace the archive")
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "labels" not in batch:
        hint = " (fine_labels: a CIFAR-100 batch)" if "fine_labels" in batch else ""
        raise ReproError(f"{where}: no 'labels' key{hint}, keys {sorted(batch)}; LRA Image needs the CIFAR-10 "
                         "python archive cifar-10-python.tar.gz")
    data, labels = batch.get("data"), np.asarray(batch["labels"])
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise ReproError(f"{where}: 'data' must be a (M, 3072) uint8 array, got "
                         f"{getattr(data, 'shape', type(data).__name__)}; replace the archive with "
                         "cifar-10-python.tar.gz")
    if labels.shape != (len(data),) or not np.issubdtype(labels.dtype, np.integer) or len(data) == 0 \
            or labels.min() < 0 or labels.max() > 9:
        raise ReproError(f"{where}: {len(labels)} labels for {len(data)} images, or labels outside 0..9 (CIFAR-100?); "
                         "LRA Image needs the CIFAR-10 python archive cifar-10-python.tar.gz")
    return data, labels.astype(np.int64)


def parse_cifar_archive(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """cifar-10-python.tar.gz -> {"train": (pixels (50000, 1024), labels), "test": (10000, ...)}, grayscale.

    The batches are pickles: read by `CifarUnpickler` (numpy arrays and plain data only, never plain pickle)."""
    batches: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"train": [], "test": []}
    with tarfile.open(path, "r:gz") as archive:
        for member in sorted(archive.getmembers(), key=lambda m: m.name):
            name = member.name.rsplit("/", 1)[-1]
            split = "train" if name.startswith("data_batch_") else "test" if name == "test_batch" else None
            if split and member.isfile():
                batches[split].append(cifar_batch(archive.extractfile(member).read(), f"{path}:{member.name}"))
    if not batches["train"] or not batches["test"]:
        raise ReproError(f"{path}: no data_batch_* / test_batch members: not the CIFAR-10 python archive "
                         "(cifar-10-python.tar.gz; CIFAR-100's has train / test)")
    return {split: (cifar_grayscale(np.concatenate([data for data, _ in found])),
                    np.concatenate([labels for _, labels in found]))
            for split, found in batches.items()}


def parse_pathfinder(directory: Path) -> tuple[np.ndarray, np.ndarray]:
    """A pathfinder difficulty directory -> (pixels (M, side^2) uint8, labels (M,)), in metadata order."""
    from PIL import Image

    files = sorted((directory / "metadata").glob("*.npy"), key=lambda p: int(p.stem))
    if not files:
        raise ValueError(f"{directory}: no metadata/<k>.npy files: not a pathfinder directory?")
    images, labels = [], []
    for metadata in files:
        for line in metadata.read_text().splitlines():
            fields = line.split()
            image = directory / fields[0] / fields[1]
            if image.stat().st_size == 0:      # the release holds an empty PNG; s4 skips it too
                continue
            if len(fields) < 4 or fields[3] not in ("0", "1"):
                raise ReproError(f"{metadata}: line {line!r} has no 0/1 label in its fourth field; replace the "
                                 "pathfinder folder with the one from the LRA release")
            images.append(np.asarray(Image.open(image).convert("L"), dtype=np.uint8).ravel())
            labels.append(int(fields[3]))
    if not images:
        raise ReproError(f"{directory}: no images listed in metadata/*.npy; replace it with the LRA release's")
    return np.stack(images), np.asarray(labels, dtype=np.int64)


# ----------------------------------------------------------------------------------------------- loaders

def lra_release(data_dir: Path) -> Path:
    """The unpacked LRA release (downloaded and unpacked on first use): the folder holding listops-1000."""
    root = data_dir / "hippo" / "lra_release"
    for candidate in (root, root / "lra_release"):
        if (candidate / "listops-1000").is_dir():
            return candidate
    try:
        archive = fetch(LRA_URL, data_dir / "hippo" / "lra_release.gz")
    except DataUnavailableError as error:
        raise DataUnavailableError(f"{error} (or unpack the LRA release there yourself so that {root}/"
                                   "listops-1000 exists)") from error
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(root, filter="data")
    return lra_release(data_dir)


PIXEL_NORMALISATION = {"image": (122.6 / 255, 61.0 / 255), "pathfinder": (0.5, 0.5), "pathx": (0.5, 0.5)}


def normalised(pixels: np.ndarray, mean: float, std: float) -> torch.Tensor:
    """(pixels in [0, 1] (float) or [0, 255] (uint8) - mean) / std, as float16 (s4's fixed constants)."""
    x = torch.from_numpy(pixels).to(torch.float16)
    if pixels.dtype == np.uint8:
        x.div_(255)
    return x.sub_(mean).div_(std)


def split_off(x: torch.Tensor, labels: np.ndarray, fractions: tuple[float, ...], seed: int) -> list[Split]:
    """Random split of pixel sequences into len(fractions) parts (seeded permutation)."""
    order = torch.as_tensor(np.random.default_rng(seed).permutation(len(labels)))
    bounds = np.cumsum([0, *[round(f * len(labels)) for f in fractions[:-1]]]).tolist() + [len(labels)]
    return [Split(x[order[a:b]], torch.full((b - a,), x.shape[1]), torch.as_tensor(labels)[order[a:b]])
            for a, b in zip(bounds, bounds[1:])]


def task_source(task: str, data_dir: Path) -> Path:
    """The folder or archive a task reads, downloaded (and unpacked) on first use; offline, a clear error."""
    if task in ("listops", "retrieval"):
        return lra_release(data_dir) / {"listops": "listops-1000", "retrieval": "tsv_data"}[task]
    if task in ("pathfinder", "pathx"):
        side = 32 if task == "pathfinder" else 128
        return lra_release(data_dir) / f"pathfinder{side}" / "curv_contour_length_14"
    if task == "text":
        return fetch(IMDB_URL, data_dir / "hippo" / "aclImdb_v1.tar.gz", IMDB_SHA256)
    if task == "image":
        return fetch(CIFAR_URL, data_dir / "hippo" / "cifar-10-python.tar.gz", CIFAR_SHA256)
    raise ConfigError(f"paper.lra.tasks: unknown LRA task {task!r}; choose from {TASKS}")


def load_task(task: str, data_dir: Path, max_length: int, seed: int) -> tuple[list[Split], int, int | None]:
    """(train, val, test) splits, the number of classes and the vocabulary size (None for pixels)."""
    source = task_source(task, data_dir)
    if task == "listops":
        splits = [parse_listops(source / f"basic_{s}.tsv", max_length) for s in ("train", "val", "test")]
        return splits, 10, len(LISTOPS_VOCAB)
    if task == "retrieval":
        return [parse_aan(source / f"new_aan_pairs.{s}.tsv", max_length) for s in ("train", "eval", "test")], 2, 257
    if task == "text":
        reviews = parse_imdb_archive(source)
        encoded = {s: (pad([byte_tokens(t) for t in texts], max_length), torch.as_tensor(labels))
                   for s, (texts, labels) in reviews.items()}
        (x, lengths), y = encoded["train"]
        order = torch.as_tensor(np.random.default_rng(seed).permutation(len(y)))
        val, train = order[: len(y) // 10], order[len(y) // 10:]         # 10% of train for validation
        (xt, lt), yt = encoded["test"]
        return [Split(x[train], lengths[train], y[train]), Split(x[val], lengths[val], y[val]),
                Split(xt, lt, yt)], 2, 257
    if task == "image":
        cifar = parse_cifar_archive(source)
        (pixels, labels), (test_pixels, test_labels) = cifar["train"], cifar["test"]
        train, val = split_off(normalised(pixels, *PIXEL_NORMALISATION[task]), labels, (0.9, 0.1), seed)
        test = Split(normalised(test_pixels, *PIXEL_NORMALISATION[task]), torch.full((len(test_labels),), 1024),
                     torch.as_tensor(test_labels))
        return [train, val, test], 10, None
    pixels, labels = parse_pathfinder(source)
    return split_off(normalised(pixels, *PIXEL_NORMALISATION[task]), labels, (0.8, 0.1, 0.1), seed), 2, None


# ---------------------------------------------------------------------------------------------- training

def warmup_cosine(optimizer: torch.optim.Optimizer, warmup: int, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    """lr factor t / warmup for t < warmup, then (1 + cos(pi (t - warmup) / (total - warmup))) / 2."""
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def accuracy(model: S4Classifier, split: Split, batch: int, device: str) -> float:
    correct = 0
    for index in torch.arange(len(split)).split(batch):
        x, lengths, x2, lengths2, y = split.batch(index, device)
        correct += (model(x, lengths, x2, lengths2).argmax(-1) == y).sum().item()
    return 100.0 * correct / len(split)


def lra_run(task: str, s: DictConfig, lra: DictConfig, ctx: RunContext) -> list[dict]:
    """Train S4 on one LRA task (the s4 config's sizes in `s`) and return its test accuracy row."""
    (train, val, test), classes, vocab = load_task(task, ctx.data_dir, s.max_length, ctx.data_seed("split"))
    model = S4Classifier(classes, vocab, s.channels, s.n, s.depth, lra.init, tuple(s.dt_range),
                         ctx.child_seed("init"), s.norm, s.prenorm, s.dropout, s.pool,
                         pair=train.x2 is not None).to(ctx.device)
    ssm = {id(p) for p in ssm_parameters(model)}
    optimizer = torch.optim.AdamW([
        {"params": [p for p in model.parameters() if id(p) not in ssm], "lr": s.lr, "weight_decay": s.weight_decay},
        {"params": ssm_parameters(model), "lr": s.ssm_lr, "weight_decay": 0.0}])
    steps = math.ceil(len(train) / s.batch)
    scheduler = warmup_cosine(optimizer, steps * s.warmup_epochs, steps * s.epochs)

    def batches(epoch: int):
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(ctx.child_seed("batches", epoch)))
        return order.split(s.batch)

    def loss_fn(model: S4Classifier, index: torch.Tensor) -> torch.Tensor:
        x, lengths, x2, lengths2, y = train.batch(index, ctx.device)
        return torch.nn.functional.cross_entropy(model(x, lengths, x2, lengths2), y)

    def evaluate(model: S4Classifier) -> dict[str, float]:
        val_acc, test_acc = (accuracy(model, split, 2 * s.batch, ctx.device) for split in (val, test))
        return {"val/acc": val_acc, "val/err": 100 - val_acc, "test/acc": test_acc}

    result = fit(ctx, "", model, optimizer, batches, loss_fn, s.epochs, evaluate,
                 select="val/err", scheduler=scheduler, grad_clip=lra.grad_clip)
    return [{"task": task, "best_epoch": result.best_epoch,
             "val/acc": result.best_metrics["val/acc"], "test/acc": result.best_metrics["test/acc"]}]
