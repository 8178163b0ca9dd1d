"""FA experiments: (A) charged 5-body prediction with FA-GNN (per-layer latent frames, the official model; and the
input frame only) vs GNN, GNN + rotation augmentation and constant velocity; (B) triangle detection on
1-WL-equivalent 3-regular graphs with GIN, GA-GIN+ID and FA-GIN+ID;
(C, scale=paper) EXP-classify on the published EXP file.

Grid: ``nbody/<method>``, ``graphs/<method>`` and (when enabled) ``exp_classify/<method>``, one training per
unit and replicate; every method of a replicate sees the same simulated systems and the same graphs.
"""

from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from repro.core.context import RunContext
from repro.core.errors import ConfigError
from repro.core.geometry import random_rotations
from repro.core.train import FitResult, fit
from repro.core.units import Unit, grid
from repro.papers.fa.exp import load_exp
from repro.papers.fa.frames import frame_size
from repro.papers.fa.graphs import GRAPH_METHODS, GraphSet, graph_model, triangle_graphs
from repro.papers.fa.nbody import (
    GNN,
    FrameAveraged,
    LatentFrameAveraged,
    constant_velocity,
    load_release,
    simulate_charged,
)

NBODY_METHODS = ("fa_gnn", "fa_gnn_input", "gnn", "gnn_aug", "const_vel")
METHODS = NBODY_METHODS + GRAPH_METHODS


def units(cfg: DictConfig) -> list[Unit]:
    for name, chosen, known in (("nbody.methods", cfg.nbody.methods, NBODY_METHODS),
                                ("graphs.methods", cfg.graphs.methods, GRAPH_METHODS),
                                ("exp_classify.methods", cfg.exp_classify.methods, GRAPH_METHODS)):
        unknown = sorted(set(chosen) - set(known))
        if unknown:
            raise ConfigError(f"paper.{name} has unknown {unknown}; choose from {list(known)}")
    if cfg.nbody.source not in ("simulate", "release"):
        raise ConfigError(f"paper.nbody.source={cfg.nbody.source!r}; choose simulate or release")
    grid_units = grid("nbody", cfg.nbody.methods) + grid("graphs", cfg.graphs.methods)
    if cfg.exp_classify.enabled:  # the published EXP file: scale=paper (downloads)
        grid_units += grid("exp_classify", cfg.exp_classify.methods)
    return grid_units


def prepare_data(cfg: DictConfig, data_dir: Path, chosen: list[Unit]) -> None:
    """Fetch and verify the EXP file and the n-body release before any unit spends its time (scale=paper)."""
    if any(u.experiment == "exp_classify" for u in chosen):
        load_exp(data_dir, cfg.exp_classify.sha256)
    if cfg.nbody.source == "release" and any(u.experiment == "nbody" for u in chosen):
        release_systems(cfg.nbody, data_dir)


def release_systems(cfg: DictConfig, data_dir: Path) -> dict[str, dict[str, np.ndarray]]:
    sizes = {"train": cfg.train_systems, "val": cfg.val_systems, "test": cfg.test_systems}
    blobs = dict(cfg.release_git_blobs) if cfg.release_git_blobs is not None else None
    return load_release(Path(data_dir) / "fa" / "nbody", sizes, tuple(cfg.frames), blobs)


def run_unit(cfg: DictConfig, ctx: RunContext, u: Unit) -> list[dict]:
    if u.experiment == "nbody":
        splits = ctx.shared("nbody", lambda: nbody_splits(cfg.nbody, ctx))
        return train_nbody(cfg.nbody, ctx, splits, u.method)
    if u.experiment == "graphs":
        data = ctx.shared("graphs", lambda: graph_data(cfg.graphs, ctx))
        return train_graphs(cfg.graphs, ctx, data, u.method)
    exp_data = ctx.shared("exp", lambda: load_exp_logged(ctx, cfg.exp_classify.sha256))
    return train_exp(cfg.exp_classify, ctx, exp_data, u.method)


