"""Figures redrawn from stored rows: top-1 against the EBV dimension d (FC and cosine heads as reference
lines), and the pairwise cosines of the generated EBVs against random unit vectors of the same shape."""

import numpy as np
import pandas as pd

from repro.core.figures import new_figure, select_rows

DATASETS = {"synthetic": "synthetic, 200 classes", "digits": "digits, 10 classes", "imagenet": "ImageNet-1K"}


def accuracy_vs_dim(rows: pd.DataFrame):
    present = [name for name in DATASETS if not select_rows(rows, name, row_type="head").empty] or ["synthetic"]
    fig, axes = new_figure(ncols=len(present), width=4.2)
    for ax, name in zip(np.atleast_1d(axes), present):
        heads = select_rows(rows, name, row_type="head")
        ebv = heads[heads["method"].astype(str).str.startswith("ebv")]
        if not ebv.empty:
            stats = ebv.groupby("dim")["test/acc"].agg(["mean", "std"]).sort_index()
            ax.errorbar(stats.index, 100 * stats["mean"], yerr=100 * stats["std"].fillna(0), marker="o", capsize=3,
                        label="EBV (fixed)")
        for method, style in (("fc", "--"), ("cosine", ":")):
            reference = select_rows(heads, method=method)
            if not reference.empty:
                ax.axhline(100 * reference["test/acc"].mean(), linestyle=style, color="k" if method == "fc" else "gray",
                           label="FC softmax" if method == "fc" else "cosine, learned prototypes")
        classes = int(heads["classes"].iloc[0]) if not heads.empty else 0
        ax.set_xscale("log", base=2)
        ax.set(title=f"{DATASETS[name]} (N = {classes})", xlabel="EBV dimension d", ylabel="test top-1 (%)")
        ax.legend()
    return fig


def cosine_histograms(rows: pd.DataFrame):
    hist = select_rows(rows, row_type="cos_hist")
    name = "synthetic" if not select_rows(hist, "synthetic").empty else next(iter(hist["experiment"].unique()), None) \
        if not hist.empty else None
    hist = select_rows(hist, name) if name is not None else hist
    dims = sorted(hist["dim"].unique(), reverse=True) if not hist.empty else [0]
    fig, axes = new_figure(ncols=len(dims), width=3.6)
    for ax, d in zip(np.atleast_1d(axes), dims):
        for vectors, color in (("random", "gray"), ("ebv", "C0")):
            curve = select_rows(hist, dim=d, vectors=vectors).groupby("bin_center")["density"].mean()
            if not curve.empty:
                width = float(np.diff(curve.index).min()) if len(curve) > 1 else 0.05
                ax.bar(curve.index, curve.values, width=width, alpha=0.55, color=color,
                       label="generated EBV" if vectors == "ebv" else "random unit vectors")
        classes = int(hist["classes"].iloc[0]) if not hist.empty else 0
        ax.set_yscale("log")   # the few pairs far above the Welch bound stay visible
        ax.set(title=f"{DATASETS.get(name, name)}: N = {classes}, d = {d}", xlabel="cos(w_i, w_j), i < j",
               ylabel="density (log)")
        ax.legend()
    return fig
