"""Optimised clouds over the landscape f (one panel per loss, replicate 0) and the loops' f per replicate."""

import numpy as np
import pandas as pd
import torch

from repro.core.figures import new_figure, select_rows
from repro.papers.mpph_diff.data import landscape

TITLES = {"loss_2p": "two-parameter loss (Rips x f)", "loss_1p": "one-parameter loss (Rips)"}


def clouds(rows: pd.DataFrame):
    fig, axes = new_figure(ncols=3, width=3.6)
    axis = np.linspace(0, 1, 101)
    xx, yy = np.meshgrid(axis, axis)
    grid = torch.tensor(np.stack([xx.ravel(), yy.ravel()], 1))
    toy = select_rows(rows, "toy")
    f = landscape(grid, float(toy["f_width"].iloc[0])).numpy().reshape(xx.shape)
    for ax, (method, title) in zip(axes[:2], TITLES.items()):
        ax.contourf(xx, yy, f, levels=20, cmap="viridis")
        ax.contour(xx, yy, f, levels=[0.5], colors="white", linewidths=1)
        cloud = select_rows(rows, "toy_cloud", method=method, replicate=0)
        ax.scatter(cloud["x"], cloud["y"], s=6, c="red")
        ax.set(title=title, xlim=(0, 1), ylim=(0, 1), aspect="equal")
    for method in TITLES:
        values = select_rows(toy, method=method)["loop_f_end"]
        axes[2].plot([method] * len(values), values, "o", alpha=0.7)
    axes[2].set(title="f at the loops after optimisation", ylabel="weighted mean f at H1 birth edges")
    return fig
