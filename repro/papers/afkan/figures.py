"""Figures from stored rows: accuracy against parameters and FLOPs, the ablations (mean and spread over
replicates), and the AF-KAN / ReLU-KAN basis functions on one interval."""

import pandas as pd
import torch

from repro.core.figures import new_figure, select_rows
from repro.papers.afkan.models import ACTIVATIONS, FUNCTION_TYPES, interval_bounds


def comparison(rows: pd.DataFrame):
    fig, axes = new_figure(ncols=2, width=4.2)
    main = select_rows(rows, "main")
    for method, group in main.groupby("method"):
        for ax, x in zip(axes, ("params", "flops")):
            ax.errorbar(group[x].mean(), group["test/acc"].mean(), yerr=group["test/acc"].std(ddof=1) if
                        len(group) > 1 else 0.0, fmt="o", capsize=3, label=method)
    axes[0].set(xscale="log", xlabel="used parameters", ylabel="test accuracy (mean ± sd over replicates)")
    axes[1].set(xscale="log", xlabel="FLOPs per sample (forward)")
    axes[0].legend(fontsize=7)
    return fig


def ablations(rows: pd.DataFrame):
    fig, axes = new_figure(ncols=3, width=3.6)
    for ax, experiment, key in zip(axes, ("activation", "function", "grid_order"), ("activation", "function", "grid")):
        part = select_rows(rows, experiment)
        if experiment == "grid_order":
            for order, group in part.groupby("order"):
                stats = group.groupby("grid")["test/acc"].agg(["mean", "std"])
                ax.errorbar(stats.index, stats["mean"], yerr=stats["std"].fillna(0), marker="o", capsize=3,
                            label=f"k = {order}")
            ax.set(xlabel="grid size G", title="G and k")
            ax.legend(fontsize=7)
            continue
        stats = part.groupby(key)["test/acc"].agg(["mean", "std"])
        ax.bar(range(len(stats)), stats["mean"], yerr=stats["std"].fillna(0), capsize=3)
        ax.set_xticks(range(len(stats)), stats.index, rotation=60, fontsize=7)
        ax.set(title=experiment, ylim=(max(0.0, stats["mean"].min() - 0.1), 1.0))
    axes[0].set_ylabel("test accuracy (mean ± sd)")
    return fig


def basis(rows: pd.DataFrame):
    """The unnormalised basis of one interval (G = 3, k = 3) for each activation with quad1, and the function
    types with SiLU; ReLU with quad1 is ReLU-KAN's basis."""
    fig, axes = new_figure(ncols=2, width=4.0)
    low, high = interval_bounds(3, 3)
    a, b = float(low[3]), float(high[3])
    x = torch.linspace(a - 1.0, b + 1.0, 400)
    for name in ("relu", "silu", "gelu", "softplus"):
        act = ACTIVATIONS[name]
        axes[0].plot(x, FUNCTION_TYPES["quad1"](act(x - a), act(b - x)), label=name)
    for name in ("quad1", "prod", "cubic2"):
        silu = ACTIVATIONS["silu"]
        axes[1].plot(x, FUNCTION_TYPES[name](silu(x - a), silu(b - x)), label=name)
    axes[0].set(title=f"quad1 on [{a:.2f}, {b:.2f}]", xlabel="x", ylabel="basis value")
    axes[1].set(title="SiLU, function types", xlabel="x", yscale="symlog")
    for ax in axes:
        ax.axvspan(a, b, alpha=0.1)
        ax.legend(fontsize=7)
    return fig
