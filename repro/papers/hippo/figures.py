"""Figures: HiPPO kernels exp(tA)B against their closed forms, and the delay-task MSE per variant."""

import numpy as np
import pandas as pd
import scipy.linalg

from repro.core.figures import new_figure, select_rows
from repro.papers.hippo import hippo

KERNEL_N = 64   # state size of the drawn kernels (the kernel itself is recomputed, it is cheap)


def kernels(rows: pd.DataFrame):
    """K_n(t), n = 0..3, t in [0, 3]: numerical exp(tA)B (solid) over the closed forms (dashed)."""
    fig, axes = new_figure(ncols=3, width=3.6)
    t = np.linspace(0, 3, 301)
    for ax, measure in zip(axes, hippo.MEASURES):
        a, b = hippo.transition(measure, KERNEL_N)
        numeric = np.stack([scipy.linalg.expm(s * a) @ b for s in t], axis=1)
        exact = hippo.closed_form_kernel(measure, KERNEL_N, t)
        for n in range(4):
            line, = ax.plot(t, numeric[n], label=f"n = {n}")
            ax.plot(t, exact[n], "--", color=line.get_color(), lw=1)
        ax.set(title=f"{measure} (N = {KERNEL_N})", xlabel="t", ylabel="K_n(t)")
    axes[0].legend()
    return fig


def delay(rows: pd.DataFrame):
    """Delay-task nMSE per variant (mean and replicates), log scale."""
    fig, ax = new_figure()
    chosen = select_rows(rows, "delay")
    if "variant" in chosen:
        variants = list(dict.fromkeys(chosen["variant"]))
        for i, variant in enumerate(variants):
            values = select_rows(chosen, variant=variant)["delay_nmse"].to_numpy(float)
            ax.bar(i, np.nanmean(values), color="C0" if variant in ("legs", "fout", "legt") else "C3")
            ax.plot(np.full(len(values), i), values, "k.")
        ax.set_xticks(range(len(variants)), variants, rotation=20)
    ax.set(yscale="log", ylabel="test MSE / Var(target)", title="delay task")
    return fig
