"""n-body: validation MSE against epoch; equivariance error per model (log scale); graph accuracy per model."""

import numpy as np
import pandas as pd

from repro.core.figures import new_figure, select_rows

NBODY_LABELS = {"fa_gnn": "FA-GNN (per-layer frames)", "fa_gnn_input": "FA-GNN (input frame)", "gnn": "GNN",
                "gnn_aug": "GNN + O(3) aug.", "const_vel": "const. velocity"}
GRAPH_LABELS = {"gin": "GIN", "ga_gin_id": "GA-GIN+ID", "fa_gin_id": "FA-GIN+ID"}


def nbody_and_graphs(rows: pd.DataFrame):
    fig, axes = new_figure(ncols=3, width=3.8)
    for method, label in NBODY_LABELS.items():
        curve = select_rows(rows, "nbody_curve", method=method)
        if len(curve):
            curve = curve.groupby("epoch")["val/mse"].mean()
            axes[0].semilogy(curve.index, curve.values, label=label)
    axes[0].set(xlabel="epoch", ylabel="validation MSE", title="charged 5-body")
    axes[0].legend()
    errors = [select_rows(rows, "nbody", method=m).get("equivariance_error", pd.Series(dtype=float)).mean()
              for m in NBODY_LABELS]
    axes[1].bar(list(NBODY_LABELS.values()), np.maximum(np.nan_to_num(errors), 1e-12))
    axes[1].set(yscale="log", ylabel="||f(Qx+t) - (Qf(x)+t)|| (RMS)", title="O(3) x translation")
    axes[1].tick_params(axis="x", rotation=30)
    accuracy = [select_rows(rows, "graphs", method=m).get("test/acc", pd.Series(dtype=float)).mean()
                for m in GRAPH_LABELS]
    axes[2].bar(list(GRAPH_LABELS.values()), np.nan_to_num(accuracy))
    graphs = select_rows(rows, "graphs")
    if len(graphs):
        axes[2].axhline(graphs["majority_rate"].mean(), color="k", ls="--", label="majority rate")
        axes[2].legend()
    axes[2].set(ylim=(0, 1), ylabel="test accuracy", title="triangles in 3-regular graphs")
    return fig
