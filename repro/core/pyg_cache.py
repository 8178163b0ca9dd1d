"""PyTorch Geometric's processed-dataset files, loaded only when this code wrote them.

PyG caches a processed dataset as torch files under ``<root>/processed`` and reads them back with
``torch.load(weights_only=True)``; when a file names a global that the safe loader does not know, PyG retries
with ``weights_only=False``, i.e. plain pickle, which runs whatever the file says. So a processed folder is
sealed right after PyG writes it (SHA-256 of every file, in ``processed.sha256.json`` beside it) and checked
before PyG may read it; a folder without a seal or with changed files is refused with its path.
"""

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from repro.core.errors import DataUnavailableError


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def seal_path(processed: Path) -> Path:
    return processed.with_name(processed.name + ".sha256.json")


@contextmanager
def sealed_processed(processed: Path) -> Iterator[None]:
    """Around the construction of a PyG dataset whose processed files live in `processed`: refuse files this
    code did not write, and seal the ones PyG writes inside the block."""
    processed, seal = Path(processed), seal_path(Path(processed))
    existed = processed.exists() and any(processed.iterdir())
    if existed:
        fix = f"delete {processed} so that the raw files are processed again"
        try:
            recorded = json.loads(seal.read_text())
        except FileNotFoundError:
            raise DataUnavailableError(f"{processed} holds processed files without the seal {seal.name} that repro "
                                       f"writes (placed by hand, or by an older version); {fix}") from None
        except ValueError as error:
            raise DataUnavailableError(f"the seal {seal} is unreadable ({error}); {fix}") from None
        if recorded != _digests(processed):
            raise DataUnavailableError(f"the processed files in {processed} differ from those repro wrote (their "
                                       f"SHA-256 in {seal.name}); {fix}")
    yield
    if processed.exists():
        current = _digests(processed)
        if not existed or not seal.exists() or json.loads(seal.read_text()) != current:
            seal.write_text(json.dumps(current, indent=1))
