"""Figures redrawn from stored rows: learned vs true latent functions (K = 2) and test RMSE per method."""

import pandas as pd

from repro.core.figures import new_figure, select_rows


def latent_functions(rows: pd.DataFrame):
    """Posterior mean +- 2 sd (rescaled onto the truth) against the true u1, u2 on the K = 2 task."""
    fig, axes = new_figure(ncols=2, width=3.6)
    for ax, name in zip(axes, ("u1", "u2")):
        curve = select_rows(rows, "synthetic_k2", kind="curve", function=name)
        if len(curve):
            curve = curve.sort_values("t")
            ax.fill_between(curve["t"], curve["lower"], curve["upper"], alpha=0.3, label="FunBaT +- 2 sd")
            ax.plot(curve["t"], curve["mean"], label="FunBaT mean")
            ax.plot(curve["t"], curve["truth"], "k--", label="truth")
        else:   # the paper scale fits the authors' data sets only
            ax.text(0.5, 0.5, "no K = 2 synthetic rows at this scale", ha="center", va="center",
                    transform=ax.transAxes)
        ax.set(title=f"{name}(t), K = 2 task", xlabel="t")
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend()
    return fig


def rmse_by_method(rows: pd.DataFrame):
    """Test RMSE (mean +- sd over replicates) of every method on each data set; binned methods per bins."""
    scores = select_rows(rows, kind="score")
    datasets = list(dict.fromkeys(scores["experiment"])) if len(scores) else []
    fig, axes = new_figure(ncols=max(1, len(datasets)), width=4.2)
    axes = axes if len(datasets) > 1 else [axes]
    for ax, name in zip(axes, datasets):
        chosen = select_rows(scores, name)
        bins = chosen["bins"].fillna(0).astype(int) if "bins" in chosen else 0
        label = chosen["method"].where(bins == 0, chosen["method"] + "_b" + bins.astype(str))
        means = chosen.groupby(label)["test/rmse"].agg(["mean", "std"]).sort_values("mean")
        ax.barh(means.index, means["mean"], xerr=means["std"].fillna(0))
        ax.set(title=name, xlabel="test RMSE (bars: sd over replicates)")
        ax.set_xlim(left=0)
    return fig
