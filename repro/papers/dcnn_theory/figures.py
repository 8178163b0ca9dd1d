"""Figures redrawn from stored rows: translation error vs depth (with the bound dashed) per pooling, and the
deformation error vs ||tau||_inf per signal class with reference slopes 1 and 1/2 (mean and spread over
replicates)."""

import numpy as np
import pandas as pd

from repro.core.figures import new_figure, select_rows


def translation(rows: pd.DataFrame):
    shifts = select_rows(rows, "translation")
    poolings = [p for p in ("sub", "avg", "none") if p in set(shifts.get("pooling", []))]
    fig, axes = new_figure(ncols=max(len(poolings), 1), width=3.6)
    axes = np.atleast_1d(axes)
    for ax, pooling in zip(axes, poolings):
        for shift, group in select_rows(shifts, pooling=pooling).groupby("shift"):
            stats = group.groupby("depth")["error"].agg(["mean", "std"]).fillna(0.0)
            line, = ax.plot(stats.index, stats["mean"], "o-", label=f"t = {shift}")
            ax.fill_between(stats.index, stats["mean"] - stats["std"], stats["mean"] + stats["std"],
                            color=line.get_color(), alpha=0.2)
            bound = group.groupby("depth")["bound"].mean()
            ax.plot(bound.index, bound.values, "--", color=line.get_color(), linewidth=0.8)
        ax.set(yscale="log", title=f"pooling: {pooling}", xlabel="depth n",
               ylabel="|||Phi^n(T_t f) - Phi^n(f)|||  (dashed: bound)")
    axes[0].legend()
    return fig


def deformation(rows: pd.DataFrame):
    moved = select_rows(rows, "deformation")
    fig, ax = new_figure(width=4.4)
    for kind, group in moved.groupby("signal_class"):
        stats = group.groupby("tau_inf")["feature_error"].agg(["mean", "std"]).fillna(0.0)
        ax.errorbar(stats.index, stats["mean"], yerr=stats["std"], marker="o", capsize=2, label=kind)
    if not moved.empty:
        tau = np.array(sorted(moved["tau_inf"].unique()))
        anchor = moved["feature_error"].median()
        for slope, style in ((1.0, ":"), (0.5, "-.")):
            ax.plot(tau, anchor * (tau / tau[len(tau) // 2]) ** slope, style, color="gray",
                    label=f"slope {slope:g}")
    ax.set(xscale="log", yscale="log", xlabel="||tau||_inf", ylabel="|||Phi(F_tau f) - Phi(f)|||")
    ax.legend()
    return fig
