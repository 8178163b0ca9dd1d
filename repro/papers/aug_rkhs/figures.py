"""Figures from stored rows: kappa^2 and the spectrum, KRR error vs mask rate, encoder excess error vs kappa^2/m."""

import numpy as np
import pandas as pd

from repro.core.claims import fit_slope
from repro.core.figures import new_figure, select_rows


def mask_rate(rows: pd.DataFrame):
    fig, axes = new_figure(ncols=3, width=3.6)
    kappa = select_rows(rows, "kappa").groupby("alpha")[["kappa2", "kappa2_mc"]].mean()
    axes[0].semilogy(kappa.index, kappa["kappa2"], "-", label="closed form (1+(V-1)(1-a))^L")
    axes[0].semilogy(kappa.index, kappa["kappa2_mc"], "o", ms=3, label="Monte Carlo over masks")
    spectrum = select_rows(rows, "spectrum")
    for alpha, block in spectrum.groupby("alpha"):
        axes[0].semilogy(alpha + 0 * block["order"], block["eig_measured"], "k_", ms=6)
    axes[0].set(title="kappa^2; bars: brute-force spectrum V=3 L=5", xlabel="mask rate alpha")
    axes[0].legend()
    krr = select_rows(rows, "krr").dropna(subset=["alpha"])
    for n, group in krr.groupby("n_labels"):
        stats = group.groupby("alpha")["mse"].agg(["mean", "std"])
        axes[1].errorbar(stats.index, stats["mean"], yerr=stats["std"].fillna(0), fmt="o-", ms=3, label=f"n = {int(n)}")
    axes[1].set(title="KRR with k_alpha: U shape", xlabel="mask rate alpha", ylabel="test MSE / Var f*")
    axes[1].legend()
    encoder = select_rows(rows, "encoder")
    for m, group in encoder.groupby("m"):
        stats = group.groupby("kappa2_over_m")["excess_mse"].mean()
        axes[2].loglog(stats.index, stats.clip(lower=1e-4).values, "o-", ms=3, label=f"m = {int(m)}")
    keep = encoder[encoder["excess_mse"] > 0] if len(encoder) else encoder
    if keep["kappa2_over_m"].nunique() > 2:
        x = keep["kappa2_over_m"].to_numpy(float)
        slope = fit_slope(x, keep["excess_mse"].to_numpy(float), log=True)
        icpt = np.mean(np.log10(keep["excess_mse"])) - slope.estimate * np.mean(np.log10(x))
        grid = np.sort(np.unique(x))
        axes[2].loglog(grid, 10 ** (icpt + slope.estimate * np.log10(grid)), "k--", lw=1,
                       label=f"fit, slope {slope.estimate:.2f} (CI {slope.lo:.2f} to {slope.hi:.2f})")
    axes[2].set(title="top-d encoder + probe", xlabel="kappa^2 / m", ylabel="MSE - floor (orders 3-4)")
    axes[2].legend()
    return fig
