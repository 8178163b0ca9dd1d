"""FA experiments: (A) charged 5-body prediction with FA-GNN vs GNN, GNN + rotation augmentation and constant
velocity; (B) triangle detection on 1-WL-equivalent 3-regular graphs with GIN, GA-GIN+ID and FA-GIN+ID."""

import time

import numpy as np
import torch
from omegaconf import DictConfig

from repro.core.context import RunContext
from repro.core.errors import ConfigError
from repro.core.geometry import random_rotations
from repro.core.train import fit
from repro.papers.fa.frames import frame_size
from repro.papers.fa.graphs import DenseGIN, SampledAverage, id_features, pad, triangle_graphs
from repro.papers.fa.nbody import GNN, FrameAveraged, constant_velocity, simulate_charged

NBODY_METHODS = ("fa_gnn", "gnn", "gnn_aug", "const_vel")
GRAPH_METHODS = ("gin", "ga_gin_id", "fa_gin_id")


def nbody_splits(cfg: DictConfig, ctx: RunContext) -> dict[str, tuple[torch.Tensor, ...]]:
    sizes = {"train": cfg.train_systems, "val": cfg.val_systems, "test": cfg.test_systems}
    start = time.perf_counter()
    sim = simulate_charged(sum(sizes.values()), ctx.child_seed("nbody"), frames=tuple(cfg.frames))
    ctx.log.info("simulated %d systems in %.1f s", sum(sizes.values()), time.perf_counter() - start)
    tensors = [torch.as_tensor(sim[k], dtype=torch.float) for k in ("x_in", "v_in", "charges", "x_out")]
    splits, offset = {}, 0
    for name, size in sizes.items():
        splits[name] = tuple(t[offset:offset + size] for t in tensors)
        offset += size
    return splits


def mse(model, split: tuple[torch.Tensor, ...]) -> float:
    x, v, q, y = split
    return float(((model(x, v, q) - y) ** 2).mean())


def equivariance_error(model, split: tuple[torch.Tensor, ...], seed: int) -> float:
    """RMS over systems of ||f(Qx + t, Qv) - (Q f(x, v) + t)||, Q Haar on O(3), t ~ N(0, I)."""
    x, v, q, _ = split
    rng = np.random.default_rng(seed)
    rot = torch.as_tensor(random_rotations(len(x), rng, "o3"), dtype=torch.float)
    shift = torch.as_tensor(rng.standard_normal((len(x), 1, 3)), dtype=torch.float)
    moved = model(x @ rot.transpose(1, 2) + shift, v @ rot.transpose(1, 2), q)
    expected = model(x, v, q) @ rot.transpose(1, 2) + shift
    return float(((moved - expected) ** 2).sum((1, 2)).mean().sqrt())


def train_nbody(cfg: DictConfig, ctx: RunContext, splits: dict, method: str, seed: int) -> list[dict]:
    row = {"experiment": "nbody", "method": method, "seed": seed}
    if method == "const_vel":
        horizon = (cfg.frames[1] - cfg.frames[0]) * cfg.save_every * cfg.dt

        def model(x, v, q):
            return constant_velocity(x, v, horizon)

        row.update({"test/mse": mse(model, splits["test"]),
                    "equivariance_error": equivariance_error(model, splits["test"], seed)})
        return [row]
    torch.manual_seed(seed)
    backbone = GNN(cfg.width, cfg.layers)
    net = FrameAveraged(backbone, cfg.frame_group) if method == "fa_gnn" else backbone
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    x, v, q, y = splits["train"]

    def batches(epoch: int):
        rng = np.random.default_rng([seed, epoch])
        order = torch.as_tensor(rng.permutation(len(x)))
        for start in range(0, len(x), cfg.batch_size):
            idx = order[start:start + cfg.batch_size]
            bx, bv, by = x[idx], v[idx], y[idx]
            if method == "gnn_aug":  # the same random O(3) element on inputs and target, per system
                rot = torch.as_tensor(random_rotations(len(idx), rng, "o3"), dtype=torch.float).transpose(1, 2)
                bx, bv, by = bx @ rot, bv @ rot, by @ rot
            yield bx, bv, q[idx], by

    def loss_fn(net, batch) -> torch.Tensor:
        bx, bv, bq, by = batch
        return ((net(bx, bv, bq) - by) ** 2).mean()

    def evaluate(net) -> dict[str, float]:
        return {"val/mse": mse(net, splits["val"])}

    start = time.perf_counter()
    result = fit(ctx, f"nbody-{method}-{seed}", net, optimizer, batches, loss_fn, cfg.epochs, evaluate,
                 select="val/mse")
    net.eval()
    with torch.no_grad():
        row.update({"test/mse": mse(net, splits["test"]), "val/mse": result.best_metrics["val/mse"],
                    "best_epoch": result.best_epoch, "train_time_s": time.perf_counter() - start,
                    "equivariance_error": equivariance_error(net, splits["test"], seed)})
    ctx.log.info("n-body %s seed %d: %s", method, seed, {k: round(v, 6) for k, v in row.items() if "/" in k})
    curve = [{"experiment": "nbody_curve", "method": method, "seed": seed, "epoch": h["epoch"],
              "val/mse": h["val/mse"]} for h in result.history]
    return [row, *curve]


