"""PSNR of every model at the same parameter count, each replicate a dot on its mean bar."""

import numpy as np
import pandas as pd

from repro.core.figures import new_figure, select_rows


def psnr(rows: pd.DataFrame):
    fig, ax = new_figure(width=7.0)
    image = select_rows(rows, "image")
    methods = list(dict.fromkeys(image["method"]))
    for position, method in enumerate(methods):
        values = select_rows(image, method=method)["test/psnr"].to_numpy(float)
        ax.bar(position, values.mean(), color="tab:blue" if method.startswith("neurbf") else "tab:gray", alpha=0.6)
        ax.plot(np.full(len(values), position), values, "k.", ms=4)
    ax.set_xticks(range(len(methods)), methods, rotation=35, ha="right", fontsize=7)
    ax.set(ylabel="PSNR (dB)", title="image fitting at equal parameters (dots: replicates)")
    low = image["test/psnr"].min()
    ax.set_ylim(bottom=low - 2)
    return fig
