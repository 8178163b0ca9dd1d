"""The benchmark both scales share: objects with labels, several views per object with their latents, a split
by object, and pairs of views of one object with the relative rotation between them.

scale=cpu renders mini-3DIEBench in memory (render.py); scale=paper reads 3DIEBench's folders
(<synset>/<object>/image_<k>.jpg and latent_<k>.npy) and the official train/validation object lists.
"""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from repro.core.data import fetch
from repro.core.errors import DataUnavailableError
from repro.papers.sie.render import draw_latents, make_objects, pentacube_classes, relative_quaternion, render

DATA_URL = "https://dl.fbaipublicfiles.com/SIE/3DIEBench.tar.gz"
# The four object lists as the official repository holds them at this commit (scale=paper downloads them).
LISTS_COMMIT = "54541cfa40780aa3e502e3bbb52b30aae672b487"
LISTS_URL = f"https://raw.githubusercontent.com/facebookresearch/SIE/{LISTS_COMMIT}/data/"
LISTS = ("train_images", "train_labels", "val_images", "val_labels")


@dataclass
class Benchmark:
    """Views indexed 0..count-1, ``views`` consecutive views per object."""

    label_of: np.ndarray          # per view
    object_of: np.ndarray         # per view
    latents: np.ndarray           # per view: angles x, y, z (extrinsic) first, then any other latents
    train_object: np.ndarray      # per object: True for training objects
    views: int
    load: Callable[[np.ndarray], np.ndarray] = field(repr=False)  # view indices -> (n, H, W, 3) in [0, 1]

    @property
    def count(self) -> int:
        return len(self.object_of)

    def views_of(self, objects: np.ndarray) -> np.ndarray:
        """(len(objects), views) indices of every view of each object."""
        return objects[:, None] * self.views + np.arange(self.views)[None, :]

    def image_tensor(self, index: np.ndarray, device: str) -> torch.Tensor:
        """(n, 3, H, W) float32 as a view of the loaded (n, H, W, 3) images: channels-last strides, which the
        convolutions take as they are (faster on CPU than a copy to contiguous NCHW)."""
        images = torch.from_numpy(self.load(np.asarray(index))).float().to(device)
        return images.permute(0, 3, 1, 2)


