"""P(||G - I|| <= 1/2) and the mean error ratio vs n/m, one line per strategy, one column per space (d, m)."""

import numpy as np
import pandas as pd

from repro.core.figures import new_figure


def stability_and_error(rows: pd.DataFrame):
    cells = rows[rows["experiment"] == "cell"] if "experiment" in rows else rows.iloc[:0]
    spaces = sorted(cells.groupby(["d", "m"]).groups) if len(cells) else [(1, 0)]
    fig, axes = new_figure(nrows=2, ncols=len(spaces), width=3.4)
    axes = np.asarray(axes).reshape(2, len(spaces))
    for column, (d, m) in enumerate(spaces):
        for strategy, curve in cells[(cells["d"] == d) & (cells["m"] == m)].groupby("strategy"):
            mean = curve.groupby("n_over_m")[["stable_prob", "ratio_mean"]].mean()
            axes[0, column].semilogx(mean.index, mean["stable_prob"], "o-", label=strategy)
            axes[1, column].loglog(mean.index, mean["ratio_mean"], "o-", label=strategy)
        axes[0, column].axhline(0.9, ls=":", color="gray", lw=0.8)
        axes[1, column].axhline(m + 1, ls="--", color="gray", lw=0.8)
        axes[0, column].set(title=f"d = {d}, m = {m}", xlabel="n / m", ylabel="P(||G - I|| <= 1/2)")
        axes[1, column].set(xlabel="n / m", ylabel="E error / best error (dashed: m + 1)")
        axes[0, column].legend()
    return fig
