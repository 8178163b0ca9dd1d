"""Figures from stored rows: (r(x) - x)/sigma^2 vs d log p/dx in 1-D, score error vs sigma, MH samples, the 2-D
vector fields r(x) - x."""

import numpy as np
import pandas as pd

from repro.core.figures import new_figure, select_rows
from repro.papers.rae_score.densities import make_density

LABELS = {"optimum": "exact DAE optimum", "rcae_optimum": "exact RCAE optimum (BVP)"}


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
                        label=LABELS.get(criterion, f"trained {criterion}"))
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


def densities_sampled(rows: pd.DataFrame) -> list[str]:
    chosen = select_rows(rows, "sampling", kind="mh")
    return list(dict.fromkeys(chosen["density"])) if len(chosen) else ["ring2d"]


def density_grid(density: str, half_width: float, points: int = 141):
    """(xx, yy, p) with p normalised to its maximum on a points x points grid over [-w, w]^2."""
    axis = np.linspace(-half_width, half_width, points)
    xx, yy = np.meshgrid(axis, axis)
    log_p = make_density(density).log_prob(np.stack([xx.ravel(), yy.ravel()], 1)).reshape(xx.shape)
    return xx, yy, np.exp(log_p - log_p.max())


def samples(rows: pd.DataFrame):
    """Per 2-D density: states of the exact-energy MH chains, of the DAE-driven chains (first-order energy
    differences, the authors' rule) and i.i.d. samples, over the contours of p."""
    densities = densities_sampled(rows)
    fig, axes = new_figure(ncols=3, nrows=len(densities), width=3.2, height=3.2)
    axes = np.atleast_2d(axes)
    for row_axes, density in zip(axes, densities):
        points = select_rows(rows, "sampling", kind="sample", density=density)
        half_width = float(np.abs(points[["x1", "x2"]]).to_numpy().max()) if len(points) else 1.0
        xx, yy, p = density_grid(density, half_width)
        for ax, (sampler, difference) in zip(row_axes, (("exact_mh", "exact"), ("dae_mh", "first_order"),
                                                        ("iid", "none"))):
            ax.contour(xx, yy, p, levels=6, linewidths=0.6, colors="grey")
            chosen = select_rows(points, method=sampler, difference=difference)
            ax.plot(chosen["x1"], chosen["x2"], ".", ms=1.5)
            kl = select_rows(rows, "sampling", kind="mh", density=density, method=sampler, difference=difference)
            kl = kl["kl"].mean() if len(kl) else float("nan")
            ax.set(title=f"{density}, {sampler}: KL {kl:.3f}", aspect="equal")
    return fig


def fields(rows: pd.DataFrame):
    """Per 2-D density: r(x) - x of the DAE that drives the chains (first replicate) and the exact target
    (the Tweedie optimum r* - x for the mixtures, sigma^2 grad log p for the ninja star), over the contours of p."""
    densities = densities_sampled(rows)
    fig, axes = new_figure(ncols=len(densities), width=4.0, height=4.0)
    for ax, density in zip(np.atleast_1d(axes), densities):
        field = select_rows(rows, "sampling", kind="field", density=density)
        if not len(field):
            continue
        xx, yy, p = density_grid(density, float(field["x1"].max()))
        ax.contour(xx, yy, p, levels=6, linewidths=0.6, colors="grey")
        # one arrow scale for both fields: the 90th percentile of the target's length spans one grid step
        step = float(np.diff(np.unique(field["x1"]))[0])
        scale = float(np.quantile(np.hypot(field["target1"], field["target2"]), 0.9)) / step
        for (u, v), colour, alpha, label in ((("target1", "target2"), "k", 0.4, "exact target"),
                                             (("learned1", "learned2"), "C1", 1.0, "trained DAE r(x) - x")):
            vectors = field[[u, v]].to_numpy()  # arrows longer than 1.5 steps (far from the data) are clipped
            length = np.hypot(vectors[:, 0], vectors[:, 1]) / scale
            vectors = vectors * np.minimum(1.0, 1.5 * step / np.maximum(length, 1e-300))[:, None]
            ax.quiver(field["x1"], field["x2"], vectors[:, 0], vectors[:, 1], color=colour, alpha=alpha,
                      angles="xy", scale_units="xy", scale=scale, label=label)
        ax.set(title=density, aspect="equal")
        ax.legend(fontsize=7, loc="lower right")
    return fig
