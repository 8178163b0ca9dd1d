"""Figure: MASE and scaled quantile loss vs sampling step (hours), one line per method."""

import matplotlib.ticker
import pandas as pd

from repro.core.figures import new_figure, select_rows


def mase_vs_rate(rows: pd.DataFrame):
    fig, axes = new_figure(ncols=2, width=3.8)
    chosen = select_rows(rows, "zero_shot")
    if "dataset" in chosen:
        chosen = select_rows(chosen, dataset=[d for d in chosen["dataset"].unique() if str(d).startswith("synthetic")])
    if len(chosen):
        chosen = chosen.assign(step_h=24 / chosen["period"])
        for ax, metric in zip(axes, ("mase", "sql")):
            for method, group in chosen.groupby("method", sort=False):
                curve = group.groupby("step_h")[metric].mean()
                ax.plot(curve.index, curve.values, "o-", label=method)
            steps = sorted(chosen["step_h"].unique())
            ax.set(xscale="log", yscale="log", xlabel="sampling step (hours)", ylabel=metric)
            ax.set_xticks(steps, [f"{v:g}" for v in steps])
            ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        axes[0].legend()
    return fig
