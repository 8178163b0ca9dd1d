"""P(||G - I|| <= 1/2) and the mean error ratio vs n/m, one colour per strategy (error: solid = first target,
dashed = second, dotted = first target conditioned on stability), one column per space (d, m)."""

import numpy as np
import pandas as pd

from repro.core.figures import new_figure, select_rows


def stability_and_error(rows: pd.DataFrame):
    cells = select_rows(rows, "cell")
    spaces = sorted(cells.groupby(["d", "m"]).groups) if len(cells) else [(1, 0)]
    fig, axes = new_figure(nrows=2, ncols=len(spaces), width=3.4)
    axes = np.asarray(axes).reshape(2, len(spaces))
    for column, (d, m) in enumerate(spaces):
        space = select_rows(cells, d=d, m=m)
        targets = list(dict.fromkeys(space["target"])) if "target" in space else [None]
        for colour, (strategy, curve) in enumerate(space.groupby("method")):
            stable = curve.groupby("n_over_m")["stable_prob"].mean()
            axes[0, column].semilogx(stable.index, stable, "o-", color=f"C{colour}", label=strategy)
            for target, style in zip(targets, ("o-", "s--")):
                own = select_rows(curve, target=target) if target else curve
                error = own.groupby("n_over_m")["ratio_mean"].mean()
                axes[1, column].loglog(error.index, error, style, color=f"C{colour}", ms=3,
                                       label=f"{strategy}, {target}" if target else strategy)
            own = select_rows(curve, target=targets[0]) if targets[0] else curve
            conditioned = own.groupby("n_over_m")["ratio_mean_stable"].mean().dropna()
            axes[1, column].loglog(conditioned.index, conditioned, ":", color=f"C{colour}", lw=1.5,
                                   label=f"{strategy} | stable")
        axes[0, column].axhline(0.9, ls=":", color="gray", lw=0.8)
        axes[1, column].axhline(m + 1, ls="--", color="gray", lw=0.8)
        axes[0, column].set(title=f"d = {d}, m = {m}", xlabel="n / m", ylabel="P(||G - I|| <= 1/2)")
        axes[1, column].set(xlabel="n / m", ylabel="E error / best error (dashed: m + 1)")
        axes[0, column].legend()
    axes[1, 0].legend(fontsize=6)
    return fig
