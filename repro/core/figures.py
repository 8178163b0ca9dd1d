"""One figure style for the suite, and saving figures as PNG and PDF."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

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
