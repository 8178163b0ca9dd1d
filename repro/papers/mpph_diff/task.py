"""Experiments of the multiparameter-differentiability paper.

Grid:
- ``toy/<loss>``: 100 points in [0, 1]^2 moved by Adam to maximise the H1 mass in a box of the Rips x f
  bifiltration (``loss_2p``: the integral of the H1 Hilbert function over radius in [r_lo, r_hi], f <= f_max,
  read off its signed measure) or of the Rips filtration alone (``loss_1p``: the integral of the H1 Betti curve
  over the same radii). Every replicate starts from the same cloud for both losses.
- ``graphs/<descriptor>``: filtration learning on grid graphs: an MLP gives node values, a descriptor of the
  lower-star filtration (Euler or H0 Hilbert signed measure of two values, or the H0 barcode of one) is
  convolved on a fixed grid and classified linearly; trained end to end.
"""

import gudhi
import numpy as np
import torch
from omegaconf import DictConfig
from sklearn.model_selection import train_test_split
from torch import nn

from repro.core.context import RunContext
from repro.core.errors import ConfigError
from repro.core.train import fit, fit_steps
from repro.core.units import Unit, grid
from repro.papers.mpph_diff.data import grid_edges, grid_graphs, landscape, tu_graphs
from repro.papers.mpph_diff.descriptors import rips_h1_bars, signed_measure
from repro.papers.mpph_diff.models import TopologicalClassifier

TOY_LOSSES = ("loss_2p", "loss_1p")
DESCRIPTORS = ("euler_2p", "hilbert_2p", "barcode_1p")
METHODS = TOY_LOSSES + DESCRIPTORS


def units(cfg: DictConfig) -> list[Unit]:
    if cfg.data.dataset == "grid":
        datasets = ["graphs"]
    elif cfg.data.dataset == "tu":
        datasets = list(cfg.data.tu.names)
    else:
        raise ConfigError(f"paper.data.dataset={cfg.data.dataset!r} is unknown; choose grid or tu")
    return [*grid("toy", cfg.toy.methods), *(u for name in datasets for u in grid(name, cfg.methods))]


def run_unit(cfg: DictConfig, ctx: RunContext, u: Unit) -> list[dict]:
    if u.experiment == "toy":
        return optimise_cloud(cfg.toy, ctx, u.method)
    return learn_filtration(cfg, ctx, u.experiment, u.method)


# ---------------------------------------------------------------- toy: point-cloud optimisation


def rips_landscape_graph(points: torch.Tensor, t: DictConfig) -> tuple[list[np.ndarray], torch.Tensor]:
    """The graph (vertices, edges) of the Rips (radius <= max_radius) x lower-star f bifiltration: vertex
    (0, f(x)), edge (|x_u - x_v|, max f); its flag complex is the bifiltration (a triangle enters at the
    coordinate-wise max of its edges: longest edge, max f). Combinatorics from the current cloud, values
    differentiable in it."""
    tree = gudhi.RipsComplex(points=points.detach().cpu().double().numpy(),
                             max_edge_length=t.max_radius).create_simplex_tree(max_dimension=1)
    edges = np.array([sorted(s) for s, _ in tree.get_skeleton(1) if len(s) == 2], dtype=np.int64).reshape(-1, 2)
    f = landscape(points, t.width)
    length = (points[edges[:, 0]] - points[edges[:, 1]]).norm(dim=1)
    values = torch.cat([torch.stack([torch.zeros_like(f), f], dim=1),
                        torch.stack([length, torch.maximum(f[edges[:, 0]], f[edges[:, 1]])], dim=1)])
    return [np.arange(len(points))[:, None], edges], values


def h1_mass_2p(points: torch.Tensor, t: DictConfig) -> torch.Tensor:
    """integral of the H1 Hilbert function over [r_lo, r_hi] x (-inf, f_max] = sum over the signed measure's
    Diracs (p, w) of w * area of the box's part above-right of p."""
    simplices, values = rips_landscape_graph(points, t)
    located, weights = signed_measure(simplices, values, degree=1, flag_dimension=2)
    r_lo, r_hi = t.radius_box
    width = (r_hi - torch.clamp(located[:, 0], min=r_lo)).clamp(min=0)
    height = (t.f_max - located[:, 1]).clamp(min=0)
    return (weights * width * height).sum()


