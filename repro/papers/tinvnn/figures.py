"""Accuracy against the angle of a rotation about the x axis, for models trained on canonical clouds (mean over
replicates and, at scale=paper, over the two backbones)."""

import pandas as pd

from repro.core.figures import new_figure, select_rows

LABELS = {"raw": "raw xyz", "raw_aug": "raw xyz + SO(3) augmentation", "tinvnn": "TinvNN coordinates"}


def accuracy_vs_angle(rows: pd.DataFrame):
    fig, ax = new_figure(width=4.5)
    columns = sorted((c for c in rows.columns if c.startswith("acc/x")), key=lambda c: float(c[5:]))
    angles = [float(c[5:]) for c in columns]
    for method, label in LABELS.items():
        trained = select_rows(rows, "classify", method=method)
        if len(trained) and columns:
            ax.plot(angles, trained[columns].mean().values, "o-", label=label)
    ax.set(xlabel="rotation about x (degrees)", ylabel="test accuracy", ylim=(0, 1.02),
           title="trained on canonical clouds")
    ax.legend()
    return fig
