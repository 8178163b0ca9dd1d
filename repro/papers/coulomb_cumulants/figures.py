"""N^(p-2) kappa_p over its boundary limit vs 1/N (lines: exact Kostlan sums, markers: Monte Carlo; 1 = the limit),
and the large deviations of L_N / N (rate function Phi(m), convergence of the finite-N scaled CGF)."""

import numpy as np
import pandas as pd

from repro.core.figures import new_figure, select_rows
from repro.papers.coulomb_cumulants.large_deviations import gamma_rate


def scaled_cumulants(rows: pd.DataFrame):
    fig, axes = new_figure(ncols=4, width=3.2)
    exact, mc = select_rows(rows, "exact"), select_rows(rows, "mc")
    for ax, p in zip(axes, (2, 3, 4, 5)):
        for name, curve in select_rows(exact, p=p).groupby("f"):
            curve = curve.sort_values("N")
            limit = curve["prediction"].iloc[0]
            (line,) = ax.plot(1 / curve["N"], curve["scaled"] / limit, "-", label=name)
            points = select_rows(mc, p=p, f=name)
            if len(points):
                scale = points["N"] ** (p - 2) / limit
                ax.errorbar(1 / points["N"], points["kstat"] * scale, yerr=2 * points["se"] * abs(scale), fmt="o",
                            ms=3, color=line.get_color())
        ax.axhline(1.0, ls="--", lw=0.8, color="gray")
        ax.set(title=f"p = {p}", xlabel="1 / N", ylabel=f"N^{p - 2} kappa_{p} / boundary limit")
        ax.legend()
    return fig


def large_deviations(rows: pd.DataFrame):
    fig, (rate_ax, cgf_ax) = new_figure(ncols=2, width=3.6)
    limit, exact = select_rows(rows, "ld_limit"), select_rows(rows, "ld_exact")
    for name, curve in limit.groupby("f"):
        curve = curve.sort_values("m")
        rate_ax.plot(curve["m"], curve["rate"], "o", label=f"{name}: saddle point")
    if len(limit):
        m = np.linspace(limit["m"].min(), limit["m"].max(), 200)
        rate_ax.plot(m[m > 0], gamma_rate(m[m > 0]), "k--", lw=0.8, label="r2: m - 1/2 - ln(2m)/2")
    rate_ax.set(xlabel="m = L_N / N", ylabel="Phi(m) = -lim ln P / N^2", title="rate function")
    rate_ax.legend()
    for name, curve in exact.groupby("f"):
        curve = curve.sort_values("N")
        cgf_ax.loglog(curve["N"], curve["cgf_dev"], "o-", label=name)
    cgf_ax.set(xlabel="N", ylabel="max_s |chi_N(s) - chi(s)|", title="chi_N -> chi (slope -1)")
    cgf_ax.legend()
    return fig


def general_beta(rows: pd.DataFrame):
    """MALA kappa_p over the leading prediction N^(2-p) beta^(1-p) c_p(f, d) against beta, one panel per d."""
    gas = select_rows(rows, "gas")
    dims = sorted(gas["d"].unique()) if len(gas) else []
    fig, axes = new_figure(ncols=max(1, len(dims)), width=3.6)
    for ax, d in zip(np.atleast_1d(axes), dims):
        for (name, p), points in select_rows(gas, d=d).groupby(["f", "p"]):
            mean = points.groupby("beta")[["ratio", "se", "prediction"]].mean()
            ax.errorbar(mean.index, mean["ratio"], yerr=2 * mean["se"] / mean["prediction"].abs(), fmt="o-", ms=3,
                        label=f"{name}, p = {p}")
        ax.axhline(1.0, ls="--", lw=0.8, color="gray")
        ax.set(xscale="log", title=f"d = {d}", xlabel="beta", ylabel="kappa_p / leading prediction")
        ax.legend(fontsize=6)
    return fig
