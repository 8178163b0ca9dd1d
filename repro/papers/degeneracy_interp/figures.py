"""Predicted vs measured free directions, SGLD LLC vs (N - K)/2, edge Gini per basis."""

import numpy as np
import pandas as pd

from repro.core.figures import new_figure, select_rows


def degeneracy(rows: pd.DataFrame):
    fig, axes = new_figure(ncols=3, width=3.6)
    free, llc = select_rows(rows, "free"), select_rows(rows, "llc")
    for variant, group in free.groupby("variant"):
        axes[0].plot(group["free_predicted"], group["free_measured"], "o", label=variant)
    for variant, group in llc.groupby("variant"):
        axes[1].plot(group["llc_predicted"], group["llc_sgld"], "o", label=variant)
    if len(llc):
        axes[1].plot(llc["llc_predicted"], llc["llc_localized_quadratic"], "x", color="grey",
                     label="localised quadratic")
    for ax, table, column in ((axes[0], free, "free_predicted"), (axes[1], llc, "llc_predicted")):
        if len(table):
            line = np.array([table[column].min(), table[column].max()])
            ax.plot(line, line, "k--", lw=1, label="prediction (y = x)")
        ax.legend(fontsize=7)
    axes[0].set(title="free directions", xlabel="predicted (Sec. 3 types a-c)", ylabel="null(H_B) measured")
    axes[1].set(title="local learning coefficient", xlabel="(N - K) / 2", ylabel="SGLD estimate")
    sparsity = select_rows(rows, "sparsity")
    if len(sparsity):
        stats = sparsity.groupby(["layer", "basis"])["gini"].mean().unstack()
        stats.plot.bar(ax=axes[2], rot=0)
    axes[2].set(title="edge sparsity (digits MLP)", xlabel="layer transition", ylabel="Gini of edge strengths")
    return fig
