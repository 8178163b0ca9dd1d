"""Convergence in n and stability under jitter on log-log axes (mean and min-max over replicates)."""

import pandas as pd

from repro.core.figures import new_figure, select_rows

LABELS = {"mma_image": "MMA image (2 parameters)", "pi_1p": "persistence image (scale only)"}


def _spread(ax, rows: pd.DataFrame, x: str, label: str) -> None:
    stats = rows.groupby(x)["distance"].agg(["mean", "min", "max"])
    ax.loglog(stats.index, stats["mean"], "o-", label=label)
    ax.fill_between(stats.index, stats["min"], stats["max"], alpha=0.25)


def convergence_stability(rows: pd.DataFrame):
    fig, axes = new_figure(ncols=2, width=4.0)
    for method, label in LABELS.items():
        convergence = select_rows(rows, "convergence", method=method)
        if len(convergence):
            _spread(axes[0], convergence, "n1", label)
        stability = select_rows(rows, "stability", method=method)
        if len(stability):
            _spread(axes[1], stability, "eps", label)
    axes[0].set(title="convergence: annulus with n1 vs 4 n1 points", xlabel="n1",
                ylabel="|| I_n1 / |I_n1| - I_4n1 / |I_4n1| ||")
    axes[1].set(title="stability: all filtration values jittered by eps", xlabel="eps (normalised box)",
                ylabel="|| I' - I || / || I ||")
    axes[0].legend()
    return fig
