"""Test accuracy against the log10 condition number, one line per normalisation (mean and spread over seeds)."""

import pandas as pd

from repro.core.figures import new_figure, select_rows

LABELS = {"none": "no normalisation", "spdnetbn": "SPDNetBN (affine-invariant)", "bwbn": "BW-BN (M = I)",
          "gbwbn": "GBWBN (learned M)"}


def accuracy_vs_condition(rows: pd.DataFrame):
    fig, ax = new_figure(width=4.6)
    synthetic = select_rows(rows, "synthetic")
    if synthetic.empty:  # scale=paper runs MAMEM only
        ax.text(0.5, 0.5, "no synthetic rows at this scale", ha="center", transform=ax.transAxes)
        return fig
    for method, label in LABELS.items():
        stats = select_rows(synthetic, method=method).groupby("kappa")["test/acc"].agg(["mean", "std", "count"])
        if stats.empty:
            continue
        ax.errorbar(stats.index, stats["mean"], yerr=stats["std"].fillna(0.0), marker="o", capsize=3, label=label)
    ax.set(xlabel="log10 condition number kappa", ylabel="test accuracy (mean +- std over seeds)",
           title="Ill-conditioned SPD classes")
    ax.legend()
    return fig
