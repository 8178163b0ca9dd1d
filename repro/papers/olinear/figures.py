"""Figure: forward FLOPs per sample (x) vs test MSE (y) for each variant (the paper's NormLin vs attention plot)."""

import pandas as pd

from repro.core.figures import new_figure, select_rows


def flops_vs_mse(rows: pd.DataFrame):
    counts = select_rows(rows, "flops")
    datasets = list(dict.fromkeys(counts["dataset"])) if "dataset" in counts else []
    fig, axes = new_figure(ncols=max(2, len(datasets)), width=3.8)
    for ax, name in zip(axes, datasets):
        mse = select_rows(rows, name).groupby("method")["test/mse"].mean()
        flops = select_rows(counts, dataset=name).groupby("method")["flops"].mean()
        for variant in mse.index.intersection(flops.index):
            ax.plot(flops[variant], mse[variant], "o", label=variant)
        ax.set(xscale="log", xlabel="FLOPs per forward pass (one sample)", ylabel="test MSE (z-scored)", title=name)
    axes[0].legend()
    return fig
