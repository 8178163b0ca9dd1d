"""Figure: forward FLOPs per sample (x) vs test MSE (y) for each variant (the paper's NormLin vs attention plot)."""

import pandas as pd

from repro.core.figures import new_figure


def flops_vs_mse(rows: pd.DataFrame):
    fig, axes = new_figure(ncols=2, width=3.8)
    chosen = rows[rows["variant"].notna()] if "variant" in rows else rows.iloc[:0]
    for ax, (name, group) in zip(axes, chosen.groupby("dataset", sort=False)):
        means = group.groupby("variant")[["flops", "test/mse"]].mean()
        for variant, point in means.iterrows():
            ax.plot(point["flops"], point["test/mse"], "o", label=variant)
        ax.set(xscale="log", xlabel="FLOPs per forward pass (one sample)", ylabel="test MSE (z-scored)", title=name)
    axes[0].legend()
    return fig
