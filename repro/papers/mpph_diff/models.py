"""Filtration learning on graphs: an MLP gives each node its filtration value(s); a topological descriptor of the
lower-star filtration, vectorised on a fixed grid, feeds a linear classifier. Gradients reach the MLP through
the descriptor (multipers' autodiff for the signed measures, persistence generators for the barcode)."""

import numpy as np
import torch
from torch import nn

from repro.papers.mpph_diff.descriptors import (
    gaussian_images,
    lower_star_h0_bars,
    persistence_diagram_measure,
    signed_measure,
)

PARAMETERS = {"euler_2p": 2, "hilbert_2p": 2, "barcode_1p": 1}


class TopologicalClassifier(nn.Module):
    """features (V, F) per graph -> f = sigmoid(MLP) in (0, 1)^k per node -> descriptor image -> logits.

    The sigmoid keeps every filtration value inside the fixed [0, 1]^2 grid of the vectorisation."""

    def __init__(self, method: str, num_features: int, num_classes: int, hidden: int, resolution: int,
                 sigma: float) -> None:
        super().__init__()
        self.method, self.resolution, self.sigma = method, resolution, sigma
        self.filtration = nn.Sequential(nn.Linear(num_features, hidden), nn.ReLU(),
                                        nn.Linear(hidden, PARAMETERS[method]))
        self.classify = nn.Linear(resolution * resolution, num_classes)

    def measure(self, f: torch.Tensor, edges: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """The descriptor of one graph as weighted points in [0, 1]^2, differentiable in f."""
        if self.method == "barcode_1p":
            return persistence_diagram_measure(lower_star_h0_bars(edges, f[:, 0], cap=1.0))
        # lower-star bifiltration: an edge enters at the coordinate-wise max of its endpoints
        values = torch.cat([f, torch.maximum(f[edges[:, 0]], f[edges[:, 1]])])
        vertices = np.arange(len(f))[:, None]
        return signed_measure([vertices, edges], values, None if self.method == "euler_2p" else 0)

    def forward(self, graphs: list[tuple[torch.Tensor, np.ndarray]]) -> torch.Tensor:
        """graphs: (node features (V, F), undirected edges (E, 2)) per graph; the MLP and the vectorisation
        run on the whole batch at once, the descriptor (multipers / gudhi) graph by graph."""
        sizes = [len(x) for x, _ in graphs]
        f = torch.sigmoid(self.filtration(torch.cat([x for x, _ in graphs]))).split(sizes)
        measures = [self.measure(values, edges) for values, (_, edges) in zip(f, graphs)]
        return self.classify(gaussian_images(measures, self.resolution, self.sigma))
