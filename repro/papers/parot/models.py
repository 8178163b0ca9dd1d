"""PaRot-lite and the DGCNN-lite baseline (PointNet-lite lives in repro.core.geometry).

PaRot (Zhang et al., AAAI 2023), scaled down:
1. Patches. M local patches: FPS centres c_i, their k nearest points minus c_i, P_i (k, 3); global patches: G FPS
   points of the whole cloud minus c_i, Q_i (G, 3).
2. Disentanglement (one net per scale, shared over patches): PointNet encoder -> invariant feature f_i and two
   direction vectors d1, d2; O_i = [e1, e2, e1 x e2] by Gram-Schmidt (det +1). In training every patch is fed
   twice, rotated by independent random R1, R2 (siamese); losses make R1^T d(R1 P) = R2^T d(R2 P)
   (direction consistency) and d1 _|_ d2; features come from the R1 branch with directions rotated back by R1^T
   (pose restored). At test time patches are not rotated.
3. Pose restoration between patches: for the n nearest patches j of i, the rotation-invariant relation
   r_ij = [O_i^T O_j (9), O_i^T u_ij (3), O_j^T u_ij (3), |c_j - c_i| (1)], u_ij the unit offset, is embedded
   and an EdgeConv-like block h_i = max_j MLP([f_i, f_j, emb(r_ij)]) mixes patches.
4. Inter-scale fusion: the same relation between a patch's local frame O_i and its global frame O^g_i, offset the
   centre c_i minus the cloud's centroid; max-pool over patches, MLP head.
Given an invariant f and equivariant directions (d(R P) = R d(P)), everything after step 2 is exactly
rotation invariant; the disentanglement nets themselves are plain PointNets, so invariance is learned (the
paper's siamese training), not built in: predictions under rotation agree only as well as training achieved.
"""

import torch
import torch.nn.functional as F
from torch import nn


def farthest_point_sampling(points: torch.Tensor, m: int) -> torch.Tensor:
    """(B, N, 3) -> (B, m) indices; deterministic start at the point farthest from the centroid.

    Runs where ``points`` live (all clouds of the batch at once, indices and distances on that device, no host
    synchronisation); only the m - 1 greedy steps are sequential, as FPS is by definition. Deterministic, so
    the first g samples of FPS(m) are FPS(g) for g <= m (PaRotLite draws its local centres and global anchors
    from one call).
    """
    b, n, _ = points.shape
    centred = points - points.mean(1, keepdim=True)
    chosen = torch.empty(b, m, dtype=torch.long, device=points.device)
    chosen[:, 0] = centred.norm(dim=-1).argmax(-1)
    distance = torch.full((b, n), float("inf"), dtype=points.dtype, device=points.device)
    for i in range(1, m):
        last = points.gather(1, chosen[:, i - 1, None, None].expand(b, 1, points.shape[-1]))  # (B, 1, 3)
        distance = torch.minimum(distance, ((points - last) ** 2).sum(-1))
        chosen[:, i] = distance.argmax(-1)
    return chosen


def knn(queries: torch.Tensor, points: torch.Tensor, k: int) -> torch.Tensor:
    """(B, M, d), (B, N, d) -> (B, M, k) indices of the k nearest points (the query itself included if present)."""
    return torch.cdist(queries, points).topk(k, dim=-1, largest=False).indices


