"""The resolution analysis: Cp error against the number of query points, per method, mean and spread over seeds."""

import pandas as pd

from repro.core.figures import new_figure, select_rows

LABELS = {"mlp": "pointwise MLP", "global_latent": "global-latent field", "enf2enf": "enf2enf"}


def resolution(rows: pd.DataFrame):
    fig, axes = new_figure(ncols=2, width=3.8)
    chosen = select_rows(rows, "joukowski", split="resolution")
    for ax, (metric, title) in zip(axes, (("p_rel_l2", "whole domain"), ("p_band_rel_l2", "near wall, |SDF| < 0.1"))):
        for method, label in LABELS.items():
            stats = select_rows(chosen, method=method).groupby("n_query")[metric].agg(["mean", "std"])
            if stats.empty:
                continue
            ax.errorbar(stats.index, stats["mean"], yerr=stats["std"].fillna(0), marker="o", capsize=3, label=label)
        ax.axvline(1024, color="grey", linestyle=":", label="training resolution")
        ax.set(xscale="log", yscale="log", xlabel="query points per shape", ylabel="relative L2 of Cp", title=title)
    axes[0].legend()
    return fig
