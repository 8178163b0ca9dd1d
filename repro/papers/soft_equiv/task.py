"""The mixed-symmetry experiment on modified inertia: every method trained on the same data per replicate.

Grid: ``inertia/<method>`` for each eps (the size of the O(3)-breaking term), plus ``target`` (the
equivariance errors of the true function on the same inputs, the reference for the discovered ordering).
Rows (column ``record``): ``fit`` (test, val and out-of-distribution MSE), ``group`` (the equivariance
error of the trained model under each candidate group; for PER also its final R_i and lambda_i) and, for
PER, ``curve`` (R_i and lambda_i along training).
"""

import math

import numpy as np
import torch
from omegaconf import DictConfig

from repro.core.context import RunContext
from repro.core.train import fit
from repro.core.units import Unit, grid, unit
from repro.papers.soft_equiv.data import REP_IN, REP_OUT, modified_inertia, splits
from repro.papers.soft_equiv.models import MLP, PER, TensorNet, squared_weights
from repro.papers.soft_equiv.reps import GROUPS, TensorRep, sample_elements, uniform_rep

METHODS = ("mlp", "emlp_o3", "emlp_o2xy", "rpp", "per")
CANDIDATES = ("o3", "o2xy", "o2yz", "o2xz")  # the reference's candidate groups, in its order


def units(cfg: DictConfig) -> list[Unit]:
    return [*grid("inertia", cfg.methods, eps=list(cfg.data.eps)),
            *[unit("target", eps=eps) for eps in cfg.data.eps]]


def run_unit(cfg: DictConfig, ctx: RunContext, u: Unit) -> list[dict]:
    eps = u.settings["eps"]
    data = ctx.shared(f"inertia-{eps}", lambda: splits(
        {name: cfg.data[name] for name in ("train", "val", "test", "ood")}, eps, cfg.data.ood_shift,
        {name: ctx.data_seed("inertia", name) for name in ("train", "val", "test", "ood")}, ctx.device))
    probe = sample_probe(cfg, ctx)
    if u.experiment == "target":
        def truth(x: torch.Tensor) -> torch.Tensor:
            return torch.tensor(modified_inertia(x.cpu().numpy(), eps), dtype=torch.float32, device=ctx.device)
        return [{"record": "group", "group": g, "equiv_error": equivariance_error(truth, probe[g])}
                for g in CANDIDATES]
    return train_one(cfg, ctx, data, probe, u.method)


def build_model(cfg: DictConfig, method: str, device: str) -> torch.nn.Module:
    # Explicit counts of scalars, vectors, rank-2 and rank-3 tensors, or else EMLP's uniform_rep(channels).
    counts = cfg.model.counts
    hidden = TensorRep(tuple(counts)) if counts else uniform_rep(cfg.model.channels)
    layers = cfg.model.layers
    if method == "mlp":
        return MLP(REP_IN.size, hidden.size, REP_OUT.size, layers)
    if method == "per":
        return PER(REP_IN, hidden, REP_OUT, layers, list(CANDIDATES), list(cfg.per.initial_weights), device)
    if method == "rpp":
        return TensorNet(REP_IN, hidden, REP_OUT, layers, "residual", ["o3"], True, device)
    return TensorNet(REP_IN, hidden, REP_OUT, layers, "projected", [method.removeprefix("emlp_")], False, device)


def penalty(cfg: DictConfig, method: str, model: torch.nn.Module) -> torch.Tensor | float:
    """The reference's regularisation per method (train_softemlp.py's loss)."""
    t = cfg.train
    if method == "per":
        weights = sum(0.5 * ((lin.w ** 2).sum() + (lin.b ** 2).sum()) for lin in model.linears())
        return ((model.lambdas * model.regularisers()).sum() + t.weight_decay * weights
                + t.gated_wd * squared_weights(model, ("w_gated",)))
    if method == "rpp":
        return (t.basic_wd * squared_weights(model, ("w_basic",)) + t.equiv_wd * squared_weights(model, ("w",))
                + t.gated_wd * squared_weights(model, ("w_gated",)))
    return 0.0


def mse(model: torch.nn.Module, split: tuple[torch.Tensor, torch.Tensor]) -> float:
    x, y = split
    return float(((model(x) - y) ** 2).mean())


