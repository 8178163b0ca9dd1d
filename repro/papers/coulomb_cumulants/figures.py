"""N^(p-2) kappa_p vs 1/N (lines: exact Kostlan sums, markers: Monte Carlo), dashed: the boundary predictions."""

import pandas as pd

from repro.core.figures import new_figure


def scaled_cumulants(rows: pd.DataFrame):
    fig, axes = new_figure(ncols=3, width=3.4)
    exact = rows[rows["experiment"] == "exact"] if "experiment" in rows else rows.iloc[:0]
    mc = rows[rows["experiment"] == "mc"] if "experiment" in rows else rows.iloc[:0]
    for ax, p in zip(axes, (2, 3, 4)):
        for name, curve in exact[exact["p"] == p].groupby("f"):
            curve = curve.sort_values("N")
            (line,) = ax.plot(1 / curve["N"], curve["scaled"], "-", label=name)
            ax.axhline(curve["prediction"].iloc[0], ls="--", lw=0.8, color=line.get_color())
            points = mc[(mc["p"] == p) & (mc["f"] == name)] if len(mc) else mc
            if len(points):
                scale = points["N"] ** (p - 2)
                ax.errorbar(1 / points["N"], points["kstat"] * scale, yerr=2 * points["se"] * scale, fmt="o",
                            ms=3, color=line.get_color())
        ax.set(title=f"p = {p}", xlabel="1 / N", ylabel=f"N^{p - 2} kappa_{p}")
        ax.legend()
    return fig
