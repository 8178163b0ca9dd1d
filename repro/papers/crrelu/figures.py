"""Figures from stored rows: the candidate activations with their output entropies, the paired test-accuracy
differences to ReLU per replicate, and the learned eps of CRReLU along training."""

import numpy as np
import pandas as pd
from scipy import stats

from repro.core.figures import new_figure, select_rows
from repro.papers.crrelu.entropy import activation_pair


def entropy(rows: pd.DataFrame):
    fig, axes = new_figure(ncols=2, width=4.2)
    part = select_rows(rows, "entropy")
    x = np.linspace(-4, 4, 400)
    for method in part["method"].unique():
        value = select_rows(part, method=method, input_scale=1.0)["entropy"]
        label = f"{method} (H = {value.iloc[0]:.3f} at s = 1)" if len(value) else method
        axes[0].plot(x, activation_pair(method, 1.0)[0](x), lw=2.5 if method == "wafbc" else 1.2, label=label)
        curve = part[part["method"] == method].sort_values("input_scale")
        axes[1].plot(curve["input_scale"], curve["entropy"], "o-", label=method)
    axes[0].set(title="activations bounded to (0, 1)", xlabel="x", ylabel="f(x)")
    axes[1].set(title="output entropy, X ~ N(0, s^2)", xlabel="input scale s", ylabel="H(f(X)) (nats)", xscale="log")
    axes[0].legend(fontsize=7)
    return fig


def accuracy(rows: pd.DataFrame):
    """Test accuracy of each activation minus ReLU's in the same replicate, with the 95% t-interval."""
    fig, ax = new_figure(width=6.0)
    vit = select_rows(rows, "vit")
    vit = vit[vit["test/acc"].notna()]
    table = vit.pivot_table(index="replicate", columns="method", values="test/acc")
    methods = [m for m in table.columns if m != "relu"]
    for i, method in enumerate(methods):
        differences = (table[method] - table["relu"]).dropna().to_numpy()
        ax.plot(np.full(len(differences), i), differences, "o", alpha=0.5, color="grey")
        if len(differences) > 1:
            half = stats.t.ppf(0.975, len(differences) - 1) * differences.std(ddof=1) / np.sqrt(len(differences))
            ax.errorbar(i + 0.15, differences.mean(), yerr=half, fmt="s", capsize=4, color="C3")
        else:
            ax.plot(i + 0.15, differences.mean(), "s", color="C3")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(range(len(methods)), methods)
    ax.set(ylabel="test acc - ReLU's (same replicate)", title="paired differences: replicates and mean ± 95% CI")
    return fig


def eps_trajectory(rows: pd.DataFrame):
    fig, ax = new_figure(width=5.0)
    curves = select_rows(rows, "vit", curve="eps") if "curve" in rows.columns else rows.iloc[:0]
    for (block, replicate), curve in curves.groupby(["block", "replicate"]):
        ax.plot(curve["epoch"], curve["eps"], color=f"C{int(block)}", alpha=0.6,
                     label=f"block {int(block)}" if replicate == curves["replicate"].min() else None)
    ax.set(xlabel="epoch", ylabel="learned eps", title="CRReLU's eps per block (one line per replicate)")
    ax.legend(fontsize=7)
    return fig
