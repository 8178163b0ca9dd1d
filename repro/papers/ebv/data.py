"""Data. cpu scale: our many-class synthetic set (sklearn's make_classification, 200 classes) and
sklearn's digits (10 classes), both shipped with scikit-learn. scale=paper: ImageNet ILSVRC-2012 in its
extracted folder layout (licence-gated: never downloaded here)::

    <data_dir>/imagenet/train/<wnid>/<name>.JPEG
    <data_dir>/imagenet/val/<wnid>/<name>.JPEG

Class indices follow the sorted training wnids; the validation folders must carry exactly the same wnids.
"""

from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits, make_classification
from sklearn.model_selection import train_test_split

from repro.core.errors import DataUnavailableError
from repro.core.image_folders import imagenet_files

Split = tuple[torch.Tensor, torch.Tensor]
MEAN = (0.485, 0.456, 0.406)   # the torchvision presets' normalisation the official scripts use
STD = (0.229, 0.224, 0.225)


def _standardised_splits(x: np.ndarray, y: np.ndarray, test: int, val: int, seed: int) -> dict[str, Split]:
    """Stratified train/val/test, features standardised with training statistics only."""
    index = np.arange(len(y))
    rest, test_index = train_test_split(index, test_size=test, stratify=y, random_state=seed % 2**32)
    train_index, val_index = train_test_split(rest, test_size=val, stratify=y[rest],
                                              random_state=(seed // 7 + 1) % 2**32)
    mean, std = x[train_index].mean(0), x[train_index].std(0)
    std = np.where(std > 0, std, 1.0)
    out = {}
    for name, idx in (("train", train_index), ("val", val_index), ("test", test_index)):
        out[name] = (torch.tensor((x[idx] - mean) / std, dtype=torch.float32), torch.tensor(y[idx], dtype=torch.long))
    return out


def synthetic_splits(c, seed: int) -> dict[str, Split]:
    """Data A: make_classification with many classes, one cluster per class."""
    x, y = make_classification(n_samples=c.samples, n_features=c.features, n_informative=c.informative,
                               n_redundant=c.redundant, n_classes=c.classes, n_clusters_per_class=1,
                               class_sep=c.class_sep, flip_y=0.0, random_state=seed % 2**32)
    return _standardised_splits(x, y, c.test, c.val, seed)


def digits_splits(c, seed: int) -> dict[str, Split]:
    """Data B: the 1797 8x8 digits as 64 features, 10 classes."""
    digits = load_digits()
    return _standardised_splits(digits.data.astype(np.float64), digits.target, c.test, c.val, seed)


def _resized_crop_box(width: int, height: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """RandomResizedCrop's box: area fraction in [0.08, 1], aspect ratio log-uniform in [3/4, 4/3], 10 tries,
    else the centre square."""
    for _ in range(10):
        area = width * height * rng.uniform(0.08, 1.0)
        ratio = float(np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3))))
        w, h = int(round(np.sqrt(area * ratio))), int(round(np.sqrt(area / ratio)))
        if 0 < w <= width and 0 < h <= height:
            left, top = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
            return left, top, left + w, top + h
    side = min(width, height)
    return (width - side) // 2, (height - side) // 2, (width + side) // 2, (height + side) // 2


class ImageNetSplit(torch.utils.data.Dataset):
    """Normalised (3, crop, crop) tensors. Training: random-resized crop, horizontal flip and random erasing
    (p = erase), seeded by (epoch seed, index). Evaluation: resize the short side to ``resize`` and centre-crop
    ``crop`` (the official EBV script evaluates at resize = crop = 256)."""

    def __init__(self, files: list[Path], labels: list[int], crop: int, resize: int, train: bool,
                 erase: float = 0.0) -> None:
        self.files, self.labels, self.train, self.erase = files, labels, train, erase
        self.crop, self.resize = crop, resize
        self.seed = 0   # set by the task for every epoch

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        path = self.files[index]
        try:
            with Image.open(path) as image:
                image = image.convert("RGB")
        except OSError as error:
            raise DataUnavailableError(f"{path} is not a readable image ({error}); "
                                       "re-extract its class folder") from error
        rng = np.random.default_rng((self.seed, index))
        if self.train:
            image = image.resize((self.crop, self.crop), Image.BILINEAR, box=_resized_crop_box(*image.size, rng))
            if rng.random() < 0.5:
                image = image.transpose(Image.FLIP_LEFT_RIGHT)
        else:
            width, height = image.size
            scale = self.resize / min(width, height)
            image = image.resize((max(self.resize, round(width * scale)), max(self.resize, round(height * scale))),
                                 Image.BILINEAR)
            width, height = image.size
            left, top = (width - self.crop) // 2, (height - self.crop) // 2
            image = image.crop((left, top, left + self.crop, top + self.crop))
        pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)
        pixels = (pixels - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]
        if self.train and rng.random() < self.erase:
            pixels = _erase(pixels, rng)
        return pixels, self.labels[index]


def _erase(pixels: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """RandomErasing (scale 0.02-0.33, ratio 0.3-3.3, value 0) on a normalised image."""
    _, height, width = pixels.shape
    for _ in range(10):
        area = height * width * rng.uniform(0.02, 0.33)
        ratio = float(np.exp(rng.uniform(np.log(0.3), np.log(3.3))))
        h, w = int(round(np.sqrt(area * ratio))), int(round(np.sqrt(area / ratio)))
        if h < height and w < width:
            top, left = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
            pixels = pixels.clone()
            pixels[:, top:top + h, left:left + w] = 0.0
            return pixels
    return pixels


def imagenet_splits(root: Path, crop: int, resize: int, eval_crop: int, erase: float) -> dict:
    train_files, train_labels, wnids = imagenet_files(root, "train")
    val_files, val_labels, _ = imagenet_files(root, "val", classes=wnids)
    return {"train": ImageNetSplit(train_files, train_labels, crop, resize, True, erase),
            "test": ImageNetSplit(val_files, val_labels, eval_crop, resize, False),
            "classes": len(wnids)}