def h1_mass_1p(points: torch.Tensor, t: DictConfig) -> torch.Tensor:
    """integral of the H1 Betti curve of the Rips filtration over [r_lo, r_hi] = total bar length inside it."""
    bars, _ = rips_h1_bars(points, t.max_radius)
    r_lo, r_hi = t.radius_box
    return (torch.clamp(bars[:, 1], max=r_hi) - torch.clamp(bars[:, 0], min=r_lo)).clamp(min=0).sum()


def loop_landscape_value(points: torch.Tensor, t: DictConfig) -> tuple[float, float]:
    """Where the cloud's loops are: the mean of f at the two vertices of each H1 bar's birth edge, weighted by
    the bar's length inside [r_lo, r_hi]; and that total length."""
    with torch.no_grad():
        bars, birth_edges = rips_h1_bars(points, t.max_radius)
        r_lo, r_hi = t.radius_box
        inside = (torch.clamp(bars[:, 1], max=r_hi) - torch.clamp(bars[:, 0], min=r_lo)).clamp(min=0)
        f = landscape(points, t.width)
        at_loop = f[torch.as_tensor(birth_edges, dtype=torch.long, device=points.device)].mean(1)
        total = float(inside.sum())
        return (float((inside * at_loop).sum()) / total if total > 0 else float("nan")), total


class Cloud(nn.Module):
    def __init__(self, points: torch.Tensor) -> None:
        super().__init__()
        self.points = nn.Parameter(points)


def optimise_cloud(t: DictConfig, ctx: RunContext, method: str) -> list[dict]:
    start = torch.rand(t.points, 2, dtype=torch.float64,
                       generator=torch.Generator().manual_seed(ctx.data_seed("cloud"))).to(ctx.device)
    cloud = Cloud(start.clone())
    objective = h1_mass_2p if method == "loss_2p" else h1_mass_1p

    def loss_fn(model: Cloud, _: None) -> torch.Tensor:
        with torch.no_grad():  # projected gradient: the points stay in the square
            model.points.clamp_(0.0, 1.0)
        return -objective(model.points, t)

    def evaluate(model: Cloud) -> dict[str, float]:
        with torch.no_grad():
            model.points.clamp_(0.0, 1.0)
        return {"loss": float(-objective(model.points.detach(), t))}

    optimizer = torch.optim.Adam(cloud.parameters(), lr=t.lr)
    result = fit_steps(ctx, "", cloud, optimizer, lambda step: None, loss_fn, t.steps, t.every, evaluate,
                       select="loss")
    final = cloud.points.detach().clamp(0.0, 1.0)
    f_before, mass_before = loop_landscape_value(start, t)
    f_after, mass_after = loop_landscape_value(final, t)
    row = {"loss_start": -float(objective(start, t)), "loss_end": result.best_metrics["loss"],
           "h1_mass_2p_end": float(h1_mass_2p(final, t)), "h1_mass_1p_end": float(h1_mass_1p(final, t)),
           "loop_f_start": f_before, "loop_f_end": f_after, "loop_length_start": mass_before,
           "loop_length_end": mass_after, "moved": float((final - start).norm(dim=1).mean()),
           "f_width": t.width}
    ctx.log.info("%s: loss %.4g -> %.4g, loop f %.3f -> %.3f", method, row["loss_start"], row["loss_end"],
                 f_before, f_after)
    # the optimised cloud itself, for the figure (its own experiment name keeps it out of the toy table)
    cloud_rows = [{"experiment": "toy_cloud", "point": i, "x": float(x), "y": float(y)}
                  for i, (x, y) in enumerate(final.tolist())]
    return [row, *cloud_rows]


# ---------------------------------------------------------------- graphs: filtration learning


Graphs = list[tuple[torch.Tensor, np.ndarray]]


