"""Accuracy against the angle of a rotation about x, for models trained with z-rotations (z/SO3)."""

import pandas as pd

from repro.core.figures import new_figure, select_rows

LABELS = {"parot": "PaRot-lite", "pointnet": "PointNet-lite", "dgcnn": "DGCNN-lite", "pca_pointnet": "PCA + PointNet"}


def accuracy_vs_angle(rows: pd.DataFrame):
    fig, ax = new_figure(width=4.5)
    columns = sorted((c for c in rows.columns if c.startswith("acc/x")), key=lambda c: float(c[5:]))
    for method, label in LABELS.items():
        trained = select_rows(rows, method=method, protocol="z/SO3")
        if len(trained) and columns:
            ax.plot([float(c[5:]) for c in columns], trained[columns].mean().values, "o-", label=label)
    ax.set(xlabel="rotation about x (degrees)", ylabel="accuracy", ylim=(0, 1.02), title="trained with z-rotations")
    ax.legend()
    return fig
