"""Figures redrawn from stored rows: accuracy per latitude band (Fig. 4b) and accuracy against the number of
checkerboard support points (Fig. 4a), means with the spread (min to max) over replicates."""

import numpy as np
import pandas as pd

from repro.core.figures import new_figure, select_rows
from repro.papers.sh_siren.task import LATITUDE_BANDS


def latitude(rows: pd.DataFrame):
    fig, ax = new_figure(width=6.0)
    checkerboard = select_rows(rows, "checkerboard")
    columns = [f"test/acc_lat{low:+d}" for low in LATITUDE_BANDS]
    centres = LATITUDE_BANDS + 5
    for method in checkerboard["method"].unique():
        per_seed = select_rows(checkerboard, method=method)[columns].to_numpy(float)
        line, = ax.plot(centres, per_seed.mean(0), "o-", ms=3, label=method)
        ax.fill_between(centres, per_seed.min(0), per_seed.max(0), color=line.get_color(), alpha=0.2)
    ax.set(xlabel="latitude (10-degree bands)", ylabel="test accuracy", title="checkerboard accuracy by latitude",
           xticks=np.arange(-90, 91, 30))
    ax.legend(fontsize=7)
    return fig


def resolution(rows: pd.DataFrame):
    fig, ax = new_figure(width=5.0)
    points = select_rows(rows, "resolution")
    for (method, legendre), group in points.groupby(["method", "legendre"]):
        stats = group.groupby("support")["test/accuracy"].agg(["mean", "min", "max"])
        ax.errorbar(stats.index, stats["mean"], yerr=[stats["mean"] - stats["min"], stats["max"] - stats["mean"]],
                    fmt="o-", capsize=3, label=f"{method}, L = {legendre}")
    ax.set(xscale="log", xlabel="checkerboard support points (finer ->)", ylabel="test accuracy",
           title="resolution")
    ax.legend(fontsize=7)
    return fig
