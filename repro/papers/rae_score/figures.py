"""Figures from stored rows: (r(x) - x)/sigma^2 vs d log p/dx in 1-D, score error vs sigma, MH samples."""

import numpy as np
import pandas as pd

from repro.core.figures import new_figure, select_rows
from repro.papers.rae_score.densities import make_density


def score_curves(rows: pd.DataFrame):
    """1-D mixture: the trained DAE's (r(x) - x)/sigma^2 for each sigma against the exact score."""
    fig, axes = new_figure(ncols=2, width=4.2)
    for ax, criterion in zip(axes, ("dae", "rcae")):
        chosen = select_rows(rows, "score", kind="curve", method=criterion)
        for sigma, curve in chosen.groupby("sigma"):
            ax.plot(curve["x"], curve["score_estimate"], label=f"sigma = {sigma:g}", lw=1)
        truth = chosen.drop_duplicates("x")
        ax.plot(truth["x"], truth["score_true"], "k--", lw=1.5, label="d log p / dx")
        ax.set(title=f"{criterion.upper()}, 1/2 N(-1, .3^2) + 1/2 N(1, .3^2)", xlabel="x",
               ylabel="(r(x) - x) / sigma^2", ylim=(-15, 15))
    axes[0].legend(fontsize=7)
    return fig


def score_error(rows: pd.DataFrame):
    """Relative squared score error vs sigma (log-log): trained networks, the exact optimum, a sigma^4 guide."""
    scores = select_rows(rows, "score", kind="score")
    densities = list(dict.fromkeys(scores["density"])) if len(scores) else ["mixture1d"]
    fig, axes = new_figure(ncols=len(densities), width=4.0)
    axes = np.atleast_1d(axes)
    for ax, density in zip(axes, densities):
        chosen = select_rows(scores, density=density)
        for criterion, group in chosen.groupby("method"):
            stats = group.groupby("sigma")["score_err"].agg(["mean", "std"])
            ax.errorbar(stats.index, stats["mean"], yerr=stats["std"].fillna(0), marker="o", capsize=2,
                        label="exact DAE optimum" if criterion == "optimum" else f"trained {criterion}")
        optimum = select_rows(chosen, method="optimum").groupby("sigma")["score_err"].mean()
        if len(optimum):
            sigma = np.array(sorted(optimum.index))
            ax.loglog(sigma, optimum[sigma.min()] * (sigma / sigma.min()) ** 4, "k:", label="slope 4 (theory)")
        sigmas = sorted(chosen["sigma"].unique())
        ax.set(xscale="log", yscale="log", title=density, xlabel="sigma", xticks=sigmas,
               xticklabels=[f"{s:g}" for s in sigmas],
               ylabel="E||(r-x)/sigma^2 - grad log p||^2 / E||grad log p||^2")
        ax.xaxis.set_minor_formatter("")
        ax.legend(fontsize=7)
    return fig


def samples(rows: pd.DataFrame):
    """Ring of Gaussians: states of the exact-energy and DAE-driven MH chains and i.i.d. samples over log p."""
    fig, axes = new_figure(ncols=3, width=3.2)
    p = make_density("ring2d")
    grid = np.linspace(-3.5, 3.5, 141)
    xx, yy = np.meshgrid(grid, grid)
    log_p = p.log_prob(np.stack([xx.ravel(), yy.ravel()], 1)).reshape(xx.shape)
    for ax, sampler in zip(axes, ("exact_mh", "dae_mh", "iid")):
        ax.contour(xx, yy, np.exp(log_p), levels=6, linewidths=0.6, colors="grey")
        points = select_rows(rows, "sampling", kind="sample", method=sampler)
        ax.plot(points["x1"], points["x2"], ".", ms=2)
        kl = select_rows(rows, "sampling", kind="mh", method=sampler)
        kl = kl["kl"].mean() if len(kl) else float("nan")
        ax.set(title=f"{sampler}: KL {kl:.3f}", aspect="equal", xlim=(-3.5, 3.5), ylim=(-3.5, 3.5))
    return fig
