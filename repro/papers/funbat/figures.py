"""Figures redrawn from stored rows: learned vs true latent functions (K = 2) and test RMSE per method."""

import pandas as pd

from repro.core.figures import new_figure


def latent_functions(rows: pd.DataFrame):
    """Posterior mean +- 2 sd (rescaled onto the truth) against the true u1, u2 on the K = 2 task."""
    fig, axes = new_figure(ncols=2, width=3.6)
    curves = rows[rows["kind"] == "curve"] if "kind" in rows else rows.iloc[:0]
    for ax, name in zip(axes, ("u1", "u2")):
        curve = curves[curves["function"] == name].sort_values("t") if len(curves) else curves
        if len(curve):
            ax.fill_between(curve["t"], curve["lower"], curve["upper"], alpha=0.3, label="FunBaT +- 2 sd")
            ax.plot(curve["t"], curve["mean"], label="FunBaT mean")
            ax.plot(curve["t"], curve["truth"], "k--", label="truth")
        ax.set(title=f"{name}(t), K = 2 task", xlabel="t")
    axes[0].legend()
    return fig


def rmse_by_method(rows: pd.DataFrame):
    scores = rows[rows["kind"] == "score"] if "kind" in rows else rows.iloc[:0]
    datasets = sorted(scores["dataset"].unique()) if len(scores) else []
    fig, axes = new_figure(ncols=max(1, len(datasets)), width=4.2)
    axes = axes if len(datasets) > 1 else [axes]
    for ax, name in zip(axes, datasets):
        per_method = scores[scores["dataset"] == name].groupby("method")["test/rmse"]
        means = per_method.agg(["mean", "std"]).sort_values("mean")
        ax.barh(means.index, means["mean"], xerr=means["std"].fillna(0))
        ax.set(title=name, xlabel="test RMSE")
    return fig
