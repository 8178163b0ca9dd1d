"""TinvNN's combinatorial-optimisation task: Euclidean TSP with a learned edge scorer on raw vs TinvNN coordinates.

- instances: n cities uniform in [0, 1]^2; exact optimal tours by Held-Karp dynamic programming (the oracle);
- backbone: a GNN on the complete graph that sees only the cities' 2-D coordinates (raw xy, or the TinvNN MDS
  coordinates with k = 2), scores every edge, trained with binary cross-entropy on the optimal tour's edges;
- decoding: greedy from city 0, always to the unvisited city of highest edge score;
- metric: optimality gap = tour length / optimal length - 1, on the test instances as drawn and on copies
  transformed by x -> s Q x + t (Q Haar on O(2), s ~ U[0.5, 2], t ~ N(0, shift_std^2 I)); the optimal tour is the
  same on both, its length scaled by s.
"""

import numpy as np
import torch
from omegaconf import DictConfig
from scipy.stats import ortho_group
from torch import nn

from repro.core.context import RunContext
from repro.core.train import fit
from repro.papers.tinvnn.mds import tinvnn_coordinates

METHODS = ("raw", "tinvnn")


def held_karp(distances: np.ndarray, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Optimal closed tours of instances with (B, n, n) distance matrices: lengths (B,) and tours (B, n) from 0.

    cost[S, k] = length of the shortest path that starts at city 0, visits exactly the set S (bit mask, 0 in S)
    and ends at k in S; cost[S + k, k] = min_{j in S} cost[S, j] + d[j, k] (every state (S + k, k) has exactly one
    predecessor set S, so it is written once), and the tour closes with min_k cost[all, k] + d[k, 0].
    O(2^n n^2) time per instance, vectorised over the batch.
    """
    b, n, _ = distances.shape
    if b > chunk:
        parts = [held_karp(distances[i:i + chunk], chunk) for i in range(0, b, chunk)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    full = 1 << n
    cost = np.full((b, full, n), np.inf)
    parent = np.zeros((b, full, n), dtype=np.int64)
    cost[:, 1, 0] = 0.0
    cities = np.arange(n)
    for mask in range(1, full, 2):  # sets that contain city 0, in increasing order (subsets come first)
        inside, outside = cities[(mask >> cities) & 1 == 1], cities[(mask >> cities) & 1 == 0]
        if len(outside) == 0:
            continue
        candidate = cost[:, mask, inside][:, :, None] + distances[:, inside][:, :, outside]  # (B, |S|, |out|)
        best = candidate.argmin(1)  # (B, |out|)
        grown = mask | (1 << outside)
        cost[:, grown, outside] = np.take_along_axis(candidate, best[:, None], 1)[:, 0]
        parent[:, grown, outside] = inside[best]
    closing = cost[:, full - 1] + distances[:, :, 0]
    closing[:, 0] = np.inf
    last = closing.argmin(1)
    lengths = closing[np.arange(b), last]
    tours = np.zeros((b, n), dtype=np.int64)  # walk the parents back from the last city
    mask, city = np.full(b, full - 1), last
    for position in range(n - 1, 0, -1):
        tours[:, position] = city
        city, mask = parent[np.arange(b), mask, city], mask ^ (1 << city)
    return lengths, tours


def tour_length(points: np.ndarray, tours: np.ndarray) -> np.ndarray:
    """Closed-tour lengths (B,) of tours (B, n) through points (B, n, d)."""
    ordered = np.take_along_axis(points, tours[..., None], 1)
    return np.linalg.norm(ordered - np.roll(ordered, -1, 1), axis=-1).sum(1)


def tour_edges(tours: np.ndarray) -> np.ndarray:
    """Symmetric 0/1 adjacency (B, n, n) of closed tours (B, n)."""
    b, n = tours.shape
    adjacency = np.zeros((b, n, n), dtype=np.float32)
    rows, following = np.arange(b)[:, None], np.roll(tours, -1, 1)
    adjacency[rows, tours, following] = adjacency[rows, following, tours] = 1.0
    return adjacency


class EdgeScorer(nn.Module):
    """Coordinates (B, n, 2) -> symmetric edge logits (B, n, n).

    h_i = W x_i; ``layers`` rounds of h_i <- h_i + MLP([h_i, max_j h_j]) (message passing on the complete graph
    with max aggregation); logit_ij = MLP([h_i + h_j, h_i * h_j]), symmetric in i, j by construction. The
    backbone sees coordinates only (no distances), so it is not invariant unless its input is.
    """

    def __init__(self, width: int = 64, layers: int = 3) -> None:
        super().__init__()
        self.embed = nn.Linear(2, width)
        self.layers = nn.ModuleList(nn.Sequential(nn.Linear(2 * width, width), nn.ReLU(), nn.Linear(width, width))
                                    for _ in range(layers))
        self.edge = nn.Sequential(nn.Linear(2 * width, width), nn.ReLU(), nn.Linear(width, 1))

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        h = self.embed(coords)
        for layer in self.layers:
            h = h + layer(torch.cat([h, h.amax(1, keepdim=True).expand_as(h)], -1))
        h_i, h_j = h.unsqueeze(2), h.unsqueeze(1)
        return self.edge(torch.cat([(h_i + h_j).expand(-1, -1, h.shape[1], -1), h_i * h_j], -1))[..., 0]


def greedy_tours(logits: torch.Tensor) -> np.ndarray:
    """Tours (B, n) from city 0, each step to the unvisited city with the highest edge logit."""
    b, n, _ = logits.shape
    visited = torch.zeros(b, n, dtype=torch.bool, device=logits.device)
    visited[:, 0] = True
    tours = torch.zeros(b, n, dtype=torch.long, device=logits.device)
    rows = torch.arange(b, device=logits.device)
    for position in range(1, n):
        scores = logits[rows, tours[:, position - 1]].masked_fill(visited, -torch.inf)
        tours[:, position] = scores.argmax(1)
        visited[rows, tours[:, position]] = True
    return tours.cpu().numpy()


def transform_instances(points: np.ndarray, rng: np.random.Generator, scale: tuple[float, float],
                        shift_std: float) -> tuple[np.ndarray, np.ndarray]:
    """x -> s Q x + t per instance (Q Haar on O(2)); returns the moved points and the scales s (B,)."""
    q = ortho_group.rvs(2, size=len(points), random_state=rng)
    s = rng.uniform(*scale, size=len(points))
    shift = shift_std * rng.standard_normal((len(points), 1, 2))
    return s[:, None, None] * np.einsum("bij,bnj->bni", q, points) + shift, s


def inputs(method: str, points: np.ndarray) -> torch.Tensor:
    """The backbone's input: raw coordinates, or TinvNN coordinates (MDS of RMS-normalised distances, k = 2)."""
    return torch.as_tensor(tinvnn_coordinates(points, k=2) if method == "tinvnn" else points.astype(np.float32))


def run_tsp(cfg: DictConfig, ctx: RunContext) -> list[dict]:
    """One replicate of the TSP comparison: the same instances, the edge scorer trained on each encoding
    (rows per method) with the optimality gaps on the original and the transformed test instances."""
    c = cfg.tsp
    rng = np.random.default_rng(ctx.data_seed("tsp"))
    train_points = rng.random((c.train_instances, c.cities, 2))
    test_points = rng.random((c.test_instances, c.cities, 2))
    val_points = rng.random((c.val_instances, c.cities, 2))
    moved_points, scales = transform_instances(test_points, rng, tuple(cfg.data.test_scale), cfg.data.test_shift_std)
    train_edges = torch.as_tensor(tour_edges(held_karp(pairwise(train_points))[1]), device=ctx.device)
    val_edges = torch.as_tensor(tour_edges(held_karp(pairwise(val_points))[1]), device=ctx.device)
    optimal = held_karp(pairwise(test_points))[0]
    ctx.log.info("TSP: %d + %d + %d Held-Karp tours", len(train_points), len(val_points), len(test_points))
    rows = []
    for method in c.methods:  # one unit compares the encodings of the same instances
        x = {name: inputs(method, p).to(ctx.device) for name, p in (("train", train_points), ("val", val_points),
                                                                   ("test", test_points), ("moved", moved_points))}
        model = train_scorer(cfg, ctx, method, x["train"], train_edges, (x["val"], val_edges))
        with torch.no_grad():
            gap = tour_length(test_points, greedy_tours(model(x["test"]))) / optimal - 1
            gap_moved = tour_length(moved_points, greedy_tours(model(x["moved"]))) / (scales * optimal) - 1
        ctx.log.info("TSP %s: gap %.4f, transformed %.4f", method, gap.mean(), gap_moved.mean())
        rows.append({"method": method, "tsp/gap": float(gap.mean()),
                     "tsp/gap_transformed": float(gap_moved.mean()),
                     "tsp/gap_increase": float(gap_moved.mean() - gap.mean()),
                     "tsp/gap_change": float(abs(gap_moved.mean() - gap.mean()))})
    raw = [r["tsp/gap"] for r in rows if r["method"] == "raw"]
    for r in rows:  # TinvNN on transformed instances against the raw backbone on the instances as drawn
        if r["method"] == "tinvnn" and raw:
            r["tsp/vs_raw_original"] = r["tsp/gap_transformed"] - raw[0]
    return rows


def pairwise(points: np.ndarray) -> np.ndarray:
    return np.linalg.norm(points[:, :, None] - points[:, None], axis=-1)


def train_scorer(cfg: DictConfig, ctx: RunContext, method: str, x: torch.Tensor, edges: torch.Tensor,
                 val: tuple[torch.Tensor, torch.Tensor]) -> EdgeScorer:
    """BCE on the tour edges (off-diagonal entries; positives weighted (n - 3) / 2, the negatives-to-positives
    ratio: each city has 2 tour edges among its n - 1); Adam with cosine decay to lr/100; the model kept is the one
    of lowest validation BCE."""
    c = cfg.tsp
    torch.manual_seed(ctx.child_seed("init", method))
    model = EdgeScorer(c.width, c.layers).to(ctx.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=c.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, c.epochs * -(-len(x) // c.batch_size),
                                                          eta_min=c.lr / 100)
    off_diagonal = ~torch.eye(c.cities, dtype=torch.bool, device=ctx.device)
    pos_weight = torch.tensor((c.cities - 3) / 2, device=ctx.device)

    def batches(epoch: int):
        order = np.random.default_rng(ctx.child_seed("batches", method, epoch)).permutation(len(x))
        for start in range(0, len(x), c.batch_size):
            idx = torch.as_tensor(order[start:start + c.batch_size], device=x.device)
            yield x[idx], edges[idx]

    def loss_fn(model: nn.Module, batch) -> torch.Tensor:
        logits = model(batch[0])
        return nn.functional.binary_cross_entropy_with_logits(logits[:, off_diagonal], batch[1][:, off_diagonal],
                                                              pos_weight=pos_weight)

    def evaluate(model: nn.Module) -> dict[str, float]:
        return {"val/loss": float(loss_fn(model, val))}

    fit(ctx, method, model, optimizer, batches, loss_fn, c.epochs, evaluate, select="val/loss", scheduler=schedule)
    return model.eval()
