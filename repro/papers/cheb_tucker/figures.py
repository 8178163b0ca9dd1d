"""Figures redrawn from stored rows: interpolation error vs degree per Gaussian term; Tucker rank vs m and vs N."""

import pandas as pd

from repro.core.figures import new_figure, select_rows


def error_vs_degree(rows: pd.DataFrame):
    """Chebyshev error of each CP term exp(-p_k (x - x0)^2) vs degree: long range (left), short range (right)."""
    fig, axes = new_figure(ncols=2, width=3.8)
    for ax, kind in zip(axes, ("long", "short")):
        terms = select_rows(rows, "degree", range=kind)
        for _, curve in terms.groupby("term"):
            ax.semilogy(curve["degree"], curve["err"].clip(lower=1e-17), "-", lw=0.7, alpha=0.7)
        ax.set(title=f"{kind}-range terms", xlabel="degree", ylabel="max interpolation error")
    return fig


def ranks(rows: pd.DataFrame):
    """Alg. 4 Tucker rank vs m (one line per N, dashed: grid HOSVD), and vs N at the largest m."""
    fig, axes = new_figure(ncols=2, width=3.8)
    cloud = select_rows(rows, "cloud", kernel="long", geometry="ball")
    tol = cloud["tol"].min() if "tol" in cloud and len(cloud) else None
    alg4 = select_rows(cloud, method="alg4", tol=tol)
    grid = select_rows(cloud, method="grid_hosvd", tol=tol)
    for count, curve in alg4.groupby("N"):
        line = curve.groupby("m")["rank"].mean()
        (handle,) = axes[0].plot(line.index, line.values, "o-", label=f"N = {int(count)}")
        axes[0].axhline(select_rows(grid, N=count)["rank"].mean(), ls="--", color=handle.get_color(), lw=0.8)
    axes[0].set(xscale="log", title=f"rank vs m (tol {tol:g}; dashed: grid HOSVD)" if tol else "rank vs m",
                xlabel="m (Chebyshev points per mode)", ylabel="max Tucker rank")
    axes[0].legend()
    if len(alg4):
        top = select_rows(alg4, m=alg4["m"].max()).groupby("N")["rank"].mean()
        axes[1].plot(top.index, top.values, "o-", label="ChebTuck (Alg. 4)")
        grid_line = grid.groupby("N")["rank"].mean()
        axes[1].plot(grid_line.index, grid_line.values, "s--", label="grid HOSVD")
        axes[1].legend()
    axes[1].set(xscale="log", title="rank vs number of particles", xlabel="N", ylabel="max Tucker rank")
    return fig