def load_graphs(cfg: DictConfig, ctx: RunContext, dataset: str) -> dict[str, tuple[Graphs, torch.Tensor]]:
    """train/val/test: (node features on the device, edges) per graph, and labels. Grid graphs are generated
    per split; a TU data set is split at random, stratified by label (it has no official split)."""
    def as_split(features: list[np.ndarray], edges: list[np.ndarray], labels: np.ndarray
                 ) -> tuple[Graphs, torch.Tensor]:
        graphs = [(torch.tensor(x, dtype=torch.float64, device=ctx.device), e) for x, e in zip(features, edges)]
        return graphs, torch.tensor(labels, dtype=torch.long, device=ctx.device)

    if cfg.data.dataset == "grid":
        g = cfg.graphs
        edges = grid_edges(g.side)
        splits = {}
        for split in ("train", "val", "test"):
            x, y = grid_graphs(g[split], g.side, g.bumps, g.width, g.noise, g.threshold,
                               np.random.default_rng(ctx.data_seed("graphs", split)))
            splits[split] = as_split(list(x), [edges] * len(y), y)
        return splits
    graphs, labels = tu_graphs(ctx.data_dir / cfg.data.tu.root, dataset)
    rest, test = train_test_split(np.arange(len(labels)), test_size=cfg.data.tu.test_fraction, stratify=labels,
                                  random_state=ctx.data_seed("split") % 2 ** 31)
    train, val = train_test_split(rest, test_size=cfg.data.tu.val_fraction, stratify=labels[rest],
                                  random_state=ctx.data_seed("split", "val") % 2 ** 31)
    return {name: as_split([graphs[i][0] for i in idx], [graphs[i][1] for i in idx], labels[idx])
            for name, idx in (("train", train), ("val", val), ("test", test))}


def learn_filtration(cfg: DictConfig, ctx: RunContext, dataset: str, method: str) -> list[dict]:
    splits = ctx.shared(f"graphs-{dataset}", lambda: load_graphs(cfg, ctx, dataset))
    m, t = cfg.model, cfg.train
    x_train, y_train = splits["train"]
    num_classes = int(max(int(y.max()) for _, y in splits.values())) + 1
    model = TopologicalClassifier(method, x_train[0][0].shape[1], num_classes, m.hidden, m.resolution,
                                  m.sigma).double().to(ctx.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=t.lr)
    # Minibatch gradients of a piecewise-smooth loss: the step decays as a cosine to 0 over all steps (stepped
    # once per batch), the decaying step that stochastic (sub)gradient descent needs to settle (the multipers
    # notebook instead takes 100 full-batch steps at a constant 1e-2, beyond the cpu budget here)
    steps = t.epochs * -(-len(y_train) // t.batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)

    def batches(epoch: int) -> list[torch.Tensor]:
        order = torch.randperm(len(y_train), generator=torch.Generator().manual_seed(ctx.child_seed("batches",
                                                                                                     epoch)))
        return list(order.split(t.batch_size))

    def loss_fn(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
        batch = batch.to(ctx.device)
        return nn.functional.cross_entropy(model([x_train[i] for i in batch.tolist()]), y_train[batch])

    def scores(model: nn.Module, split: str) -> tuple[float, float]:
        x, y = splits[split]
        with torch.no_grad():
            logits = model(x)
        return float(nn.functional.cross_entropy(logits, y)), float((logits.argmax(1) == y).double().mean())

    def evaluate(model: nn.Module) -> dict[str, float]:
        loss, accuracy = scores(model, "val")
        return {"val/loss": loss, "val/accuracy": accuracy}

    with ctx.stopwatch() as clock:
        result = fit(ctx, "", model, optimizer, batches, loss_fn, t.epochs, evaluate, select="val/loss",
                     scheduler=scheduler)
    _, accuracy = scores(model, "test")
    ctx.log.info("%s: test accuracy %.3f (best epoch %d)", method, accuracy, result.best_epoch)
    return [{"dataset": dataset, "test/accuracy": accuracy, "val/accuracy": result.best_metrics["val/accuracy"],
             "best_epoch": result.best_epoch, "time_per_epoch_s": clock.seconds / t.epochs,
             # this process's CPU time: the cost of a descriptor, unlike wall time not inflated by other jobs
             # on the machine (units run two at a time on the shared cores)
             "cpu_time_per_epoch_s": clock.cpu_seconds / t.epochs}]
