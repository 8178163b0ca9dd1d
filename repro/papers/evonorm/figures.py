"""Fig. 1 (right) analogue: accuracy against batch size (log axis), one line per norm-act layer."""

import pandas as pd

from repro.core.figures import new_figure, select_rows

LABELS = {"bn_relu": "BN-ReLU", "gn_relu": "GN-ReLU", "evonorm_b0": "EvoNorm-B0", "evonorm_s0": "EvoNorm-S0"}


def accuracy_vs_batch(rows: pd.DataFrame):
    fig, ax = new_figure(width=4.6, height=3.4)
    for dataset in ("digits", "imagenet"):
        chosen = select_rows(rows, dataset)
        for layer, label in LABELS.items():
            points = select_rows(chosen, method=layer)
            if points.empty:
                continue
            stats = points.groupby("worker_batch")["test/acc"].agg(["mean", "std"]).sort_index()
            ax.errorbar(stats.index, stats["mean"], yerr=stats["std"].fillna(0), marker="o", capsize=3,
                        label=f"{label}" + (" (ImageNet)" if dataset == "imagenet" else ""))
    ax.set_xscale("log", base=2)
    ax.set(xlabel="batch per worker (batch statistics)", ylabel="test accuracy (%)",
           title="mean ± std over replicates")
    ax.legend()
    return fig