def gather(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """values (B, N, d), index (B, ...) -> (B, ..., d)."""
    b = values.shape[0]
    flat = index.reshape(b, -1)
    return values[torch.arange(b, device=values.device).unsqueeze(1), flat].view(*index.shape, values.shape[-1])


class RowBatchNorm(nn.BatchNorm1d):
    """BatchNorm over every row of a (..., C) tensor (batch x patches x points), as the paper's shared MLPs."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.reshape(-1, x.shape[-1])).view_as(x)


def mlp(*widths: int, last_act: bool = True) -> nn.Sequential:
    """Linear -> BatchNorm -> LeakyReLU(0.2) per layer (the last layer bare unless last_act)."""
    layers = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if last_act or i < len(widths) - 2:
            layers += [RowBatchNorm(b), nn.LeakyReLU(0.2)]
    return nn.Sequential(*layers)


def orientation(d1: torch.Tensor, d2: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Columns e1, e2, e3 = e1 x e2 from two directions (Gram-Schmidt; eps keeps parallel inputs finite)."""
    e1 = d1 / (d1.norm(dim=-1, keepdim=True) + eps)
    e2 = d2 - (d2 * e1).sum(-1, keepdim=True) * e1
    e2 = e2 / (e2.norm(dim=-1, keepdim=True) + eps)
    return torch.stack([e1, e2, torch.cross(e1, e2, dim=-1)], dim=-1)


def random_rotation_matrices(shape: tuple[int, ...], generator: torch.Generator | None = None,
                             device: torch.device | str | None = None) -> torch.Tensor:
    """Haar SO(3) samples of the given batch shape via normalised Gaussian quaternions."""
    q = torch.randn(*shape, 4, generator=generator, device=device)
    w, x, y, z = (q / q.norm(dim=-1, keepdim=True)).unbind(-1)
    return torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
                        2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
                        2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1).view(*shape, 3, 3)


