"""Figures redrawn from stored rows: evaluation loss vs step per variant, and ||theta|| and the gradient norm
against gamma at initialisation (mean and standard deviation over replicates)."""

import pandas as pd

from repro.core.figures import new_figure, select_rows

VARIANTS = ("default", "encoding", "residual", "mip")


def convergence(rows: pd.DataFrame):
    curves = select_rows(rows, "train", record="curve")
    panels = curves[["optimizer", "lr"]].drop_duplicates().sort_values(["optimizer", "lr"]).itertuples(index=False)
    panels = list(panels)
    fig, axes = new_figure(ncols=max(len(panels), 1), width=3.8)
    axes = axes if len(panels) > 1 else [axes]
    for ax, (optimizer, lr) in zip(axes, panels):
        for variant in VARIANTS:
            runs = select_rows(curves, optimizer=optimizer, lr=lr, method=variant)
            stats = runs.groupby("step")["eval/mse"].agg(["mean", "std"]).fillna(0.0)
            ax.plot(stats.index, stats["mean"], label=variant)
            ax.fill_between(stats.index, stats["mean"] - stats["std"], stats["mean"] + stats["std"], alpha=0.2)
        ax.set(yscale="log", title=f"{optimizer}, lr = {lr:g}", xlabel="step", ylabel="evaluation MSE")
    axes[0].legend()
    return fig


def proportionality(rows: pd.DataFrame):
    init = select_rows(rows, "init")
    fig, axes = new_figure(ncols=2, width=3.8)
    for ax, column, label in ((axes[0], "theta_norm", "||theta(gamma)|| at init"),
                              (axes[1], "grad_norm", "||d loss / d w|| at init")):
        for variant in ("default", "mip"):
            stats = select_rows(init, method=variant).groupby("gamma")[column].agg(["mean", "std"]).fillna(0.0)
            ax.errorbar(stats.index, stats["mean"], yerr=stats["std"], marker="o", capsize=2, label=variant)
        ax.set(xlabel="gamma", ylabel=label)
    axes[0].legend()
    return fig