def nbody_splits(cfg: DictConfig, ctx: RunContext) -> dict[str, tuple[torch.Tensor, ...]]:
    """The replicate's systems (the same for every method), on the CPU (moved per batch): simulated with EGNN's
    generator, or (source=release) the official files, the same for every replicate."""
    keys = ("x_in", "v_in", "charges", "x_out")
    if cfg.source == "release":
        release = release_systems(cfg, ctx.data_dir)
        ctx.log.info("charged 5-body release: %s systems", {k: len(v["x_in"]) for k, v in release.items()})
        return {name: tuple(torch.as_tensor(arrays[k], dtype=torch.float) for k in keys)
                for name, arrays in release.items()}
    sizes = {"train": cfg.train_systems, "val": cfg.val_systems, "test": cfg.test_systems}
    sim = simulate_charged(sum(sizes.values()), ctx.data_seed("nbody"), frames=tuple(cfg.frames))
    ctx.log.info("simulated %d charged 5-body systems", sum(sizes.values()))
    tensors = [torch.as_tensor(sim[k], dtype=torch.float) for k in keys]
    splits, offset = {}, 0
    for name, size in sizes.items():
        splits[name] = tuple(t[offset:offset + size] for t in tensors)
        offset += size
    return splits


def on(device: str, tensors: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    return tuple(t.to(device) for t in tensors)


def mse(model, split: tuple[torch.Tensor, ...]) -> float:
    x, v, q, y = split
    return float(((model(x, v, q) - y) ** 2).mean())


def equivariance_error(model, split: tuple[torch.Tensor, ...], seed: int) -> float:
    """RMS over systems of ||f(Qx + t, Qv) - (Q f(x, v) + t)||, Q Haar on O(3), t ~ N(0, I)."""
    x, v, q, _ = split
    rng = np.random.default_rng(seed)
    rot = torch.as_tensor(random_rotations(len(x), rng, "o3"), dtype=torch.float, device=x.device)
    shift = torch.as_tensor(rng.standard_normal((len(x), 1, 3)), dtype=torch.float, device=x.device)
    moved = model(x @ rot.transpose(1, 2) + shift, v @ rot.transpose(1, 2), q)
    expected = model(x, v, q) @ rot.transpose(1, 2) + shift
    return float(((moved - expected) ** 2).sum((1, 2)).mean().sqrt())


def train_nbody(cfg: DictConfig, ctx: RunContext, cpu_splits: dict, method: str) -> list[dict]:
    splits = {name: on(ctx.device, split) for name, split in cpu_splits.items()}
    row = {}
    if method == "const_vel":
        horizon = (cfg.frames[1] - cfg.frames[0]) * cfg.save_every * cfg.dt

        def model(x, v, q):
            return constant_velocity(x, v, horizon)

        row.update({"test/mse": mse(model, splits["test"]),
                    "equivariance_error": equivariance_error(model, splits["test"], ctx.child_seed("equivariance"))})
        return [row]
    torch.manual_seed(ctx.child_seed("init"))
    backbone = GNN(cfg.width, cfg.layers)
    wrappers = {"fa_gnn": LatentFrameAveraged, "fa_gnn_input": FrameAveraged}
    net = (wrappers[method](backbone, cfg.frame_group) if method in wrappers else backbone).to(ctx.device)
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    x, v, q, y = splits["train"]

    def batches(epoch: int):
        rng = np.random.default_rng(ctx.child_seed("batches", epoch))
        order = torch.as_tensor(rng.permutation(len(x)), device=ctx.device)
        for start in range(0, len(x), cfg.batch_size):
            idx = order[start:start + cfg.batch_size]
            bx, bv, by = x[idx], v[idx], y[idx]
            if method == "gnn_aug":  # the same random O(3) element on inputs and target, per system
                rot = torch.as_tensor(random_rotations(len(idx), rng, "o3"), dtype=torch.float,
                                      device=ctx.device).transpose(1, 2)
                bx, bv, by = bx @ rot, bv @ rot, by @ rot
            yield bx, bv, q[idx], by

    def loss_fn(net, batch) -> torch.Tensor:
        bx, bv, bq, by = batch
        return ((net(bx, bv, bq) - by) ** 2).mean()

    def evaluate(net) -> dict[str, float]:
        return {"val/mse": mse(net, splits["val"])}

    result = fit(ctx, "", net, optimizer, batches, loss_fn, cfg.epochs, evaluate, select="val/mse")
    net.eval()
    with torch.no_grad():
        row.update({"test/mse": mse(net, splits["test"]), "val/mse": result.best_metrics["val/mse"],
                    "best_epoch": result.best_epoch,
                    "equivariance_error": equivariance_error(net, splits["test"], ctx.child_seed("equivariance"))})
    ctx.log.info("n-body %s: %s", method, {k: round(v, 6) for k, v in row.items() if "/" in k})
    curve = [{"experiment": "nbody_curve", "epoch": h["epoch"], "val/mse": h["val/mse"]} for h in result.history]
    return [row, *curve]


def graph_data(g: DictConfig, ctx: RunContext) -> dict:
    """The replicate's triangle graphs (the same for every method) and the rates they allow."""
    train = triangle_graphs(g.train, list(g.sizes), ctx.data_seed("graphs", "train"))
    val = triangle_graphs(g.val, list(g.sizes), ctx.data_seed("graphs", "val"))
    test = triangle_graphs(g.test, list(g.sizes), ctx.data_seed("graphs", "test"))
    data = {"train": train, "val": val, "test": test, "majority_rate": float(max(test[1].mean(), 1 - test[1].mean())),
            "size_only_rate": size_only_rate(*test),
            "unique_frame": [a for a in test[0] if frame_size(a) == 1]}
    ctx.log.info("triangle graphs: %d train / %d val / %d test, %d test graphs with a one-element frame",
                 len(train[1]), len(val[1]), len(test[1]), len(data["unique_frame"]))
    return data


def fit_graph_classifier(cfg: DictConfig, ctx: RunContext, method: str, train: GraphSet,
                         val: GraphSet | None = None) -> tuple[torch.nn.Module, FitResult]:
    """Adam on binary cross-entropy; the state kept is the epoch of lowest validation loss (training loss
    without a validation set). IDs are resampled in every forward pass, train and evaluation alike."""
    torch.manual_seed(ctx.child_seed("init"))
    net = graph_model(method, train.features.shape[-1], train.adj.shape[-1], cfg.width, cfg.layers).to(ctx.device)
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    labels = torch.as_tensor(train.labels, dtype=torch.float)

    def batches(epoch: int):
        rng = np.random.default_rng(ctx.child_seed("batches", epoch))
        order = rng.permutation(len(train))
        for start in range(0, len(order), cfg.batch_size):
            idx = order[start:start + cfg.batch_size]
            yield on(ctx.device, train.inputs(idx, cfg.samples, rng)), labels[idx].to(ctx.device)

    def loss_fn(net, batch) -> torch.Tensor:
        return torch.nn.functional.binary_cross_entropy_with_logits(net(*batch[0]), batch[1])

    def evaluate(net) -> dict[str, float]:
        loss, acc = loss_and_accuracy(net, val, cfg.samples, np.random.default_rng(ctx.child_seed("val_ids")),
                                      ctx.device)
        return {"val/loss": loss, "val/acc": acc}

    result = fit(ctx, "", net, optimizer, batches, loss_fn, cfg.epochs, evaluate if val is not None else None,
                 select="val/loss" if val is not None else None)
    net.eval()
    return net, result


def loss_and_accuracy(net, graphs: GraphSet, samples: int, rng: np.random.Generator,
                      device: str) -> tuple[float, float]:
    with torch.no_grad():
        logits = net(*on(device, graphs.inputs(np.arange(len(graphs)), samples, rng)))
    labels = torch.as_tensor(graphs.labels, dtype=torch.float, device=device)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
    return float(loss), float(((logits > 0).float() == labels).float().mean())


def train_graphs(cfg: DictConfig, ctx: RunContext, data: dict, method: str) -> list[dict]:
    size = max(cfg.sizes)
    train, val, test = (GraphSet(*data[split], size, method) for split in ("train", "val", "test"))
    net, result = fit_graph_classifier(cfg, ctx, method, train, val)
    rng = np.random.default_rng(ctx.child_seed("test_ids"))
    _, accuracy = loss_and_accuracy(net, test, cfg.samples, rng, ctx.device)
    row = {"samples": cfg.samples if method != "gin" else 0, "test/acc": accuracy,
           "val/acc": result.best_metrics["val/acc"], "best_epoch": result.best_epoch,
           "majority_rate": data["majority_rate"], "size_only_rate": data["size_only_rate"]}
    row["excess_over_size_only"] = row["test/acc"] - row["size_only_rate"]
    if method == "fa_gin_id":  # exact invariance where the frame is a single permutation (also a test)
        row["perm_invariance_error"] = permutation_error(net, data["unique_frame"], size, cfg.samples, rng,
                                                         ctx.device)
    ctx.log.info("graphs %s: acc %.3f", method, row["test/acc"])
    return [row]


def load_exp_logged(ctx: RunContext, pinned: str | None) -> tuple:
    exp_data, checksum = load_exp(ctx.data_dir, pinned)
    ctx.log.info("EXP: %d graphs, GRAPHSAT.pkl SHA-256 %s", len(exp_data[2]), checksum)
    return exp_data


def train_exp(cfg: DictConfig, ctx: RunContext, data: tuple, method: str) -> list[dict]:
    """EXP-classify as the official script: graphs 0-199 validation, 200-399 test, 400-1199 training; the test
    accuracy is read at the epoch of lowest validation loss."""
    adjacencies, node_labels, labels = data
    size = max(len(a) for a in adjacencies)
    splits = {name: GraphSet([adjacencies[i] for i in idx], labels[idx], size, method,
                             [node_labels[i] for i in idx])
              for name, idx in (("val", np.arange(0, 200)), ("test", np.arange(200, 400)),
                                ("train", np.arange(400, len(labels))))}
    net, result = fit_graph_classifier(cfg, ctx, method, splits["train"], splits["val"])
    _, accuracy = loss_and_accuracy(net, splits["test"], cfg.samples,
                                    np.random.default_rng(ctx.child_seed("test_ids")), ctx.device)
    ctx.log.info("EXP-classify %s: acc %.3f", method, accuracy)
    return [{"test/acc": accuracy, "val/acc": result.best_metrics["val/acc"], "best_epoch": result.best_epoch}]


def permutation_error(net, graphs: list, size: int, samples: int, rng: np.random.Generator, device: str) -> float:
    """max |f(P G) - f(G)| over graphs with |F(G)| = 1 and random node relabellings P."""
    if not graphs:
        return float("nan")
    permuted = []
    for a in graphs:
        p = rng.permutation(len(a))
        permuted.append(a[np.ix_(p, p)])
    outputs = []
    for adjacencies in (graphs, permuted):
        graph_set = GraphSet(adjacencies, np.zeros(len(adjacencies)), size, "fa_gin_id")
        with torch.no_grad():
            outputs.append(net(*on(device, graph_set.inputs(np.arange(len(adjacencies)), samples, rng))))
    return float((outputs[0] - outputs[1]).abs().max())


def size_only_rate(graphs: list[np.ndarray], labels: np.ndarray) -> float:
    """Best test accuracy of any function of n alone: the ceiling of a 1-WL model on these graphs."""
    sizes = np.array([len(a) for a in graphs])
    best = sum(max((labels[sizes == n] == c).sum() for c in (0, 1)) for n in np.unique(sizes))
    return float(best / len(labels))