def pose_relation(o_a: torch.Tensor, o_b: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """The rotation-invariant relation of two oriented patches (..., 16):
    [O_a^T O_b (9), O_a^T u (3), O_b^T u (3), |offset| (1)], u = offset / |offset|.

    Invariant because a rotation R maps O -> R O and offset -> R offset, and R^T R = I cancels in every product.
    """
    dist = offset.norm(dim=-1, keepdim=True)
    unit = (offset / dist.clamp_min(1e-8)).unsqueeze(-1)
    o_a_t = o_a.transpose(-2, -1)
    return torch.cat([(o_a_t @ o_b).flatten(-2), (o_a_t @ unit)[..., 0], (o_b.transpose(-2, -1) @ unit)[..., 0],
                      dist], -1)


class Disentangle(nn.Module):
    """PointNet on a patch (..., k, 3) -> invariant feature (..., 2 width) and directions d1, d2 (..., 3).

    The official DisentangleNet at width 64: encoder 3-64-128-128, max-pool, invariant head 128-128-128 (two layers),
    two direction heads 128-64-32-3."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.encoder = mlp(3, width, 2 * width, 2 * width)
        self.invariant = mlp(2 * width, 2 * width, 2 * width)
        self.directions = nn.ModuleList(mlp(2 * width, width, width // 2, 3, last_act=False) for _ in range(2))

    def forward(self, patch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        g = self.encoder(patch).amax(-2)
        # unit directions, as the paper's code: unnormalised ones could shrink to satisfy the consistency loss
        return self.invariant(g), F.normalize(self.directions[0](g), dim=-1), F.normalize(self.directions[1](g), dim=-1)


def head_layers(widths: tuple[int, ...], dropout: float = 0.5) -> nn.Sequential:
    """Linear -> BatchNorm -> LeakyReLU(0.2) -> Dropout per hidden layer (the official classifier's blocks)."""
    layers = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [mlp(a, b), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


class PaRotLite(nn.Module):
    """Input clouds (B, N, 3) -> logits (B, classes); ``aux_losses`` holds the last training step's
    direction-consistency and orthogonality losses (weighted as in the paper's defaults).

    Widths follow the official classification model when width = 64: invariant patch features F = 2 width = 128;
    intra-scale EdgeConv on [f_i, f_j, emb(r_ij)] of 2F + 32 = 288 channels -> 128 -> 128 -> 128 (max over the
    neighbouring patches); inter-scale fusion of [h_i (128), global feature (128), emb(local-to-global relation)
    (32)] = 288 -> 256 -> 512 -> embedding, max-pool over patches; classifier head ``head`` (512-256) with dropout
    0.5 after each hidden layer; each 16-number pose relation is embedded by one 16 -> 32 layer.
    """

    def __init__(self, n_classes: int, local_patches: int = 32, local_k: int = 16, global_points: int = 16,
                 neighbours: int = 8, width: int = 64, embedding: int = 256, head: tuple[int, ...] = (128, 64),
                 siamese: bool = True, pose_restoration: bool = True) -> None:
        super().__init__()
        self.m, self.k, self.g, self.n = local_patches, local_k, global_points, neighbours
        self.siamese, self.pose_restoration, self.embedding = siamese, pose_restoration, embedding
        self.local_net, self.global_net = Disentangle(width), Disentangle(width)
        feature = 2 * width
        relation = 16 if pose_restoration else 1  # without pose restoration only the distance is kept
        self.relation_embed = mlp(relation, 32)
        self.edge = mlp(2 * feature + 32, 2 * width, 2 * width, 2 * width)
        self.fusion_embed = mlp(relation, 32)
        self.fusion = mlp(2 * width + feature + 32, 4 * width, 8 * width, embedding)
        self.head = nn.Sequential(head_layers((embedding, *head)), nn.Linear(head[-1], n_classes))
        self.aux_losses: dict[str, torch.Tensor] = {}

    def relation(self, o_a: torch.Tensor, o_b: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        """Pose relation of two frames (..., 3, 3) a distance vector apart (..., 3): 16 numbers, or only |offset|
        in the no-pose-restoration ablation."""
        if self.pose_restoration:
            return pose_relation(o_a, o_b, offset)
        return offset.norm(dim=-1, keepdim=True)

    def _disentangle(self, net: Disentangle, patches: torch.Tensor, name: str
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """Features and pose-restored orientations of patches (B, M, k, 3); siamese losses in training."""
        if not (self.training and self.siamese):
            f, d1, d2 = net(patches)
            return f, orientation(d1, d2)
        r1 = random_rotation_matrices(patches.shape[:2], device=patches.device)
        r2 = random_rotation_matrices(patches.shape[:2], device=patches.device)
        # both branches in one pass (half the kernel launches); BatchNorm statistics pool the two branches
        f, d1, d2 = net(torch.cat([patches @ r1.transpose(-2, -1), patches @ r2.transpose(-2, -1)]))
        r = torch.cat([r1, r2])
        d1, d2 = ((r.transpose(-2, -1) @ d.unsqueeze(-1)).squeeze(-1) for d in (d1, d2))  # R^T d: original pose
        b = patches.shape[0]
        f, (a1, b1), (a2, b2) = f[:b], d1.split(b), d2.split(b)
        weights = {"local": (1.0, 0.2), "global": (1.0, 0.1)}[name]
        consistency = F.mse_loss(a1, b1) + F.mse_loss(a2, b2)
        orthogonality = (F.normalize(a1, dim=-1) * F.normalize(a2, dim=-1)).sum(-1).pow(2).mean()
        self.aux_losses[name] = weights[0] * consistency + weights[1] * orthogonality
        return f, orientation(a1, a2)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        return self.head(self.patch_features(points)[0].amax(1))

    def local_patches(self, points: torch.Tensor, sampled: torch.Tensor | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """FPS centres (B, M, 3) and their k nearest points minus the centre (B, M, k, 3); ``sampled`` (B, >= M)
        FPS indices already drawn for these clouds (the first M are the centres)."""
        if sampled is None:
            sampled = farthest_point_sampling(points, self.m)
        centres = gather(points, sampled[:, :self.m])
        return centres, gather(points, knn(centres, points, self.k)) - centres.unsqueeze(2)

    def direction_equivariance(self, points: torch.Tensor, rotations: torch.Tensor) -> float:
        """Mean cosine between d(R P) and R d(P) over the local patches P of clouds (B, N, 3), one rotation (B, 3, 3)
        per cloud, both directions: 1 for exactly equivariant directions (the oracle for the learned part)."""
        _, patches = self.local_patches(points)
        r = rotations.to(points.dtype).unsqueeze(1)  # (B, 1, 3, 3)
        _, *directions = self.local_net(patches)
        _, *moved = self.local_net(patches @ r.transpose(-2, -1))
        cosines = [(F.normalize(m, dim=-1) * F.normalize((r @ d.unsqueeze(-1))[..., 0], dim=-1)).sum(-1)
                   for d, m in zip(directions, moved)]
        return float(torch.stack(cosines).mean())

    def patch_features(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Clouds (B, N, 3) -> fused patch features (B, M, embedding), centres (B, M, 3), local frames (B, M, 3, 3)."""
        sampled = farthest_point_sampling(points, max(self.m, self.g))  # one FPS: its prefixes are FPS(M), FPS(G)
        centres, local = self.local_patches(points, sampled)
        anchors = gather(points, sampled[:, :self.g])  # (B, G, 3)
        global_ = anchors.unsqueeze(1) - centres.unsqueeze(2)  # (B, M, G, 3)
        f, o = self._disentangle(self.local_net, local, "local")
        fg, og = self._disentangle(self.global_net, global_, "global")
        neighbours = knn(centres, centres, self.n + 1)[..., 1:]  # (B, M, n), self excluded
        o_j = gather(o.flatten(-2), neighbours).view(*neighbours.shape, 3, 3)
        offset = gather(centres, neighbours) - centres.unsqueeze(2)  # c_j - c_i
        relation = self.relation(o.unsqueeze(2).expand_as(o_j), o_j, offset)  # (B, M, n, 16 or 1)
        pair = torch.cat([f.unsqueeze(2).expand(-1, -1, self.n, -1), gather(f, neighbours),
                          self.relation_embed(relation)], -1)
        h = self.edge(pair).amax(2)  # (B, M, 2 width)
        cross = self.fusion_embed(self.relation(o, og, centres - points.mean(1, keepdim=True)))  # local -> global
        return self.fusion(torch.cat([h, fg, cross], -1)), centres, o


class PaRotSeg(PaRotLite):
    """Part segmentation: clouds (B, N, 3) and categories (B,) -> part logits (B, N, parts).

    Each point x takes the inverse-distance-weighted features of its 3 nearest patch centres (PointNet++-style
    propagation), the max-pooled shape feature, its offset expressed in the nearest patch's frame
    O_j^T (x - c_j) (rotation invariant as the frames are equivariant: the pose-aware part of the paper's
    propagation) and the category one-hot; a shared MLP gives the part logits.
    """

    def __init__(self, n_categories: int, n_parts: int, **kwargs) -> None:
        super().__init__(n_parts, **kwargs)  # the per-point head below replaces the classification head
        self.n_categories = n_categories
        self.head = nn.Sequential(mlp(2 * self.embedding + 3 + n_categories, 128, 64), nn.Dropout(0.5),
                                        nn.Linear(64, n_parts))

    def forward(self, points: torch.Tensor, categories: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        features, centres, o = self.patch_features(points)
        nearest = knn(points, centres, 3)  # (B, N, 3) patch indices
        weights = 1 / ((gather(centres, nearest) - points.unsqueeze(2)).norm(dim=-1) + 1e-8)
        weights = weights / weights.sum(-1, keepdim=True)
        propagated = (weights.unsqueeze(-1) * gather(features, nearest)).sum(2)  # (B, N, embedding)
        o_near = gather(o.flatten(-2), nearest[..., 0]).view(*points.shape[:2], 3, 3)
        local_pose = (o_near.transpose(-2, -1) @ (points - gather(centres, nearest[..., 0])).unsqueeze(-1))[..., 0]
        shape = features.amax(1, keepdim=True).expand_as(propagated)
        one_hot = F.one_hot(categories, self.n_categories).to(points.dtype).unsqueeze(1).expand(-1, points.shape[1], -1)
        return self.head(torch.cat([propagated, shape, local_pose, one_hot], -1))


class DGCNN(nn.Module):
    """DGCNN-lite: two EdgeConv layers h_i = max_{j in kNN(i)} MLP([h_i, h_j - h_i]) (kNN recomputed in feature
    space for the second), concatenation, shared linear, max-pool, MLP head."""

    def __init__(self, n_classes: int, k: int = 10, width: int = 64, embedding: int = 256) -> None:
        super().__init__()
        self.k = k
        self.conv1, self.conv2 = mlp(6, width, width), mlp(2 * width, width, width)
        self.merge = mlp(2 * width, embedding)
        self.head = nn.Sequential(mlp(embedding, 128), nn.Dropout(0.5), nn.Linear(128, n_classes))

    def edge_conv(self, h: torch.Tensor, layer: nn.Module) -> torch.Tensor:
        neighbours = gather(h, knn(h, h, self.k))  # (B, N, k, d)
        centre = h.unsqueeze(2).expand_as(neighbours)
        return layer(torch.cat([centre, neighbours - centre], -1)).amax(2)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        h1 = self.edge_conv(points, self.conv1)
        h2 = self.edge_conv(h1, self.conv2)
        return self.head(self.merge(torch.cat([h1, h2], -1)).amax(1))
