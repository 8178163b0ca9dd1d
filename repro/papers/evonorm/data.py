"""Data: sklearn's digits upsampled to 16x16 (cpu scale, ships with scikit-learn) and ImageNet ILSVRC-2012 in
its extracted folder layout (scale=paper; user-supplied, licence-gated, so never downloaded here).

ImageNet layout read at scale=paper (what ``torchvision.datasets.ImageNet(root, split)`` leaves after it parses
the official archives, and what the usual ``valprep`` script produces)::

    <data_dir>/imagenet/train/<wnid>/<name>.JPEG
    <data_dir>/imagenet/val/<wnid>/<name>.JPEG

Class indices are the sorted training wnids; the validation split must use exactly the same wnids.
"""

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from repro.core.errors import DataUnavailableError
from repro.core.image_folders import imagenet_files

MEAN_RGB = (0.485, 0.456, 0.406)  # the official ResNet input pipeline's mean/std (x 255 there)
STDDEV_RGB = (0.229, 0.224, 0.225)


def digits_splits(train: int, val: int, test: int, size: int,
                  seeds: tuple[int, int]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Stratified train/val/test splits of the 1797 digits, pixels scaled to [0, 1] and bilinearly resized from
    8x8 to size x size. ``seeds`` draw the test split, then train/val from the rest. Returns CPU tensors
    (images (n, 1, size, size) float32, labels int64)."""
    digits = load_digits()
    images = torch.tensor(digits.images / 16.0, dtype=torch.float32)[:, None]
    images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    labels = torch.tensor(digits.target, dtype=torch.long)
    if train + val + test > len(labels):
        raise ValueError(f"train + val + test = {train + val + test} exceeds the {len(labels)} digits")
    index = np.arange(len(labels))
    rest, test_index = train_test_split(index, test_size=test, stratify=labels.numpy(), random_state=seeds[0])
    train_index, val_index = train_test_split(rest, train_size=train, test_size=val,
                                              stratify=labels.numpy()[rest], random_state=seeds[1])
    return {name: (images[idx], labels[idx]) for name, idx in
            (("train", train_index), ("val", val_index), ("test", test_index))}


def _random_resized_box(width: int, height: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """Inception-style crop (the official pipeline's distorted bounding box): area in [0.08, 1], aspect ratio in
    [3/4, 4/3], up to 10 tries, else the whole image's centre square."""
    area = width * height
    for _ in range(10):
        target = area * rng.uniform(0.08, 1.0)
        ratio = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
        w, h = int(round(np.sqrt(target * ratio))), int(round(np.sqrt(target / ratio)))
        if 0 < w <= width and 0 < h <= height:
            left, top = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
            return left, top, left + w, top + h
    side = min(width, height)
    return (width - side) // 2, (height - side) // 2, (width + side) // 2, (height + side) // 2


class ImageFolderSplit(torch.utils.data.Dataset):
    """ImageNet images as normalised (3, size, size) tensors: random-resized crop + flip for training (seeded by
    ``seed`` and the sample index, so that an epoch's augmentation is reproducible), resize-to-size/0.875 and
    centre crop for evaluation (the official eval crop)."""

    def __init__(self, files: list[Path], labels: list[int], size: int, train: bool) -> None:
        self.files, self.labels, self.size, self.train = files, labels, size, train
        self.seed = 0  # set per epoch by the task before a loader iterates

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        path = self.files[index]
        try:
            with Image.open(path) as image:
                image = image.convert("RGB")
        except OSError as error:
            raise DataUnavailableError(f"{path} is not a readable image ({error}); re-extract that class") from error
        if self.train:
            rng = np.random.default_rng((self.seed, index))
            image = image.resize((self.size, self.size), Image.BICUBIC,
                                 box=_random_resized_box(*image.size, rng))
            if rng.random() < 0.5:
                image = image.transpose(Image.FLIP_LEFT_RIGHT)
        else:
            short = round(self.size / 0.875)
            width, height = image.size
            scale = short / min(width, height)
            image = image.resize((max(short, round(width * scale)), max(short, round(height * scale))), Image.BICUBIC)
            width, height = image.size
            left, top = (width - self.size) // 2, (height - self.size) // 2
            image = image.crop((left, top, left + self.size, top + self.size))
        pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)
        mean, std = torch.tensor(MEAN_RGB)[:, None, None], torch.tensor(STDDEV_RGB)[:, None, None]
        return (pixels - mean) / std, self.labels[index]


def imagenet_splits(root: Path, size: int) -> dict[str, ImageFolderSplit]:
    """Training split and the validation split (the paper's reported top-1 is on val)."""
    train_files, train_labels, wnids = imagenet_files(root, "train")
    val_files, val_labels, _ = imagenet_files(root, "val", classes=wnids)
    return {"train": ImageFolderSplit(train_files, train_labels, size, True),
            "val": ImageFolderSplit(val_files, val_labels, size, False),
            "classes": len(wnids)}
