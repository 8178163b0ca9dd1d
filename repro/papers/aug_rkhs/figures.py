"""Figures from stored rows: kappa^2 and the spectrum, KRR error vs mask rate, encoder excess error vs kappa^2/m."""

import numpy as np
import pandas as pd

from repro.core.figures import new_figure


def _part(rows: pd.DataFrame, name: str) -> pd.DataFrame:
    return rows[rows["part"] == name] if "part" in rows else rows.iloc[:0]


def mask_rate(rows: pd.DataFrame):
    fig, axes = new_figure(ncols=3, width=3.6)
    kappa = _part(rows, "kappa").sort_values("alpha")
    axes[0].semilogy(kappa["alpha"], kappa["kappa2"], "-", label="closed form (1+(V-1)(1-a))^L")
    axes[0].semilogy(kappa["alpha"], kappa["kappa2_mc"], "o", ms=3, label="Monte Carlo over masks")
    spectrum = _part(rows, "spectrum")
    for alpha, block in spectrum.groupby("alpha"):
        axes[0].semilogy(alpha + 0 * block["order"], block["eig_measured"], "k_", ms=6)
    axes[0].set(title="kappa^2; bars: brute-force spectrum V=3 L=5", xlabel="mask rate alpha")
    axes[0].legend()
    krr = _part(rows, "krr")
    for n, group in krr.groupby("n_labels"):
        stats = group.groupby("alpha")["mse"].agg(["mean", "std"])
        axes[1].errorbar(stats.index, stats["mean"], yerr=stats["std"].fillna(0), fmt="o-", ms=3, label=f"n = {int(n)}")
    axes[1].set(title="KRR with k_alpha: U shape", xlabel="mask rate alpha", ylabel="test MSE / Var f*")
    axes[1].legend()
    encoder = _part(rows, "encoder")
    for m, group in encoder.groupby("m"):
        stats = group.groupby("kappa2_over_m")["excess_mse"].mean()
        axes[2].loglog(stats.index, stats.clip(lower=1e-4).values, "o-", ms=3, label=f"m = {int(m)}")
    if len(encoder):
        x = np.sort(encoder["kappa2_over_m"].unique())
        keep = encoder[encoder["excess_mse"] > 0]
        if len(keep) > 2:
            slope, icpt = np.polyfit(np.log10(keep["kappa2_over_m"]), np.log10(keep["excess_mse"]), 1)
            axes[2].loglog(x, 10 ** (icpt + slope * np.log10(x)), "k--", lw=1, label=f"fit, slope {slope:.2f}")
    axes[2].set(title="top-d encoder + probe (d = 277)", xlabel="kappa^2 / m", ylabel="MSE - floor (orders 3-4)")
    axes[2].legend()
    return fig
