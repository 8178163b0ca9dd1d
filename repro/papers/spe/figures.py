"""Figures redrawn from stored rows: sensitivity vs perturbation size (C12) and vs eigengap (ER graphs)."""

import pandas as pd

from repro.core.figures import new_figure, select_rows

LABELS = {"eigvecs": "raw eigenvectors", "projectors": "eigenspace projectors", "spe": "SPE (smooth phi)"}


def sensitivity(rows: pd.DataFrame):
    fig, axes = new_figure(ncols=3, width=3.6)
    cycle = select_rows(rows, "probe", probe="c12")
    for ax, d in zip(axes[:2], (4, 5)):
        for method, label in LABELS.items():
            curve = select_rows(cycle, d=d, method=method).groupby("eps")["ratio"].mean()
            ax.loglog(curve.index, curve.values, "o-", label=label)
        ax.set(title=f"C12, d = {d}", xlabel="perturbation eps", ylabel="||PE(L') - PE(L)|| / ||L' - L||")
        ax.invert_xaxis()
    axes[0].legend()
    er = select_rows(rows, "probe", probe="er")
    for method, label in LABELS.items():
        points = select_rows(er, method=method)
        axes[2].loglog(points["boundary_gap"], points["ratio"], ".", alpha=0.6, label=label)
    axes[2].set(title="G(20, 0.25), d = 5", xlabel="gap lambda_{d+1} - lambda_d", ylabel="sensitivity ratio")
    return fig
