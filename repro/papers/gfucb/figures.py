"""Per-task cumulative regret vs round (several M) and final per-task regret vs M (log-log, -1/2 guide)."""

import numpy as np
import pandas as pd

from repro.core.figures import new_figure, select_rows

COLORS = {"shared": "C0", "independent": "C1", "oracle": "C2", "random": "C7"}
LABELS = {"shared": "shared phi (GFUCB surrogate)", "independent": "independent", "oracle": "oracle LinUCB (phi*)",
          "random": "uniform random"}


def regret(rows: pd.DataFrame):
    fig, axes = new_figure(ncols=2, width=4.2)
    curves = select_rows(rows, "bandit", kind="curve")
    shown = sorted(curves["M"].unique()) if len(curves) else []
    shown = [shown[0], shown[-1]] if len(shown) > 1 else shown
    for m, style in zip(shown, ("--", "-")):
        for method, group in select_rows(curves, M=m).groupby("method"):
            mean = group.groupby("round")["regret"].mean()
            axes[0].plot(mean.index, mean.values, style, color=COLORS[method], label=f"{method}, M = {m}")
    axes[0].set(xlabel="round t", ylabel="per-task cumulative regret", title="regret vs rounds")
    axes[0].legend(fontsize=7)
    final = select_rows(rows, "bandit", kind="final")
    for method, group in final.groupby("method"):
        stats = group.groupby("M")["regret_per_task"].agg(["mean", "std", "count"])
        ci = 1.96 * stats["std"].fillna(0) / np.sqrt(stats["count"])
        axes[1].errorbar(stats.index, stats["mean"], yerr=ci, fmt="o-", color=COLORS[method], label=LABELS[method])
    shared = select_rows(final, method="shared").groupby("M")["regret_per_task"].mean()
    if len(shared):
        ms = np.array(shared.index, dtype=float)
        axes[1].plot(ms, shared.iloc[0] * (ms / ms[0]) ** -0.5, "k:", label="slope -1/2 (theory)")
    axes[1].set(xscale="log", yscale="log", xlabel="number of tasks M", ylabel="per-task regret at T",
                title="final regret vs M")
    axes[1].legend(fontsize=7)
    return fig
