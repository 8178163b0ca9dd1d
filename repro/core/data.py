"""Downloads for scale=paper: into data/, verified by SHA-256, cached, with a clear message when offline."""

import hashlib
import shutil
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from repro.core.errors import DataUnavailableError


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(url: str, dest: Path, checksum: str | None = None, timeout: float = 30.0) -> Path:
    """Return `dest`, downloading `url` there first unless a copy with the right checksum is cached.

    Offline, or on a checksum mismatch, raises DataUnavailableError saying what to fetch and where to put it.
    """
    dest = Path(dest)
    if dest.exists() and (checksum is None or sha256(dest) == checksum):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_suffix(dest.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(partial, "wb") as f:
            shutil.copyfileobj(response, f)
    except (urllib.error.URLError, OSError) as error:
        partial.unlink(missing_ok=True)
        raise DataUnavailableError(
            f"cannot download {url} ({error}); fetch it on a machine with network and place it at {dest}"
        ) from error
    if checksum is not None and sha256(partial) != checksum:
        partial.unlink()
        raise DataUnavailableError(f"{url} downloaded with a wrong SHA-256 (expected {checksum}); "
                                   f"the source changed or the transfer broke: place a verified copy at {dest}")
    partial.replace(dest)
    return dest


def fetch_zip(url: str, archive: Path, directory: Path, checksum: str | None = None) -> Path:
    """Download the zip archive `url` to `archive` (as `fetch`) and unpack it into `directory`; an archive that
    is not a zip file raises DataUnavailableError naming it and what to do."""
    fetched = fetch(url, archive, checksum)
    try:
        with zipfile.ZipFile(fetched) as opened:
            opened.extractall(directory)
    except zipfile.BadZipFile as error:
        raise DataUnavailableError(f"{fetched} is not a zip archive ({error}); delete it and download {url} again") \
            from error
    return Path(directory)


def require(path: Path, what: str, how: str) -> Path:
    """Fail with a message naming the missing data, how to obtain it, and where it must go."""
    if not Path(path).exists():
        raise DataUnavailableError(f"{what} not found at {path}: {how}")
    return Path(path)
