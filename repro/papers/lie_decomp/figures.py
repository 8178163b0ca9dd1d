"""Figures redrawn from stored rows: accuracy per test set and method, and the SL(2) network's affine-test
accuracy against the number of Monte Carlo group samples read at inference (mean and std over replicates)."""

import numpy as np
import pandas as pd

from repro.core.figures import new_figure, select_rows

LABELS = {"cnn": "CNN", "cnn_aug": "CNN + affine aug.", "so2": "SO(2) G-CNN", "sl2": "R2 x| SL(2)",
          "gl2": "R2 x| GL+(2)"}
TEST_SETS = {"clean/acc": "clean", "affine/acc": "affine", "homography/acc": "homography"}


def accuracy(rows: pd.DataFrame):
    fig, ax = new_figure(width=6.0)
    main = select_rows(rows, eval="main")
    methods = [m for m in LABELS if m in set(main["method"])]
    width = 0.8 / max(len(methods), 1)
    for i, method in enumerate(methods):
        chosen = select_rows(main, method=method)
        means = [chosen[column].mean() for column in TEST_SETS]
        spreads = [chosen[column].std(ddof=1) if len(chosen) > 1 else 0.0 for column in TEST_SETS]
        ax.bar(np.arange(len(TEST_SETS)) + i * width, means, width, yerr=spreads, capsize=2, label=LABELS[method])
    ax.set_xticks(np.arange(len(TEST_SETS)) + 0.4 - width / 2, list(TEST_SETS.values()))
    ax.set(ylabel="test accuracy (mean +- std)", ylim=(0, 1))
    ax.legend(fontsize=7, ncols=3, loc="upper center", bbox_to_anchor=(0.5, -0.1))
    return fig


def group_samples(rows: pd.DataFrame):
    fig, ax = new_figure()
    sweep = select_rows(rows, eval="samples", method="sl2").groupby("test_samples")["affine_subset/acc"]
    means, spreads = sweep.mean(), sweep.std(ddof=1).fillna(0.0)
    ax.errorbar(means.index, means.values, yerr=spreads.values, fmt="o-", capsize=3, label="R2 x| SL(2)")
    trained = select_rows(rows, eval="main", method="sl2")["group_samples"]
    ax.set(xscale="log", xlabel="group samples per layer at inference", ylabel="affine-test accuracy (mean +- std)",
           title=f"trained with {int(trained.iloc[0])} samples per layer" if len(trained) else "")
    ax.set_xticks(list(means.index), [str(int(v)) for v in means.index])
    ax.minorticks_off()
    ax.legend()
    return fig
