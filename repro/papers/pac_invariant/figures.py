"""Violation rate on fresh interventions vs the number N of training interventions, one curve per d."""

import numpy as np
import pandas as pd

from repro.core.claims import fit_slope
from repro.core.figures import new_figure, select_rows


def violation(rows: pd.DataFrame):
    fig, axes = new_figure(ncols=2, width=4.2)
    invariant = select_rows(rows, "violation", method="invariant")
    for d, group in invariant.groupby("d"):
        stats = group.groupby("N")["violation_rate"].agg(["mean", "std"])
        fit = group[(group["N"] >= 4) & (group["violation_rate"] > 0)]
        label = f"d = {d}"
        if fit["N"].nunique() >= 3:
            slope = fit_slope(fit["N"].to_numpy(float), fit["violation_rate"].to_numpy(float), log=True)
            label += f" (slope {slope.estimate:.2f}, CI {slope.lo:.2f} to {slope.hi:.2f})"
        axes[0].errorbar(stats.index, stats["mean"], yerr=stats["std"].fillna(0), marker="o", capsize=2, label=label)
        erm = select_rows(rows, "violation", method="erm", d=d).groupby("N")["violation_rate"].mean()
        axes[1].plot(erm.index, erm.values, "s--", label=f"pooled ERM, d = {d}")
        axes[1].plot(stats.index, stats["mean"], "o-", label=f"eps-invariant, d = {d}")
    if len(invariant):
        n = np.array(sorted(invariant["N"].unique()), dtype=float)
        anchor = invariant[invariant["N"] == n[1]]["violation_rate"].mean() if len(n) > 1 else 1.0
        axes[0].plot(n, anchor * n[1] / n, "k:", label="1/N")
    axes[0].set(xscale="log", yscale="log", xlabel="training interventions N", ylabel="violation rate (|g| > eps)",
                title="eps-invariant learner, k = 2 sites")
    axes[1].set(xscale="log", xlabel="training interventions N", ylabel="violation rate", title="vs pooled ERM")
    axes[0].legend(fontsize=6)
    axes[1].legend(fontsize=6)
    return fig
