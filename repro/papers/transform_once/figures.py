"""Figures redrawn from stored rows: step time against resolution, activation std through depth at init."""

import pandas as pd

from repro.core.figures import new_figure, select_rows


def step_time(rows: pd.DataFrame):
    fig, axes = new_figure(ncols=2, width=4.0)
    timing = select_rows(rows, "timing")
    for ax, dims in zip(axes, (1, 2)):
        points = select_rows(timing, dims=dims)
        for column, label in (("fno_step_time_s", "FNO"), ("t1_step_time_s", "T1")):
            by_resolution = points.groupby("resolution")[column]
            mean, spread = by_resolution.mean(), by_resolution.std().fillna(0)
            ax.errorbar(mean.index, mean.values, yerr=spread.values, marker="o", capsize=3, label=label)
        ax.set(xscale="log", yscale="log", title=f"{dims}D, one training step",
               xlabel="resolution (points per axis)", ylabel="seconds per step (mean +- sd over replicates)")
        ax.legend()
    return fig


def init_std(rows: pd.DataFrame):
    fig, ax = new_figure(ncols=1, width=4.5)
    init = select_rows(rows, "init")
    for method, label in (("naive", "naive (1 / c_in c_out)"), ("vp", "variance preserving")):
        curve = select_rows(init, method=method).groupby("layer")["std_ratio"]
        ax.errorbar(curve.mean().index, curve.mean().values, yerr=curve.std().fillna(0).values, marker="o",
                    capsize=3, label=label)
    ax.set(yscale="log", xlabel="layer (0: truncated input spectrum)", ylabel="std / std of lifted input",
           title="T1 at initialisation, white-noise inputs")
    ax.legend()
    return fig
