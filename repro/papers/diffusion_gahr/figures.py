"""Figures redrawn from stored rows: the transition vs N, and the Jacobian's geometry vs noise."""

import numpy as np
import pandas as pd

from repro.core.figures import new_figure, select_rows


def mean_and_spread(rows: pd.DataFrame, by: str, metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over replicates of ``metric`` per value of ``by``, and the min-max spread over replicates."""
    grouped = rows.groupby(by)[metric]
    mean = grouped.mean()
    return mean.index.to_numpy(float), mean.to_numpy(), np.stack([mean - grouped.min(), grouped.max() - mean])


def transition(rows: pd.DataFrame):
    """Cosine similarities vs N (bars: min-max over replicates) and train/test MSE vs N."""
    fig, axes = new_figure(ncols=2, width=4.0)
    chosen = select_rows(rows, "transition", analysis="transition")
    curves = {"sample/cross_similarity": "samples: network S1 vs network S2",
              "sample/nearest_train_similarity": "sample vs nearest training image",
              "denoise/cross_similarity": "denoised (sigma 0.3): S1 vs S2",
              "oracle/similarity": "denoised vs empirical MMSE oracle"}
    for metric, label in curves.items():
        x, y, spread = mean_and_spread(chosen, "N", metric)
        axes[0].errorbar(x, y, yerr=spread, marker="o", capsize=3, label=label)
    axes[0].set(xscale="log", xlabel="training-set size N", ylabel="cosine similarity (mean-subtracted)",
                title="memorisation to generalisation")
    axes[0].legend(fontsize=7)
    for metric, label in {"train/mse": "train", "test/mse": "test"}.items():
        x, y, spread = mean_and_spread(chosen, "N", metric)
        axes[1].errorbar(x, y, yerr=spread, marker="o", capsize=3, label=label)
    axes[1].set(xscale="log", yscale="log", xlabel="training-set size N", ylabel="MSE per pixel (sigma 0.2)",
                title="train vs test denoising error")
    axes[1].legend()
    return fig


def jacobian(rows: pd.DataFrame):
    """Leading eigenvalues of the symmetrised Jacobian per sigma (largest N), effective dimension vs sigma for
    every N and the disks, and test MSE vs sigma against the C^alpha rate sigma^(2 alpha / (alpha + 1))."""
    fig, axes = new_figure(ncols=3, width=3.8)
    transition_rows = select_rows(rows, "transition")
    largest = transition_rows["N"].max()
    spectrum = select_rows(transition_rows, analysis="spectrum", N=largest)
    for sigma, curve in spectrum.groupby("sigma"):
        values = curve.groupby("k")["eigenvalue"].mean()
        axes[0].plot(values.index + 1, values.values, label=f"sigma {sigma:g}")
    axes[0].set(xlabel="rank k", ylabel="eigenvalue of (J + J^T)/2", title=f"spectrum, N = {largest}")
    axes[0].legend(fontsize=7)
    per_sigma = select_rows(rows, analysis="sigma")
    for (experiment, n), curve in per_sigma.groupby(["experiment", "N"]):
        x, y, spread = mean_and_spread(curve, "sigma", "trace")
        axes[1].errorbar(x, y, yerr=spread, marker="o", capsize=3, label=f"{experiment}, N = {n}")
    axes[1].set(xscale="log", yscale="log", xlabel="noise sigma", ylabel="trace J (effective dimension)",
                title="effective dimension")
    axes[1].legend(fontsize=7)
    largest_rows = select_rows(per_sigma, experiment="transition", N=largest)
    x, y, spread = mean_and_spread(largest_rows, "sigma", "test/mse")
    axes[2].errorbar(x, y, yerr=spread, marker="o", capsize=3, label=f"test MSE, N = {largest}")
    rate = 2 * 2.0 / (2.0 + 1)
    axes[2].plot(x, y[0] * (x / x[0]) ** rate, "k--", label=f"slope {rate:.2f} (C^alpha rate, alpha = 2)")
    axes[2].set(xscale="log", yscale="log", xlabel="noise sigma", ylabel="MSE per pixel", title="MSE vs noise")
    axes[2].legend(fontsize=7)
    return fig
