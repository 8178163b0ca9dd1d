"""The learned spectrum (weights against frequencies, at initialisation and after training, true frequencies
marked) and the Kronecker speed-up against the covariance size (mean and spread over replicates)."""

import pandas as pd

from repro.core.figures import new_figure, select_rows
from repro.papers.gp_hm.problems import make_problem


def learned_spectrum(rows: pd.DataFrame):
    fig, axes = new_figure(ncols=2, width=4.2)
    for ax, method in zip(axes, ("gp_hm_stm", "gp_hm_gm")):
        spectrum = select_rows(rows, "poisson1d", method=method, record="spectrum")
        for stage, marker in (("init", "x"), ("final", "o")):
            points = select_rows(spectrum, stage=stage)
            ax.semilogy(points["freq"], points["weight"], marker, label=stage, alpha=0.8)
        result = select_rows(rows, "poisson1d", method=method, record="result")
        if "problem" in rows and not result.empty:
            for f in make_problem(str(result["problem"].iloc[0])).frequencies:
                ax.axvline(f, color="k", ls=":", lw=1)
        ax.set(title=f"{method}, 1-D Poisson", xlabel="frequency f_q (cycles per unit)", ylabel="weight w_q")
        ax.legend()
    return fig


def kronecker_speedup(rows: pd.DataFrame):
    fig, ax = new_figure(width=4.4)
    timing = select_rows(rows, "kron_speed")
    if not timing.empty:
        stats = timing.groupby("covariance_size")["speedup"].agg(["mean", "std"])
        ax.errorbar(stats.index, stats["mean"], yerr=stats["std"].fillna(0.0), marker="o", capsize=3)
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set(xlabel="covariance size N1 N2", ylabel="dense time / Kronecker time", title="Kronecker speed-up")
    return fig

