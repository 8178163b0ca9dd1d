"""ImageNet in its extracted folder layout (<root>/{train,val}/<wnid>/*.JPEG), read and validated.

ImageNet is licence-gated, so it is never downloaded: the error says how to obtain and place it.
"""

from pathlib import Path

from repro.core.errors import DataUnavailableError

IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")


def imagenet_files(root: Path, split: str, classes: list[str] | None = None) -> tuple[list[Path], list[int], list[str]]:
    """Files, labels and class wnids of one split, validated: the split folder exists and holds at least two
    class folders, each with an image, and (for val) the wnids are exactly the training ones."""
    folder = Path(root) / split
    if not folder.is_dir():
        raise DataUnavailableError(
            f"ImageNet {split} split not found at {folder}: ImageNet is licence-gated and never downloaded here; "
            "obtain ILSVRC2012_img_train.tar, ILSVRC2012_img_val.tar and the devkit from image-net.org, extract "
            "them into <wnid>/ class folders (torchvision.datasets.ImageNet(root, split) produces this layout) and "
            f"place them at {Path(root)}/train/<wnid>/ and {Path(root)}/val/<wnid>/, or pass data_dir=<folder "
            "holding imagenet/>")
    wnids = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if len(wnids) < 2:
        raise DataUnavailableError(f"{folder} holds {len(wnids)} class folders (<wnid>/); a classification split "
                                   "needs at least two: finish extracting the archive into wnid folders")
    if classes is not None and wnids != classes:
        missing, extra = sorted(set(classes) - set(wnids)), sorted(set(wnids) - set(classes))
        raise DataUnavailableError(f"{folder}: class folders differ from the training split's (missing "
                                   f"{missing[:5]}, extra {extra[:5]}); sort the val images into the same wnid folders")
    files, labels = [], []
    for label, wnid in enumerate(wnids):
        images = sorted(p for p in (folder / wnid).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise DataUnavailableError(f"{folder / wnid} holds no images (.JPEG): the extraction is incomplete")
        files += images
        labels += [label] * len(images)
    return files, labels, wnids
