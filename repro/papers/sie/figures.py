"""Figure redrawn from stored rows: rotation R^2 and linear top-1 per method and representation part."""

import numpy as np
import pandas as pd

from repro.core.figures import new_figure, select_rows

PARTS = ("full", "inv", "equi")


def probes(rows: pd.DataFrame):
    """Bars: mean over replicates; whiskers: min to max over replicates."""
    fig, axes = new_figure(ncols=2, width=4.4)
    chosen = select_rows(rows, "ssl")
    methods = list(dict.fromkeys(chosen["method"]))
    width = 0.8 / len(PARTS)
    for ax, metric, label in ((axes[0], "rotation/r2", "rotation R^2 (MLP probe, held-out objects)"),
                              (axes[1], "top1", "linear top-1 (held-out objects)")):
        for k, part in enumerate(PARTS):
            stats = select_rows(chosen, part=part).groupby("method")[metric].agg(["mean", "min", "max"])
            stats = stats.reindex(methods)
            x = np.arange(len(methods)) + (k - 1) * width
            error = np.stack([stats["mean"] - stats["min"], stats["max"] - stats["mean"]])
            ax.bar(x, stats["mean"], width, yerr=error, capsize=2, label=part)
        ax.set_xticks(np.arange(len(methods)), methods, rotation=20, fontsize=7)
        ax.set(ylabel=label)
    axes[0].legend(title="part")
    return fig
