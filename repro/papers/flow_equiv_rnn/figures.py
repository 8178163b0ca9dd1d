"""Figures redrawn from stored rows: error against prediction horizon (Fig. 3), one panel per training
set, and the velocity-generalisation heat-maps of G-RNN and FERNN-V2 (Fig. 4)."""

import numpy as np
import pandas as pd
from matplotlib.patches import Rectangle

from repro.core.figures import new_figure, select_rows

LABELS = {"grnn": "G-RNN", "fernn_v1": "FERNN-V1", "fernn_v2": "FERNN-V2"}


def trained_range(experiment: str) -> int:
    """The training velocity range r of experiment ``data_v<r>``."""
    return int(experiment.removeprefix("data_v"))


def length_generalisation(rows: pd.DataFrame):
    curves = select_rows(rows, eval="horizon")
    experiments = sorted(curves["experiment"].unique()) if len(curves) else []
    fig, axes = new_figure(ncols=max(len(experiments), 1), width=4.6)
    for ax, experiment in zip(np.atleast_1d(axes), experiments):
        for method, label in LABELS.items():
            by_step = select_rows(curves, experiment=experiment, method=method).groupby("horizon")["len/mse"]
            if by_step.ngroups == 0:
                continue
            mean, spread = by_step.mean(), by_step.std().fillna(0.0)
            ax.plot(mean.index, mean.values, "o-", ms=3, label=label)
            ax.fill_between(mean.index, (mean - spread).clip(lower=0), mean + spread, alpha=0.25)
        trained = select_rows(curves, experiment=experiment, within_training_horizon=True)
        ax.axvline(trained["horizon"].max() + 0.5, color="grey", ls=":", lw=1, label="trained horizon")
        r = trained_range(experiment)
        ax.set(xlabel="prediction step", ylabel="MSE per pixel (mean ± 1 std over seeds)",
               title=f"Length generalisation, trained on v in {{-{r}..{r}}}²")
        ax.legend()
    return fig


def velocity_generalisation(rows: pd.DataFrame):
    cells = select_rows(rows, eval="velocity")
    panels = [(experiment, method) for experiment in sorted(cells["experiment"].unique()) if len(cells)
              for method in ("grnn", "fernn_v2") if len(select_rows(cells, experiment=experiment, method=method))]
    fig, axes = new_figure(ncols=max(len(panels), 1), width=3.6)
    axes = np.atleast_1d(axes)
    grids = [select_rows(cells, experiment=experiment, method=method)
             .pivot_table(index="vy", columns="vx", values="vel/mse") for experiment, method in panels]
    top = max((g.to_numpy().max() for g in grids), default=1.0)
    for ax, (experiment, method), table in zip(axes, panels, grids):
        image = ax.imshow(table.to_numpy(), origin="lower", vmin=0, vmax=top, cmap="viridis",
                          extent=[table.columns.min() - 0.5, table.columns.max() + 0.5,
                                  table.index.min() - 0.5, table.index.max() + 0.5])
        r = trained_range(experiment)   # the training velocities, outlined
        ax.add_patch(Rectangle((-r - 0.5, -r - 0.5), 2 * r + 1, 2 * r + 1, fill=False, edgecolor="white",
                               lw=1.5, ls="--"))
        ax.set(title=f"{LABELS[method]} (mean over seeds)", xlabel="vx (px / frame)", ylabel="vy (px / frame)")
        ax.grid(False)
    if panels:
        fig.colorbar(image, ax=list(axes), label="MSE per pixel")
    return fig
