"""Figures redrawn from stored rows: error maps over (log10 v, log10 x) for ours and SciPy; vMF kappa estimates."""

import numpy as np
import pandas as pd

from repro.core.figures import new_figure, select_rows


def error_maps(rows: pd.DataFrame):
    """log10 relative error against mpmath on the grid (crosses: non-finite output), one panel per method x function."""
    fig, axes = new_figure(nrows=2, ncols=2, width=3.6)
    for ax, (method, function) in zip(np.ravel(axes), [(m, f) for f in ("log_i", "log_k") for m in ("ours", "scipy")]):
        cell = select_rows(rows, "accuracy", set="grid", method=method, function=function)
        if len(cell):
            finite = select_rows(cell, nonfinite=0)
            points = ax.scatter(np.log10(finite["v"].clip(lower=1e-1)), np.log10(finite["x"]), s=9, marker="s",
                                c=np.log10(finite["rel_err"].clip(lower=1e-17)), vmin=-17, vmax=-10, cmap="viridis")
            bad = select_rows(cell, nonfinite=1)
            ax.scatter(np.log10(bad["v"].clip(lower=1e-1)), np.log10(bad["x"]), s=12, marker="x", color="red")
            fig.colorbar(points, ax=ax, label="log10 rel. error")
        ax.set(title=f"{method}: {function} (x: non-finite)", xlabel="log10 v (v = 0 at -1)", ylabel="log10 x")
    return fig


def vmf_fits(rows: pd.DataFrame):
    """kappa_hat / kappa per method and (p, kappa); failed fits are drawn at 0."""
    fig, axes = new_figure(ncols=1, width=6.0)
    ax = np.ravel(axes)[0]
    fits = select_rows(rows, "vmf")
    if len(fits):
        cases = fits[["p", "kappa"]].drop_duplicates().sort_values(["p", "kappa"]).to_numpy()
        methods = list(dict.fromkeys(fits["method"]))
        for offset, method in enumerate(methods):
            ratio = [(select_rows(fits, p=p, kappa=k, method=method)["kappa_hat"] / k).fillna(0).mean()
                     for p, k in cases]
            ax.bar(np.arange(len(cases)) + 0.2 * offset, ratio, width=0.2, label=method)
        ax.set_xticks(np.arange(len(cases)) + 0.3, [f"p={int(p)}\nk={k:g}" for p, k in cases])
        ax.legend()
    ax.set(title="vMF maximum likelihood: kappa_hat / kappa (0 = fit failed)", ylabel="kappa_hat / kappa")
    return fig