def sample_pairs(objects: np.ndarray, bench: Benchmark, count: int, seed: int) -> tuple[np.ndarray, ...]:
    """``count`` pairs (view 1, view 2, quaternion of the rotation from view 1 to view 2): a random object of
    ``objects``, two distinct random views of it."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(objects, count)
    a = rng.integers(0, bench.views, count)
    b = (a + rng.integers(1, bench.views, count)) % bench.views      # distinct from a
    first, second = chosen * bench.views + a, chosen * bench.views + b
    return first, second, relative_quaternion(bench.latents[first, :3], bench.latents[second, :3])


def make_benchmark(data: DictConfig, seed: int) -> Benchmark:
    """mini-3DIEBench: ``classes`` pentacube classes x ``per_class`` instances x ``views`` rendered views,
    objects split into train / held-out at random (``train_fraction``)."""
    rng = np.random.default_rng(seed)
    objects = make_objects(pentacube_classes(data.classes), data.per_class, data.points, tuple(data.stretch),
                           data.colour_jitter, rng)
    count = len(objects.labels)
    object_of = np.repeat(np.arange(count), data.views)
    latents = draw_latents(len(object_of), rng)
    images = render(objects, object_of, latents, data.size, data.pixels_per_unit, data.ambient)
    train_object = np.zeros(count, bool)
    train_object[rng.permutation(count)[: round(data.train_fraction * count)]] = True
    return Benchmark(objects.labels[object_of], object_of, latents, train_object, data.views,
                     lambda index: images[index])


def git_blob_id(path: Path) -> str:
    """Git's object id of a file (SHA-1 of ``blob <size>\\0`` + content): the checksum the official commit pins for
    each list (the lists' own SHA-256 is not published)."""
    content = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def read_object_lists(root: Path, blobs: DictConfig | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The official object lists (unicode arrays of '/<synset>/<object>/' and int labels; no pickle). With ``blobs``
    (list name -> git object id at LISTS_COMMIT) each list is downloaded when absent and verified; without (files
    written by the tests), the lists must be there."""
    arrays = []
    for name in LISTS:
        path = root / f"{name}.npy"
        if blobs is not None:
            fetch(f"{LISTS_URL}{name}.npy", path)
            if git_blob_id(path) != blobs[name]:
                raise DataUnavailableError(f"{path} differs from the official {name}.npy (git object "
                                           f"{blobs[name]}); delete it and download {LISTS_URL}{name}.npy again")
        elif not path.exists():
            raise DataUnavailableError(f"{path} is missing; put the official lists from {LISTS_URL} in {root}")
        arrays.append(np.load(path, allow_pickle=False))
    for images, labels in (arrays[:2], arrays[2:]):
        if len(images) != len(labels) or len(images) == 0:
            raise DataUnavailableError(f"{root}: object and label lists differ in length or are empty")
        if labels.min() < 0 or labels.max() > 54:
            raise DataUnavailableError(f"{root}: labels outside 0..54; re-download the lists from {LISTS_URL}")
    return tuple(arrays)


def load_benchmark(root: Path, data: DictConfig, seed: int) -> Benchmark:
    """3DIEBench from ``root`` (the extracted archive plus the four list files): the first ``data.views`` of the
    50 views of each listed object; images read on demand, resized to data.size and standardised per channel by
    data.normalize (mean, std)."""
    from PIL import Image

    train_images, train_labels, val_images, val_labels = read_object_lists(root, data.list_blobs)
    if data.objects_per_split:  # a subset of objects (e.g. the dry run); otherwise every listed object
        keep = np.random.default_rng(seed)
        train_pick = np.sort(keep.choice(len(train_images), min(data.objects_per_split, len(train_images)), False))
        val_pick = np.sort(keep.choice(len(val_images), min(data.objects_per_split, len(val_images)), False))
        train_images, train_labels = train_images[train_pick], train_labels[train_pick]
        val_images, val_labels = val_images[val_pick], val_labels[val_pick]
    folders = [root / str(p).strip("/") for p in np.concatenate([train_images, val_images])]
    labels = np.concatenate([train_labels, val_labels])
    latents = []
    for folder in folders:
        for k in range(data.views):
            path = folder / f"latent_{k}.npy"
            if not path.exists():
                raise DataUnavailableError(f"{path} is missing; extract {DATA_URL} into {root}")
            latent = np.load(path, allow_pickle=False)
            if latent.shape[0] < 3 or not np.isfinite(latent).all():
                raise DataUnavailableError(f"{path}: expected a finite latent vector starting with 3 angles")
            latents.append(latent[:3].astype(float))
    object_of = np.repeat(np.arange(len(folders)), data.views)
    train_object = np.arange(len(folders)) < len(train_images)

    def load(index: np.ndarray) -> np.ndarray:
        out = np.empty((len(index), data.size, data.size, 3), np.float32)
        for i, view in enumerate(index):
            path = folders[object_of[view]] / f"image_{view % data.views}.jpg"
            try:
                with Image.open(path) as image:
                    out[i] = np.asarray(image.convert("RGB").resize((data.size, data.size)), np.float32) / 255
            except OSError as error:
                raise DataUnavailableError(f"{path}: unreadable image ({error}); extract {DATA_URL} again") from error
        return (out - mean) / std

    # The official per-channel standardisation (transforms.Normalize in main.py and the evaluation scripts).
    mean, std = (np.asarray(data.normalize[k], np.float32) for k in ("mean", "std"))

    return Benchmark(labels[object_of], object_of, np.array(latents), train_object, data.views, load)
