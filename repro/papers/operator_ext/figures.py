"""Figure redrawn from stored rows: test relative L2 against the test resolution, one curve per model."""

import pandas as pd

from repro.core.figures import new_figure, select_rows

LABELS = {"fno": "FNO", "unet": "U-Net (pixel kernels)", "unet_interp": "U-Net (resampled kernels)",
          "unet_io": "U-Net + input-output interpolation", "unet_multires": "U-Net (multi-resolution training)",
          "vit": "ViT (pixel patches)"}


def error_vs_resolution(rows: pd.DataFrame):
    fig, ax = new_figure(width=5.0)
    for task in ("darcy", "navier_stokes"):
        chosen = select_rows(rows, task)
        if chosen.empty:
            continue
        columns = sorted((c for c in chosen.columns if c.startswith("test/rel_l2_") and chosen[c].notna().any()),
                         key=lambda c: int(c.rsplit("_", 1)[1]))
        resolutions = [int(c.rsplit("_", 1)[1]) for c in columns]
        for method, label in LABELS.items():
            points = select_rows(chosen, method=method)
            if points.empty:
                continue
            ax.errorbar(resolutions, points[columns].mean().values, yerr=points[columns].std().fillna(0).values,
                        marker="o", capsize=3, label=label)
        base = 33 if task == "darcy" else 128
        ax.axvline(base, color="grey", linestyle=":", label="training resolution")
    ax.set(xscale="log", yscale="log", xlabel="test resolution (points per axis)",
           ylabel="relative L2 (mean +- sd over replicates)", title="error across resolutions")
    ax.legend(fontsize=7)
    return fig
