"""Figures redrawn from stored rows: time per call and speed-up vs L (log-log) per operation class, errors vs L."""

import numpy as np
import pandas as pd
from matplotlib.ticker import NullFormatter, ScalarFormatter

from repro.core.figures import new_figure, select_rows

LABELS = {"dense": "dense Gaunt table", "cg": "e3nn CG full TP", "grid": "e3nn S2 grid", "fft": "2D Fourier + FFT",
          "escn": "eSCN SO(2)", "mace": "MACE contraction (CG)"}
COLORS = {"dense": "C0", "cg": "C1", "grid": "C2", "fft": "C3", "escn": "C4", "mace": "C5"}  # one per method


def efficiency(rows: pd.DataFrame):
    """Left: seconds per call vs number of degrees L+1 with L^3 and L^6 guides. Right: baseline / FFT time."""
    fig, (left, right) = new_figure(ncols=2, width=4.0)
    timing = select_rows(rows, "products", kind="timing")
    for method, label in LABELS.items():
        curve = select_rows(timing, method=method).groupby("degrees")["time_s"].mean()
        left.loglog(curve.index, curve.values, "o-", color=COLORS[method], label=label)
    if not timing.empty:
        n = np.array(sorted(timing["degrees"].unique()), dtype=float)
        anchor = select_rows(timing, degrees=n[-1])["time_s"].median()
        for power, style in ((3, ":"), (6, "--")):
            left.loglog(n, anchor * (n / n[-1]) ** power, "k" + style, lw=0.8, label=f"~ L^{power}")
    left.set(xlabel="degrees L+1", ylabel="time per call (s)", title="full Gaunt product")
    left.legend(fontsize=7)
    for baseline in ("cg", "dense", "grid"):
        chosen = select_rows(rows, "products", kind="speedup", baseline=baseline)
        curve = chosen.groupby("degrees")["speedup_x"].mean()
        right.loglog(curve.index, curve.values, "o-", color=COLORS[baseline], label=f"{LABELS[baseline]} / FFT")
    right.axhline(1.0, color="k", lw=0.8)
    right.set(xlabel="degrees L+1", ylabel="speed-up of FFT (x)", title="side by side, same process")
    right.legend(fontsize=7)
    for ax in (left, right):
        if not timing.empty:
            ax.set_xticks(sorted(timing["degrees"].unique()))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
    return fig


def accuracy(rows: pd.DataFrame):
    """Relative deviation from the dense table and equivariance error vs L, per method (log y)."""
    fig, (left, right) = new_figure(ncols=2, width=4.0)
    for ax, kind, metric, title in ((left, "agreement", "max_rel_error", "deviation from dense table"),
                                    (right, "equivariance", "equivariance_error", "equivariance error")):
        for method, label in LABELS.items():
            curve = select_rows(rows, "products", kind=kind, method=method).groupby("degrees")[metric].max()
            ax.semilogy(curve.index, curve.clip(lower=1e-18).values, "o-", color=COLORS[method], label=label)
        ax.axhline(1e-10, color="k", ls="--", lw=0.8)
        ax.set(xlabel="degrees L+1", ylabel="max relative error", title=title)
    left.legend(fontsize=7)
    return fig


def operations(rows: pd.DataFrame):
    """Time per call (log-log) of the convolution routes vs L+1, the many-body routes vs L+1 at the default
    correlation, and vs the correlation order nu at the fixed L."""
    fig, axes = new_figure(ncols=3, width=3.6)
    panels = ((axes[0], select_rows(rows, "convolution", kind="timing"), "degrees", "degrees L+1",
               "equivariant convolution"),
              (axes[1], select_rows(rows, "manybody", kind="timing", degree_series=True), "degrees", "degrees L+1",
               "many-body, nu fixed"),
              (axes[2], select_rows(rows, "manybody", kind="timing", correlation_series=True), "correlation",
               "correlation order nu", "many-body, L fixed"))
    for ax, timing, x, xlabel, title in panels:
        for method in timing["method"].unique() if not timing.empty else []:
            curve = select_rows(timing, method=method).groupby(x)["time_s"].median()
            ax.loglog(curve.index, curve.values, "o-", color=COLORS[method], label=LABELS[method])
        ax.set(xlabel=xlabel, ylabel="time per call (s)", title=title)
        if not timing.empty:
            ax.set_xticks(sorted(timing[x].unique()))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.legend(fontsize=7)
    return fig
