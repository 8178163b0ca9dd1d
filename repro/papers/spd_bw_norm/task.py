"""SPDNet with no normalisation, SPDNetBN (affine-invariant) and Bures-Wasserstein batch normalisation
(BW-BN, GBWBN, GBWBN with a matrix power) on ill-conditioned SPD classes across condition numbers, on
region covariances of handwritten digits, and (scale=paper) on MAMEM-SSVEP-II EEG trials.

Grid: ``<experiment>/<method>/<setting>`` from ``paper.grid`` (synthetic: kappa = log10 condition number;
mamem: subject); every method of a replicate trains on the same data.
"""

import numpy as np
import torch
from omegaconf import DictConfig
from sklearn.model_selection import train_test_split

from repro.core.context import RunContext
from repro.core.errors import ConfigError
from repro.core.train import fit
from repro.core.units import Unit, grid
from repro.papers.spd_bw_norm.data import (
    MAMEM_CHANNELS,
    MAMEM_CLASSES,
    digits_covariances,
    ill_conditioned_classes,
    load_mamem_subject,
)
from repro.papers.spd_bw_norm.models import METHODS, MamemNet, SPDNet, StiefelAdam

EXPERIMENTS = ("synthetic", "digits", "mamem")


def units(cfg: DictConfig) -> list[Unit]:
    out = []
    for block in cfg.grid:
        if block.experiment not in EXPERIMENTS:
            raise ConfigError(f"paper.grid experiment {block.experiment!r} is unknown; choose from {EXPERIMENTS}")
        methods = [m for m in block.methods if m in cfg.methods]
        settings = {k: list(v) for k, v in block.items() if k not in ("experiment", "methods")}
        out += grid(block.experiment, methods, **settings)
    return out


Splits = dict[str, tuple[np.ndarray, np.ndarray]]


def synthetic_splits(cfg: DictConfig, ctx: RunContext, kappa: float) -> Splits:
    d = cfg.data.synthetic
    splits = {}
    for name in ("train", "val", "test"):
        # The same class templates for every split (one template seed), fresh samples per split.
        splits[name] = ill_conditioned_classes(
            d.n, d.classes, kappa, d[name] // d.classes, d.template_std, d.rotation_std, d.jitter_std, d.draws,
            d.ridge, np.random.default_rng(ctx.data_seed("templates", kappa)),
            np.random.default_rng(ctx.data_seed("samples", kappa, name)))
    return splits


def digits_splits(cfg: DictConfig, ctx: RunContext) -> Splits:
    d = cfg.data.digits
    x, y = digits_covariances(d.ridge)
    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=d.test_fraction, stratify=y,
                                                      random_state=ctx.data_seed("split") % 2**32)
    x_train, x_val, y_train, y_val = train_test_split(x_rest, y_rest, test_size=d.val_fraction, stratify=y_rest,
                                                      random_state=ctx.data_seed("val") % 2**32)
    return {"train": (x_train, y_train), "val": (x_val, y_val), "test": (x_test, y_test)}


def mamem_splits(cfg: DictConfig, ctx: RunContext, subject: int) -> Splits:
    pins = cfg.data.mamem.get("sha256") or {}
    trials, labels = load_mamem_subject(ctx.data_dir, subject, pins.get(subject))
    bounds = np.cumsum([0, *cfg.data.mamem.split])
    if len(trials) < bounds[-1]:
        raise ConfigError(f"MAMEM subject {subject} has {len(trials)} trials, fewer than the split "
                          f"{list(cfg.data.mamem.split)} needs")
    # The official order: the first 300 trials train, the next 100 validate, the next 100 test.
    return {name: (trials[a:b], labels[a:b]) for name, a, b in zip(("train", "val", "test"), bounds[:-1], bounds[1:])}


def run_unit(cfg: DictConfig, ctx: RunContext, u: Unit) -> list[dict]:
    setting = u.settings
    if u.experiment == "synthetic":
        splits = ctx.shared(f"synthetic-{setting['kappa']}", lambda: synthetic_splits(cfg, ctx, setting["kappa"]))
    elif u.experiment == "digits":
        splits = ctx.shared("digits", lambda: digits_splits(cfg, ctx))
    else:
        splits = mamem_splits(cfg, ctx, int(setting["subject"]))
    return [train_one(cfg, ctx, splits, u.experiment, u.method)]


def build_model(cfg: DictConfig, ctx: RunContext, experiment: str, method: str, classes: int) -> torch.nn.Module:
    m = cfg.model
    generator = torch.Generator().manual_seed(ctx.child_seed("init"))
    options = (method, m.rectify_threshold, m.momentum, m.mean_iterations, m.eps, generator)
    if experiment == "mamem":
        return MamemNet(MAMEM_CHANNELS, classes, *options)
    return SPDNet(list(m.dims[experiment]), classes, *options)


def train_one(cfg: DictConfig, ctx: RunContext, splits: Splits, experiment: str, method: str) -> dict:
    device = ctx.device
    data = {name: (torch.tensor(x, dtype=torch.float64, device=device), torch.tensor(y, device=device))
            for name, (x, y) in splits.items()}
    classes = MAMEM_CLASSES if experiment == "mamem" else int(splits["train"][1].max()) + 1
    model = build_model(cfg, ctx, experiment, method, classes).to(device)
    t = cfg.train
    optimizer = StiefelAdam(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    x_train, y_train = data["train"]

    def batches(epoch: int):
        order = torch.randperm(len(y_train), generator=torch.Generator().manual_seed(ctx.child_seed("batches", epoch)))
        order = order.to(device)
        # Whole batches only: batch statistics of a one- or two-matrix remainder are meaningless.
        for start in range(0, len(order) - t.batch_size + 1, t.batch_size):
            index = order[start:start + t.batch_size]
            yield x_train[index], y_train[index]

    def loss_fn(model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.cross_entropy(model(x), y)

    def scores(net: torch.nn.Module, split: str) -> dict[str, float]:
        x, y = data[split]
        logits = net(x)
        return {f"{split}/loss": float(torch.nn.functional.cross_entropy(logits, y)),
                f"{split}/acc": float((logits.argmax(1) == y).double().mean())}

    result = fit(ctx, "", model, optimizer, batches, loss_fn, t.epochs, lambda net: scores(net, "val"),
                 select="val/loss", patience=t.patience)
    model.eval()
    with torch.no_grad():
        test = scores(model, "test")
    kind, learn_metric, power = METHODS[method]
    row = {"best_epoch": result.best_epoch, "val/acc": result.best_metrics["val/acc"],
           "val/loss": result.best_metrics["val/loss"], **test, "power": power}
    ctx.log.info("%s %s: val acc %.3f, test acc %.3f", experiment, method, row["val/acc"], row["test/acc"])
    return row
