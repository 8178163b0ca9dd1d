"""Figures redrawn from stored rows: l1 error vs eps (Figure 1 analogue), DP-KDE time and error vs projected
dimension (Figure 2 analogue), accuracy vs wall time for private classification (Figure 3 analogue)."""

import pandas as pd

from repro.core.figures import new_figure, select_rows


def l1_error_vs_eps(rows: pd.DataFrame):
    fig, ax = new_figure()
    binned = select_rows(rows, "l1_digits", method=["tree", "prefix_sums", "flat"])
    styles = {"tree": "o-", "prefix_sums": "^:", "flat": "s--"}
    for (method, bits), part in binned.groupby(["method", "log2_bins"]):
        curve = part.groupby("eps")["rel_err"].mean()
        ax.loglog(curve.index, curve.values, styles[method], label=f"{method}, B = 2^{bits:g}")
    grid = select_rows(rows, "l1_digits", method="huang_roth")
    if len(grid):
        curve = grid.groupby("eps")["rel_err"].mean()
        ax.loglog(curve.index, curve.values, "kd-", label="huang_roth (grid)")
    ax.set(title="l1 queries on digits", xlabel="eps", ylabel="median relative error")
    ax.legend(fontsize=7)
    return fig


def kde_projection(rows: pd.DataFrame):
    fig, axes = new_figure(ncols=2, width=3.6)
    kde = select_rows(rows, "kde")
    for eps, part in kde.groupby("eps"):
        curve = part.groupby("projected_dim")[["query_time_s", "rel_err"]].mean()
        axes[0].plot(curve.index, curve["query_time_s"] * 1e6, "o-", label=f"eps = {eps:g}")
        axes[1].plot(curve.index, curve["rel_err"], "o-", label=f"eps = {eps:g}")
    axes[0].set(xscale="log", title="query time (d' = 64: no projection)", xlabel="d'", ylabel="us per query")
    axes[1].set(xscale="log", yscale="log", title="median relative error", xlabel="d'", ylabel="relative error")
    axes[1].legend()
    return fig


def accuracy_vs_time(rows: pd.DataFrame):
    fig, ax = new_figure()
    private = select_rows(rows, "classify", method=["dpsgd_logreg", "avg_kde", "avg_cosine"])
    for method, part in private.groupby("method"):
        points = part.groupby("eps")[["time_s", "acc"]].mean()
        ax.semilogx(points["time_s"], points["acc"], "o-", label=method)
        for eps, point in points.iterrows():
            ax.annotate(f"{eps:g}", (point["time_s"], point["acc"]), fontsize=6)
    baseline = select_rows(rows, "classify", method="centroid_nonprivate")["acc"]
    if len(baseline):
        ax.axhline(baseline.mean(), ls=":", color="gray", label="non-private centroid")
    ax.set(title="private classification on digits (labels: eps)", xlabel="wall time (s)", ylabel="test accuracy")
    ax.legend(fontsize=7)
    return fig
