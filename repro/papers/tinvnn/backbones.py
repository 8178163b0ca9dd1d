"""The paper-scale backbones TinvNN is plugged into: the standard PointNet and DGCNN (PointNet-lite, the cpu scale's
backbone, lives in repro.core.geometry). Both take clouds (B, N, d) and return logits (B, classes); both keep an
``aux_loss`` of the last forward pass that the training loss adds (zero for DGCNN).

- PointNet (Qi et al., CVPR 2017, classification network): an input T-Net predicts a d x d matrix applied to the
  points, a shared MLP d-64-64, a feature T-Net (64 x 64), a shared MLP 64-64-128-1024, max-pool, head 512-256 with
  dropout 0.3 (keep probability 0.7); every layer but the last with BatchNorm and ReLU (the original
  TensorFlow network: 64-64 before the feature transform, 64-128-1024 after it). A T-Net is its own small
  PointNet (64-128-1024, max-pool, 512-256) whose output starts at the identity. The feature transform A is
  regularised by 0.001 ||I - A A^T||_F^2 (the paper's weight).
- DGCNN (Wang et al., TOG 2019, classification network): four EdgeConv layers 64, 64, 128, 256 with k = 20 nearest
  neighbours recomputed in each layer's input space (the dynamic graph); an edge's input is [h_j - h_i, h_i] and a
  point keeps the max over its edges; the four outputs are concatenated (512), mapped to 1024, max- and
  average-pooled (2048), head 512-256 with dropout 0.5; BatchNorm and LeakyReLU(0.2) throughout. Its training loss
  is cross-entropy with label smoothing 0.2 (``LABEL_SMOOTHING``).
"""

import torch
from torch import nn

LABEL_SMOOTHING = {"pointnet": 0.0, "dgcnn": 0.2}  # the official training losses of the two backbones


def shared(*widths: int, act: nn.Module | None = None) -> nn.Sequential:
    """Per-point Linear -> BatchNorm -> activation layers on (B, C, N) tensors (1x1 convolutions)."""
    layers = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Conv1d(a, b, 1, bias=False), nn.BatchNorm1d(b), act or nn.ReLU()]
    return nn.Sequential(*layers)


def dense(*widths: int, dropout: float = 0.0, act: nn.Module | None = None) -> nn.Sequential:
    """Linear -> BatchNorm -> activation (-> Dropout) layers on (B, C) tensors."""
    layers = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(a, b, bias=False), nn.BatchNorm1d(b), act or nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class TNet(nn.Module):
    """(B, d, N) -> a (B, d, d) transform: shared MLP d-64-128-1024, max-pool, 512-256, then d*d numbers added to
    the identity (the last layer starts at zero, so the transform starts at the identity)."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.d = d
        self.features = shared(d, 64, 128, 1024)
        self.head = dense(1024, 512, 256)
        self.out = nn.Linear(256, d * d)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        eye = torch.eye(self.d, dtype=x.dtype, device=x.device)
        return eye + self.out(self.head(self.features(x).amax(-1))).view(-1, self.d, self.d)


class PointNetFull(nn.Module):
    """The standard PointNet classifier with both T-Nets and BatchNorm (module docstring)."""

    def __init__(self, n_classes: int, in_dim: int = 3, dropout: float = 0.3, regulariser: float = 0.001) -> None:
        super().__init__()
        self.input_transform, self.feature_transform = TNet(in_dim), TNet(64)
        self.mlp1, self.mlp2 = shared(in_dim, 64, 64), shared(64, 64, 128, 1024)
        self.head = nn.Sequential(dense(1024, 512, 256, dropout=dropout), nn.Linear(256, n_classes))
        self.regulariser = regulariser
        self.aux_loss = torch.zeros(())

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        x = points.transpose(1, 2)  # (B, d, N)
        x = torch.bmm(self.input_transform(x).transpose(1, 2), x)  # x_i -> A^T x_i, as the official code
        x = self.mlp1(x)
        a = self.feature_transform(x)
        x = torch.bmm(a.transpose(1, 2), x)
        eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
        self.aux_loss = self.regulariser * (eye - a @ a.transpose(1, 2)).pow(2).sum((1, 2)).mean()
        return self.head(self.mlp2(x).amax(-1))


def knn_edges(h: torch.Tensor, k: int) -> torch.Tensor:
    """Edge inputs [h_j - h_i, h_i] over the k nearest j of each i (i itself included, distance 0), as the official
    ``get_graph_feature``: h (B, C, N) -> (B, 2C, N, k)."""
    x = h.transpose(1, 2)  # (B, N, C)
    index = torch.cdist(x, x).topk(k, dim=-1, largest=False).indices  # (B, N, k)
    b, n, c = x.shape
    neighbours = x[torch.arange(b, device=x.device)[:, None, None], index]  # (B, N, k, C)
    centre = x.unsqueeze(2).expand(-1, -1, k, -1)
    return torch.cat([neighbours - centre, centre], -1).permute(0, 3, 1, 2)


class EdgeConv(nn.Module):
    def __init__(self, c_in: int, c_out: int, k: int) -> None:
        super().__init__()
        self.k = k
        self.mlp = nn.Sequential(nn.Conv2d(2 * c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out),
                                 nn.LeakyReLU(0.2))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.mlp(knn_edges(h, self.k)).amax(-1)


class DGCNN(nn.Module):
    """The DGCNN classifier (module docstring)."""

    def __init__(self, n_classes: int, in_dim: int = 3, k: int = 20, embedding: int = 1024,
                 dropout: float = 0.5) -> None:
        super().__init__()
        widths = (64, 64, 128, 256)
        self.convs = nn.ModuleList(EdgeConv(a, b, k) for a, b in zip((in_dim, *widths[:-1]), widths))
        self.merge = shared(sum(widths), embedding, act=nn.LeakyReLU(0.2))
        self.head = nn.Sequential(dense(2 * embedding, 512, 256, dropout=dropout, act=nn.LeakyReLU(0.2)),
                                  nn.Linear(256, n_classes))
        self.aux_loss = torch.zeros(())

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        h, outputs = points.transpose(1, 2), []
        for conv in self.convs:
            h = conv(h)
            outputs.append(h)
        g = self.merge(torch.cat(outputs, 1))
        return self.head(torch.cat([g.amax(-1), g.mean(-1)], 1))
