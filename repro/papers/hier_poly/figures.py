"""Normalised test MSE and feature quality vs n/d^2 per d (all learners), and log n* vs log d with its fit."""

import numpy as np
import pandas as pd

from repro.core.claims import fit_slope
from repro.core.figures import new_figure, select_rows

STYLES = {"three_layer": "-", "random_features": "--", "krr": ":", "oracle": "-."}


def sample_complexity(rows: pd.DataFrame):
    fig, axes = new_figure(ncols=3, width=3.9)
    fits = select_rows(rows, "fit", kind="fit")
    colors = {d: f"C{i}" for i, d in enumerate(sorted(fits["d"].unique()))}
    for (method, d), group in fits.groupby(["method", "d"]):
        curve = group.groupby("ratio")["nmse"].mean()
        axes[0].plot(curve.index, curve.values, STYLES.get(method, "-"), color=colors[d], marker=".",
                     label=f"{method}, d = {d}" if d == min(colors) or method == "three_layer" else None)
        if method == "three_layer":
            rho = group.groupby("ratio")["rho"].mean()
            axes[1].plot(rho.index, rho.values, "o-", color=colors[d], label=f"d = {d}")
    axes[0].set(xscale="log", yscale="log", xlabel="n / d^2", ylabel="test MSE / Var h", title="test error")
    axes[0].legend(fontsize=5)
    axes[1].axhline(0.9, color="grey", ls=":")
    axes[1].set(xscale="log", xlabel="n / d^2", ylabel="rho = |corr(z(x), p(x))|", title="stage-1 feature")
    axes[1].legend(fontsize=6)
    stars = select_rows(rows, "fit", kind="n_star")
    stars = stars.dropna(subset=["n_star"]) if "n_star" in stars else stars
    axes[2].loglog(stars["d"], stars["n_star"], "o", label="n* (rho reaches 0.9), per seed")
    if stars["d"].nunique() >= 2 and len(stars) >= 3:
        fit = fit_slope(stars["d"].to_numpy(float), stars["n_star"].to_numpy(float), log=True)
        slope, lo, hi = fit.estimate, fit.lo, fit.hi
        d = np.array(sorted(stars["d"].unique()), dtype=float)
        centre = np.exp(np.log(stars["n_star"]).mean()) / np.exp(np.log(stars["d"]).mean()) ** slope
        axes[2].plot(d, centre * d**slope, "-", label=f"fit: slope {slope:.2f} ({lo:.2f} to {hi:.2f})")
        for k, style in ((2, "k:"), (6, "r:")):
            axes[2].plot(d, centre * d.mean() ** slope * (d / d.mean()) ** k, style,
                         label=f"slope {k} ({'theorem' if k == 2 else 'kernel bound, kq'})")
    ds = sorted(stars["d"].unique())
    axes[2].set(xlabel="d", ylabel="n*", title="sample complexity", xticks=ds, xticklabels=[str(d) for d in ds])
    axes[2].xaxis.set_minor_formatter("")
    axes[2].legend(fontsize=6)
    return fig
