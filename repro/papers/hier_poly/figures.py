"""Normalised test MSE vs n/d^k per learner (k = 2), feature quality rho vs n/d^k (both k), and log n* vs log d
with its fitted slope per k."""

import numpy as np
import pandas as pd

from repro.core.claims import fit_slope
from repro.core.figures import new_figure, select_rows

STYLES = {"three_layer": "-", "random_features": "--", "krr": ":", "oracle": "-."}


def sample_complexity(rows: pd.DataFrame):
    fig, axes = new_figure(ncols=3, width=3.9)
    fits = select_rows(rows, "fit", kind="fit")
    colors = {d: f"C{i}" for i, d in enumerate(sorted(fits["d"].unique()))}
    quadratic = select_rows(fits, "fit", k=2)
    for (method, d), group in quadratic.groupby(["method", "d"]):
        curve = group.groupby("ratio")["nmse"].mean()
        first = d == quadratic[quadratic["method"] == method]["d"].min()
        axes[0].plot(curve.index, curve.values, STYLES[method], color=colors[d], marker=".",
                     label=f"{method}, d = {d}" if first or method == "three_layer" else None)
    for (k, d), group in select_rows(fits, "fit", method="three_layer").groupby(["k", "d"]):
        rho = group.groupby("ratio")["rho"].mean()
        axes[1].plot(rho.index, rho.values, "o-" if k == 2 else "s--", color=colors[d], label=f"k = {k}, d = {d}")
    axes[0].set(xscale="log", yscale="log", xlabel="n / d^2", ylabel="test MSE / Var h", title="test error, k = 2")
    axes[0].legend(fontsize=5)
    for axis in axes:
        axis.xaxis.set_minor_formatter("")
    axes[1].axhline(0.9, color="grey", ls=":")
    axes[1].set(xscale="log", xlabel="n / d^k", ylabel="rho = |corr(z(x), p(x))|", title="stage-1 feature")
    axes[1].legend(fontsize=5)
    stars = select_rows(rows, "fit", kind="n_star").dropna(subset=["n_star"])
    for k, group in stars.groupby("k"):
        axes[2].loglog(group["d"], group["n_star"], "o" if k == 2 else "s", color=f"C{k}",
                       label=f"k = {k}: n* per replicate")
        if group["d"].nunique() >= 2 and len(group) >= 3:
            fit = fit_slope(group["d"].to_numpy(float), group["n_star"].to_numpy(float), log=True)
            d = np.array(sorted(group["d"].unique()), dtype=float)
            centre = np.exp(np.log(group["n_star"]).mean() - fit.estimate * np.log(group["d"]).mean())
            axes[2].plot(d, centre * d**fit.estimate, "-", color=f"C{k}",
                         label=f"fit {fit.estimate:.2f} ({fit.lo:.2f} to {fit.hi:.2f}); theorem {k}")
    axes[2].set(xlabel="d", ylabel="n*", title="sample complexity")
    axes[2].legend(fontsize=5)
    return fig
