"""Excess risk vs n (factor model: pretraining at each m, supervised baselines, oracle, OLS formula), vs m at
fixed n, the Gaussian mixture's excess error vs n, and the contrastive instance's excess risk vs n."""

import pandas as pd

from repro.core.figures import new_figure, select_rows

LABELS = {"oracle": "oracle representation", "ridge_cv": "supervised ridge-CV", "ols": "supervised OLS",
          "raw_logistic": "logistic on raw x"}


def excess_risk(rows: pd.DataFrame):
    fig, axes = new_figure(ncols=4, width=3.8)
    factor = select_rows(rows, "factor")
    for (method, m), group in factor.groupby(["method", "m_unlabeled"]):
        curve = group.groupby("n_labeled")["excess_risk"].mean()
        label = f"pretrain + OLS, m = {int(m)}" if method == "pretrain" else LABELS[method]
        axes[0].loglog(curve.index, curve.values, "o-", ms=3, label=label)
    formula = select_rows(factor, method="ols")
    if "ols_formula" in formula:
        curve = formula.groupby("n_labeled")["ols_formula"].mean()
        axes[0].loglog(curve.index, curve.values, "k:", label="OLS formula s^2 d/(n-d-1)")
    axes[0].set(title="factor model", xlabel="labeled n", ylabel="excess risk")
    axes[0].legend(fontsize=6)
    sizes = sorted(set(factor["n_labeled"])) if len(factor) else []
    n_fixed = 32 if 32 in sizes else (sizes[0] if sizes else 32)
    pretrain = select_rows(factor, method="pretrain", n_labeled=n_fixed)
    stats = pretrain.groupby("m_unlabeled")["excess_risk"].agg(["mean", "std"])
    axes[1].errorbar(stats.index, stats["mean"], yerr=stats["std"].fillna(0), marker="o", capsize=2,
                     label="pretrain + OLS")
    for method in ("oracle", "ridge_cv"):
        level = select_rows(factor, method=method, n_labeled=n_fixed)["excess_risk"].mean()
        axes[1].axhline(level, ls="--", lw=1, color="k" if method == "oracle" else "r", label=LABELS[method])
    axes[1].set(xscale="log", yscale="log", title=f"factor model, n = {n_fixed}", xlabel="unlabeled m",
                ylabel="excess risk")
    axes[1].legend(fontsize=6)
    gmm = select_rows(rows, "gmm")
    for method, group in gmm.groupby("method"):
        curve = group.groupby("n_labeled")["excess_error"].mean()
        axes[2].plot(curve.index, curve.values, "o-", ms=3,
                     label="pretrain (EM) + logistic" if method == "pretrain" else LABELS.get(method, method))
    axes[2].axhline(0.02, ls=":", color="grey", label="Bayes + 2 %")
    axes[2].set(xscale="log", title="Gaussian mixture", xlabel="labeled n", ylabel="test error - Bayes error")
    axes[2].legend(fontsize=6)
    for (method, m), group in select_rows(rows, "contrastive").groupby(["method", "m_unlabeled"]):
        curve = group.groupby("n_labeled")["excess_risk"].mean()
        label = f"pair-label MLE + OLS, m = {int(m)} pairs" if method == "pretrain" else LABELS[method]
        axes[3].loglog(curve.index, curve.values, "o-", ms=3, label=label)
    axes[3].set(title="contrastive instance", xlabel="labeled n", ylabel="excess risk")
    axes[3].legend(fontsize=6)
    return fig
