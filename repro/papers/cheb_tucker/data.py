"""The authors' shipped inputs (github.com/bonans/ChebTuck, data/): CP tensors on cell-centred grids, read with
scipy.io.loadmat (MATLAB 5 files; no pickle) and validated.

- Biomolecule long-range potentials, data/Data_256-2048/n<n>_Pn<N>.mat: struct LRed with LAM1C (R,) and
  CU1, CU2, CU3 (n, R), and the grid step Hunif; biomol_tabs.m uses lam = LAM1C / Hunif^3 and U_a = CU_a.
- Newton kernel 1/|x|, data/Newton_CP_-1_1/Newt_canon_<n>.mat: U1r (n, R); newton_tabs.m uses U = U1r / h in
  every mode (h = 2 / n), lam = 1, and the first ceil(R / 2) - 3 columns as the long-range part.

Each file is pinned by its git blob id (SHA-1 of "blob <size>\\0" + content, as listed by the repository's tree).
"""

import hashlib
import math
from pathlib import Path

import numpy as np
from scipy import io
from scipy.io.matlab import MatReadError

from repro.core.data import fetch
from repro.core.errors import DataUnavailableError
from repro.papers.cheb_tucker.kernel import CPTensor

SOURCE = "https://github.com/bonans/ChebTuck/raw/main/data/"
BLOB_IDS = {   # git ls-tree of bonans/ChebTuck at d3235ce ("initial public release")
    "Data_256-2048/n256_Pn500.mat": "50eb4e81e5ff67ef7e815b1c4d49f728f18860c6",
    "Data_256-2048/n512_Pn500.mat": "36f295f18dd3df2cf6b26c79646bd447744f5ae9",
    "Data_256-2048/n1024_Pn500.mat": "d024728fcaf65e39bec61e296d8c9fb041c956c7",
    "Data_256-2048/n2048_Pn100.mat": "7b261576c6b2716f183f0ec633ed14e676d03145",
    "Data_256-2048/n2048_Pn200.mat": "5afc156dd3ea0b7dc7fbb0cfbcaf0e40396b9e30",
    "Data_256-2048/n2048_Pn300.mat": "84ff3375ad77c5f2acc8c6bbb297a6444c7462a6",
    "Data_256-2048/n2048_Pn400.mat": "d727228f1f9ab8dc2173dcdc4470f15bd5716668",
    "Data_256-2048/n2048_Pn500.mat": "81cd24a64c542915c31e989529e09bc34f80190b",
    "Data_256-2048/n2048_Pn600.mat": "42d360ae399050d9e6295f1a8d05fc0c7cd6c0f3",
    "Newton_CP_-1_1/Newt_canon_256.mat": "059f22444b6a86a695674cf5e1cf836f61708cb9",
    "Newton_CP_-1_1/Newt_canon_512.mat": "842e925ec7a15b4e3373f10cc2cab33126265e2f",
    "Newton_CP_-1_1/Newt_canon_1024.mat": "ee3cdd557129472b0d17513500bc79fc7e47db7a",
    "Newton_CP_-1_1/Newt_canon_2048.mat": "736b2d1e870f0c8b8890b347b6e89f49373ade3c",
    "Newton_CP_-1_1/Newt_canon_4096.mat": "31b1ac805a388a13dc2b7e770a90e3dec20eadba",
}


def biomol_name(n: int, count: int) -> str:
    return f"Data_256-2048/n{n}_Pn{count}.mat"


def newton_name(n: int) -> str:
    return f"Newton_CP_-1_1/Newt_canon_{n}.mat"


def git_blob_id(path: Path) -> str:
    content = Path(path).read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def obtain(data_dir: Path, name: str) -> Path:
    """data_dir/cheb_tucker/<name>, downloaded from the authors' repository if absent; a pinned file must match
    its blob id (a file without a pin, e.g. a small test file, is read as it is)."""
    path = fetch(SOURCE + name, Path(data_dir) / "cheb_tucker" / name)
    if name in BLOB_IDS and git_blob_id(path) != BLOB_IDS[name]:
        raise DataUnavailableError(f"{path}: git blob id {git_blob_id(path)} is not the authors' "
                                   f"{BLOB_IDS[name]}; delete it and download {SOURCE + name} again")
    return path


def read_mat(path: Path) -> dict:
    try:
        return io.loadmat(path, simplify_cells=True)
    except (MatReadError, ValueError, NotImplementedError, OSError) as error:
        raise DataUnavailableError(f"{path}: not a readable MATLAB 5 .mat file ({error}); download it again "
                                   f"from {SOURCE}") from error


def factor(path: Path, value: object, name: str, n: int, columns: int | None = None) -> np.ndarray:
    array = np.asarray(value, dtype=float) if isinstance(value, np.ndarray) else None
    if array is None or array.ndim != 2 or array.shape[0] != n or (columns is not None and array.shape[1] != columns):
        shape = getattr(value, "shape", type(value).__name__)
        raise DataUnavailableError(f"{path}: {name} should be an ({n}, {columns or 'R'}) numeric matrix, found "
                                   f"{shape}; download the file again from {SOURCE}")
    if not np.isfinite(array).all():
        raise DataUnavailableError(f"{path}: {name} has {int((~np.isfinite(array)).sum())} non-finite values")
    return array


def load_biomol(path: Path, n: int) -> CPTensor:
    """The biomolecule's long-range CP tensor on the n^3 grid: lam = LAM1C / Hunif^3, U_a = CU_a."""
    contents = read_mat(path)
    structure, step = contents.get("LRed"), contents.get("Hunif")
    if not isinstance(structure, dict) or not {"LAM1C", "CU1", "CU2", "CU3"} <= set(structure):
        raise DataUnavailableError(f"{path}: expected a struct LRed with fields LAM1C, CU1, CU2, CU3")
    if not isinstance(step, float) or not step > 0:
        raise DataUnavailableError(f"{path}: expected a positive scalar Hunif (the grid step), found {step!r}")
    weights = np.atleast_1d(np.asarray(structure["LAM1C"], dtype=float))
    if weights.ndim != 1 or not np.isfinite(weights).all():
        raise DataUnavailableError(f"{path}: LAM1C should be a finite vector of CP weights")
    factors = [factor(path, structure[f"CU{a}"], f"LRed.CU{a}", n, weights.size) for a in (1, 2, 3)]
    return CPTensor(factors, weights / step**3)


def load_newton(path: Path, n: int, long_range: bool) -> CPTensor:
    """The Newton kernel's CP tensor on the n^3 grid of [-1, 1]^3: U = U1r / h in every mode, lam = 1; the
    long-range part is its first ceil(R / 2) - 3 columns (newton_tabs.m)."""
    columns = factor(path, read_mat(path).get("U1r"), "U1r", n) / (2 / n)
    if long_range:
        columns = columns[:, :math.ceil(columns.shape[1] / 2) - 3]
    return CPTensor([columns] * 3, np.ones(columns.shape[1]))