def train_one(cfg: DictConfig, ctx: RunContext, data: dict, probe: dict, method: str) -> list[dict]:
    t = cfg.train
    model = build_model(cfg, method, ctx.device).to(ctx.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=t.lr)
    x_train, y_train = data["train"]
    steps_per_epoch = math.ceil(len(x_train) / t.batch_size)
    total = t.epochs * steps_per_epoch
    # The reference's cosine decay of the learning rate to min_lr over the whole training.
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: (
        t.min_lr + (t.lr - t.min_lr) * 0.5 * (1 + math.cos(math.pi * min(step, total) / total))) / t.lr)
    adjust_epoch = round(t.adjust_fraction * t.epochs)

    def batches(epoch: int):
        # PER's automatic tuning happens once, at the start of epoch `adjust_epoch`, from the R_i of the
        # weights reached after the warm-up (lambda_i is a model buffer, so a resumed run keeps it).
        if method == "per" and epoch == adjust_epoch:
            model.retune(t.adjust_power)
        order = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(ctx.child_seed("batches", epoch)))
        order = order.to(ctx.device)
        return [(x_train[i], y_train[i]) for i in order.split(t.batch_size)]

    def loss_fn(model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        return ((model(x) - y) ** 2).mean() + penalty(cfg, method, model)

    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        metrics = {"val/mse": mse(model, data["val"])}
        if method == "per":
            metrics.update({f"R/{g}": float(r) for g, r in zip(CANDIDATES, model.regularisers())})
            metrics.update({f"lambda/{g}": float(w) for g, w in zip(CANDIDATES, model.lambdas)})
        return metrics

    result = fit(ctx, "", model, optimizer, batches, loss_fn, t.epochs, evaluate, select="val/mse",
                 scheduler=schedule)
    model.eval()
    with torch.no_grad():
        rows = [{"record": "fit", "best_epoch": result.best_epoch, "val/mse": result.best_metrics["val/mse"],
                 "test/mse": mse(model, data["test"]), "ood/mse": mse(model, data["ood"]),
                 "params": sum(p.numel() for p in model.parameters())}]
        for g in CANDIDATES:
            row = {"record": "group", "group": g, "equiv_error": equivariance_error(model, probe[g])}
            if method == "per":
                row.update({"regulariser": result.best_metrics[f"R/{g}"], "lambda": result.best_metrics[f"lambda/{g}"]})
            rows.append(row)
    if method == "per":
        every = max(1, len(result.history) // cfg.per.curve_points)
        rows += [{"record": "curve", "epoch": h["epoch"], "group": g, "regulariser": h[f"R/{g}"],
                  "lambda": h[f"lambda/{g}"]} for h in result.history[::every] for g in CANDIDATES]
    ctx.log.info("%s: test %.4g, ood %.4g, equivariance errors %s", method, rows[0]["test/mse"],
                 rows[0]["ood/mse"], {r["group"]: round(r["equiv_error"], 4) for r in rows[1:5]})
    return rows


def sample_probe(cfg: DictConfig, ctx: RunContext) -> dict[str, tuple]:
    """Inputs and group elements (the same for every method of a replicate) to measure equivariance. The
    inputs are standard Gaussian vectors, as the reference draws them (train_softemlp_checkpoint.py's
    reporting: rng.standard_normal((error_test_samples, dim))), not data points."""
    e = cfg.equivariance
    rng = np.random.default_rng(ctx.data_seed("equivariance"))
    inputs = torch.tensor(rng.standard_normal((e.inputs, REP_IN.size)), dtype=torch.float32, device=ctx.device)
    probe = {}
    for g in CANDIDATES:
        elements = sample_elements(GROUPS[g], e.samples, rng)
        rho_in = torch.tensor(np.stack([REP_IN.rho(h) for h in elements]), dtype=torch.float32, device=ctx.device)
        rho_out = torch.tensor(np.stack([REP_OUT.rho(h) for h in elements]), dtype=torch.float32, device=ctx.device)
        probe[g] = (inputs, rho_in, rho_out)
    return probe


def equivariance_error(f, probe: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> float:
    """The reference's relative error (models/objax_per.py, equiv_error), per input x and group sample g:
    ||f(rho_in(g) x) - rho_out(g) f(x)|| / (||f(rho_in(g) x)|| + ||rho_out(g) f(x)||), averaged over both."""
    x, rho_in, rho_out = probe
    with torch.no_grad():
        fx = f(x)
        errors = []
        for a, b in zip(rho_in, rho_out):
            moved, expected = f(x @ a.T), fx @ b.T
            errors.append((moved - expected).norm(dim=1) / (moved.norm(dim=1) + expected.norm(dim=1)))
    return float(torch.cat(errors).mean())
