"""One figure style for the suite, and saving figures as PNG and PDF."""

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

if TYPE_CHECKING:
    import pandas as pd

STYLE = {
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "font.size": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "figure.constrained_layout.use": True,
}


def new_figure(ncols: int = 1, nrows: int = 1, width: float = 4.0, height: float = 3.2):
    """A figure in the suite's style; returns (fig, axes) like plt.subplots (axes squeezed)."""
    with plt.rc_context(STYLE):
        return plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=True)


def save_figure(fig: "plt.Figure", directory: Path, name: str) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in ("png", "pdf"):
        path = directory / f"{name}.{ext}"
        # Fixed metadata keeps regenerated files byte-stable when nothing changed.
        metadata = {"Software": None} if ext == "png" else {"Creator": None, "Producer": None, "CreationDate": None}
        with plt.rc_context(STYLE):
            fig.savefig(path, metadata=metadata)
        paths.append(path)
    plt.close(fig)
    return paths


def select_rows(rows: "pd.DataFrame", experiment: str | None = None, **where: object) -> "pd.DataFrame":
    """The rows of one sub-experiment (the ``experiment`` column every unit writes) matching ``where``
    (equality, or membership for a list); an empty frame when a column is missing."""
    import pandas as pd

    conditions = {**({"experiment": experiment} if experiment is not None else {}), **where}
    mask = pd.Series(True, index=rows.index)
    for key, value in conditions.items():
        if key not in rows.columns:
            return rows.iloc[:0]
        mask &= rows[key].isin(value if isinstance(value, list | tuple) else [value])
    return rows[mask]
