"""Figures redrawn from stored rows: PER's regularisers and weights along training, equivariance errors."""

import numpy as np
import pandas as pd

from repro.core.figures import new_figure, select_rows
from repro.papers.soft_equiv.task import CANDIDATES

LABELS = {"o3": "O(3)", "o2xy": "O(2) about z (exact)", "o2yz": "O(2) about x", "o2xz": "O(2) about y"}


def discovery(rows: pd.DataFrame):
    fig, axes = new_figure(ncols=3, width=3.8)
    curves = select_rows(rows, "inertia", method="per", record="curve")
    eps = curves["eps"].max()
    for group in CANDIDATES:
        curve = select_rows(curves, group=group, eps=eps).groupby("epoch")
        for ax, column in zip(axes[:2], ("regulariser", "lambda")):
            mean, spread = curve[column].mean(), curve[column].std().fillna(0)
            ax.plot(mean.index, mean.values, label=LABELS[group])
            ax.fill_between(mean.index, (mean - spread).values, (mean + spread).values, alpha=0.2)
    axes[0].set(yscale="log", xlabel="epoch", ylabel="R_i (PER)", title=f"regulariser per group, eps = {eps}")
    axes[1].set(yscale="symlog", xlabel="epoch", ylabel="lambda_i", title="regulariser weight (retuned once)")
    axes[0].legend(fontsize=7)
    errors = select_rows(rows, record="group", eps=eps)
    # the true function's errors come from the `target` experiment (method "-")
    methods = [m for m in ("-", "per", "rpp", "mlp", "emlp_o3", "emlp_o2xy") if m in set(errors["method"])]
    width = 0.8 / len(CANDIDATES)
    for k, group in enumerate(CANDIDATES):
        stats = [select_rows(errors, method=m, group=group)["equiv_error"] for m in methods]
        axes[2].bar(np.arange(len(methods)) + k * width, [s.mean() for s in stats], width,
                    yerr=[s.std() if len(s) > 1 else 0 for s in stats], label=LABELS[group])
    axes[2].set(xticks=np.arange(len(methods)) + 0.4 - width / 2, yscale="log", ylabel="relative equivariance error",
                title="equivariance error at the end")
    axes[2].set_xticklabels(["target" if m == "-" else m for m in methods], rotation=30, fontsize=7)
    return fig
