"""P(||G - I|| <= 1/2) and the mean error ratio vs n/m, one line per strategy, one column per m."""

import numpy as np
import pandas as pd

from repro.core.figures import new_figure


def stability_and_error(rows: pd.DataFrame):
    cells = rows[rows["experiment"] == "cell"] if "experiment" in rows else rows.iloc[:0]
    ms = sorted(cells["m"].unique()) if len(cells) else [0]
    fig, axes = new_figure(nrows=2, ncols=len(ms), width=3.4)
    axes = np.asarray(axes).reshape(2, len(ms))
    for column, m in enumerate(ms):
        for strategy, curve in cells[cells["m"] == m].groupby("strategy"):
            mean = curve.groupby("n_over_m")[["stable_prob", "ratio_mean"]].mean()
            axes[0, column].plot(mean.index, mean["stable_prob"], "o-", label=strategy)
            axes[1, column].semilogy(mean.index, mean["ratio_mean"], "o-", label=strategy)
        axes[1, column].axhline(m + 1, ls="--", color="gray", lw=0.8)
        axes[0, column].set(title=f"m = {m}", xlabel="n / m", ylabel="P(||G - I|| <= 1/2)")
        axes[1, column].set(xlabel="n / m", ylabel="E error / best error (dashed: m + 1)")
        axes[0, column].legend()
    return fig