def train_graphs(cfg: DictConfig, ctx: RunContext, data: dict, method: str, seed: int) -> list[dict]:
    torch.manual_seed(seed)
    size, k = max(cfg.sizes), cfg.samples
    with_ids = method != "gin"
    net = SampledAverage(DenseGIN(1 + size, cfg.width, cfg.layers)) if with_ids else DenseGIN(1, cfg.width,
                                                                                                 cfg.layers)
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    kind = "frame" if method == "fa_gin_id" else "group"

    def inputs(graphs: list, rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
        adj, mask = pad(graphs, size)
        if not with_ids:
            return mask.unsqueeze(-1), adj, mask
        return id_features(graphs, size, k, kind, rng), adj, mask

    train_graphs_, train_y = data["train"]
    labels = torch.as_tensor(train_y, dtype=torch.float)

    def batches(epoch: int):
        rng = np.random.default_rng([seed, epoch])
        order = rng.permutation(len(train_graphs_))
        for start in range(0, len(order), cfg.batch_size):
            idx = order[start:start + cfg.batch_size]
            yield inputs([train_graphs_[i] for i in idx], rng), labels[idx]

    def loss_fn(net, batch) -> torch.Tensor:
        return torch.nn.functional.binary_cross_entropy_with_logits(net(*batch[0]), batch[1])

    start = time.perf_counter()
    fit(ctx, f"graphs-{method}-{seed}", net, optimizer, batches, loss_fn, cfg.epochs)
    net.eval()
    test_graphs, test_y = data["test"]
    rng = np.random.default_rng([seed, 10**6])
    with torch.no_grad():
        predictions = (net(*inputs(test_graphs, rng)) > 0).numpy().astype(int)
    row = {"experiment": "graphs", "method": method, "seed": seed, "samples": k if with_ids else 0,
           "test/acc": float((predictions == test_y).mean()), "majority_rate": data["majority_rate"],
           "size_only_rate": data["size_only_rate"], "train_time_s": time.perf_counter() - start}
    row["excess_over_size_only"] = row["test/acc"] - row["size_only_rate"]
    if method == "fa_gin_id":  # exact invariance where the frame is a single permutation
        row["perm_invariance_error"] = permutation_error(net, data["unique_frame"], size, k, rng)
    ctx.log.info("graphs %s seed %d: acc %.3f", method, seed, row["test/acc"])
    return [row]


def permutation_error(net, graphs: list, size: int, samples: int, rng: np.random.Generator) -> float:
    """max |f(P G) - f(G)| over graphs with |F(G)| = 1 and random node relabellings P."""
    permuted = []
    for a in graphs:
        p = rng.permutation(len(a))
        permuted.append(a[np.ix_(p, p)])
    with torch.no_grad():
        a = net(id_features(graphs, size, samples, "frame", rng), *pad(graphs, size))
        b = net(id_features(permuted, size, samples, "frame", rng), *pad(permuted, size))
    return float((a - b).abs().max())


def size_only_rate(graphs: list[np.ndarray], labels: np.ndarray) -> float:
    """Best test accuracy of any function of n alone: the ceiling of a 1-WL model on these graphs."""
    sizes = np.array([len(a) for a in graphs])
    best = sum(max((labels[sizes == n] == c).sum() for c in (0, 1)) for n in np.unique(sizes))
    return float(best / len(labels))


def run(cfg: DictConfig, ctx: RunContext) -> list[dict]:
    for name, chosen, known in (("nbody.methods", cfg.nbody.methods, NBODY_METHODS),
                                ("graphs.methods", cfg.graphs.methods, GRAPH_METHODS)):
        unknown = sorted(set(chosen) - set(known))
        if unknown:
            raise ConfigError(f"paper.{name} has unknown {unknown}; choose from {list(known)}")
    rows = []
    splits = nbody_splits(cfg.nbody, ctx)
    for method in cfg.nbody.methods:
        for seed in ctx.replicate_seeds():
            rows += ctx.unit(f"nbody-{method}-{seed}",
                             lambda m=method, s=seed: train_nbody(cfg.nbody, ctx, splits, m, s))
    g = cfg.graphs
    seed = ctx.child_seed("graphs")
    train = triangle_graphs(g.train, list(g.sizes), seed)
    test = triangle_graphs(g.test, list(g.sizes), seed + 1)
    data = {"train": train, "test": test, "majority_rate": float(max(test[1].mean(), 1 - test[1].mean())),
            "size_only_rate": size_only_rate(*test),
            "unique_frame": [a for a in test[0] if frame_size(a) == 1]}
    ctx.log.info("triangle graphs: %d train / %d test, %d test graphs with a one-element frame",
                 len(train[1]), len(test[1]), len(data["unique_frame"]))
    for method in g.methods:
        for seed in ctx.replicate_seeds():
            rows += ctx.unit(f"graphs-{method}-{seed}", lambda m=method, s=seed: train_graphs(g, ctx, data, m, s))
    return rows
