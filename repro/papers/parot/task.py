"""PaRot experiment: rotated classification under the z/SO3 and SO3/SO3 protocols; PaRot-lite against
PointNet-lite, DGCNN-lite and PointNet on PCA-canonicalised clouds (plus PaRot ablations); at scale=paper also
ShapeNetPart part segmentation (instance mIoU) under the same protocols.

Grid: ``<dataset>/<method>``, one unit per method and replicate; a unit trains its method under every protocol
that lists it in ``paper.runs`` (so that the z/SO3-to-SO3/SO3 gap of one replicate is computed within the unit),
and its rows carry the ``protocol`` column. Every method of a replicate sees the same clouds and test rotations.
"""

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from sklearn.metrics import balanced_accuracy_score

from repro.core.context import RunContext
from repro.core.errors import ConfigError
from repro.core.geometry import PointNet, pca_canonicalise, random_rotations, rotate, shape_dataset
from repro.core.train import fit, plateaued
from repro.core.units import Unit, unit
from repro.papers.parot.data import (
    PART_START,
    SHAPENET_PARTS,
    load_modelnet40_h5,
    load_scanobjectnn,
    load_shapenetpart,
    part_miou,
)
from repro.papers.parot.models import DGCNN, PaRotLite, PaRotSeg

METHODS = ("parot", "parot_no_pose", "parot_no_siamese", "pointnet", "dgcnn", "pca_pointnet")
PROTOCOLS = {"z/SO3": "z", "SO3/SO3": "so3"}
DATASETS = ("shapes", "modelnet40", "scanobjectnn", "shapenetpart")


def units(cfg: DictConfig) -> list[Unit]:
    unknown = sorted(set(cfg.runs) - set(PROTOCOLS))
    if unknown:
        raise ConfigError(f"unknown protocol(s) {unknown} in paper.runs; choose from {list(PROTOCOLS)}")
    if cfg.data.dataset not in DATASETS:
        raise ConfigError(f"paper.data.dataset={cfg.data.dataset!r}; choose one of {DATASETS}")
    if cfg.data.dataset == "shapenetpart":  # part segmentation trains PaRot only
        return [unit("shapenetpart", "parot")]
    methods = list(dict.fromkeys(m for ms in cfg.runs.values() for m in ms))  # first appearance, no repeats
    return [unit(str(cfg.data.dataset), m) for m in methods]


def run_unit(cfg: DictConfig, ctx: RunContext, u: Unit) -> list[dict]:
    protocols = [p for p, methods in cfg.runs.items() if u.method in methods]
    if u.experiment == "shapenetpart":
        data = ctx.shared("shapenetpart", lambda: load_segmentation(cfg, ctx))
        return [train_segmentation(cfg, ctx, data, p) for p in protocols]
    data = ctx.shared("data", lambda: load_data(cfg, ctx))
    rows = [train_one(cfg, ctx, data, p, u.method) for p in protocols]
    by_protocol = {r["protocol"]: r for r in rows}
    if {"z/SO3", "SO3/SO3"} <= set(by_protocol):  # the paper's consistency claim: z/SO3 close to SO3/SO3
        by_protocol["z/SO3"]["gap_to_so3"] = abs(by_protocol["z/SO3"]["test/acc"] - by_protocol["SO3/SO3"]["test/acc"])
    return rows


def build(method: str, n_classes: int, m: DictConfig) -> torch.nn.Module:
    if method.startswith("parot"):
        return PaRotLite(n_classes, m.local_patches, m.local_k, m.global_points, m.neighbours, m.width, m.embedding,
                         tuple(m.head), siamese=method != "parot_no_siamese",
                         pose_restoration=method != "parot_no_pose")
    if method == "dgcnn":
        return DGCNN(n_classes, m.dgcnn_k, m.width, m.embedding)
    return PointNet(n_classes, 3, tuple(m.pointnet_widths), (128,))


def load_data(cfg: DictConfig, ctx: RunContext) -> dict:
    """The replicate's clouds (shared by every method), SO(3)-rotated test clouds and the probe sets."""
    d = cfg.data
    if d.dataset == "shapes":
        train = shape_dataset(d.train_per_class, d.points, ctx.data_seed("shapes", "train"))
        val = shape_dataset(d.val_per_class, d.points, ctx.data_seed("shapes", "val"))
        test = shape_dataset(d.test_per_class, d.points, ctx.data_seed("shapes", "test"))
    else:
        if d.dataset == "modelnet40":  # the HDF5 release the official code reads (2048 points per cloud)
            train = load_modelnet40_h5(ctx.data_dir, d.points, True)
            test = load_modelnet40_h5(ctx.data_dir, d.points, False)
        else:
            train = load_scanobjectnn(ctx.data_dir, d.points, True)
            test = load_scanobjectnn(ctx.data_dir, d.points, False)
        train, val = hold_out(*train, d.val_fraction, ctx.data_seed("val"))
    rng = np.random.default_rng(ctx.data_seed("test_rotations"))
    val_x, val_y = val
    test_x, test_y = test
    sub = np.arange(0, len(test_x), max(1, len(test_x) // d.consistency_clouds))
    return {"train": train, "val_y": val_y,
            "val": {kind: rotate(val_x, random_rotations(len(val_x), rng, kind)) for kind in PROTOCOLS.values()},
            "test_so3": rotate(test_x, random_rotations(len(test_x), rng, "so3")), "test_y": test_y,
            "consistency": np.stack([rotate(test_x[sub], random_rotations(len(sub), rng, "so3"))
                                     for _ in range(d.consistency_rotations)]), "consistency_y": test_y[sub],
            "equivariance": (test_x[sub], random_rotations(len(sub), rng, "so3")),
            "sweep": {a: rotate(test_x[sub], np.broadcast_to(_about_x(a), (len(sub), 3, 3))) for a in d.sweep_degrees},
            "val_rotations": random_rotations(len(val_x), rng, "so3")}


def hold_out(x: np.ndarray, y: np.ndarray, fraction: float, seed: int) -> tuple[tuple, tuple]:
    """A random validation subset of the training clouds (the real data sets have no validation split)."""
    order = np.random.default_rng(seed).permutation(len(x))
    cut = int(round(len(x) * fraction))
    return (x[order[cut:]], y[order[cut:]]), (x[order[:cut]], y[order[:cut]])


def _about_x(degrees: float) -> np.ndarray:
    a = np.deg2rad(degrees)
    return np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])


def predict(model: torch.nn.Module, clouds: np.ndarray, method: str, device: str, batch: int = 64) -> np.ndarray:
    if method == "pca_pointnet":
        clouds = pca_canonicalise(clouds)
    with torch.no_grad():
        return np.concatenate([model(torch.as_tensor(clouds[i:i + batch], device=device)).argmax(1).cpu().numpy()
                               for i in range(0, len(clouds), batch)])


def train_one(cfg: DictConfig, ctx: RunContext, data: dict, protocol: str, method: str) -> dict:
    """One training of ``method`` with the protocol's training rotations; tested on SO(3)-rotated clouds."""
    tag = protocol.replace("/", "-")
    torch.manual_seed(ctx.child_seed("init", tag))
    t = cfg.train
    train_x, train_y = data["train"]
    model = build(method, int(train_y.max()) + 1, cfg.model).to(ctx.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    steps = t.epochs * -(-len(train_x) // t.batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps, eta_min=t.lr / 100)
    labels = torch.as_tensor(train_y, device=ctx.device)

    def batches(epoch: int):
        rng = np.random.default_rng(ctx.child_seed("batches", tag, epoch))
        x = train_x
        if cfg.data.train_scale is not None:  # per-axis scale before the rotation, as the official loader
            x = x * rng.uniform(*cfg.data.train_scale, size=(len(x), 1, 3)).astype(np.float32)
        x = rotate(x, random_rotations(len(x), rng, PROTOCOLS[protocol]))  # fresh rotations per epoch
        if method == "pca_pointnet":
            x = pca_canonicalise(x)
        order = rng.permutation(len(x))
        for start in range(0, len(x), t.batch_size):
            idx = order[start:start + t.batch_size]
            if len(idx) > 1:
                yield torch.as_tensor(x[idx], device=ctx.device), labels[idx]

    def loss_fn(model: torch.nn.Module, batch) -> torch.Tensor:
        loss = F.cross_entropy(model(batch[0]), batch[1])
        return loss + sum(getattr(model, "aux_losses", {}).values())

    val_x = data["val"][PROTOCOLS[protocol]]  # drawn like the protocol's training clouds
    val_x = torch.as_tensor(pca_canonicalise(val_x) if method == "pca_pointnet" else val_x, device=ctx.device)
    val_y = torch.as_tensor(data["val_y"], device=ctx.device)

    val_rotations = torch.as_tensor(data["val_rotations"], device=ctx.device)
    siamese = isinstance(model, PaRotLite) and model.siamese

    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        logits = torch.cat([model(val_x[i:i + 64]) for i in range(0, len(val_x), 64)])
        metrics = {"val/loss": float(F.cross_entropy(logits, val_y)),
                   "val/acc": float((logits.argmax(1) == val_y).float().mean())}
        if siamese:  # how far the learned local directions are from equivariant: 1 - cos(d(R P), R d(P))
            metrics["val/direction_err"] = 1.0 - model.direction_equivariance(val_x, val_rotations)
        return metrics

    result = fit(ctx, tag, model, optimizer, batches, loss_fn, t.epochs, evaluate, select="val/loss",
                 scheduler=schedule)
    if siamese:  # a PaRot training has finished only once its directions have stopped becoming more equivariant
        ctx.record_convergence(plateaued([h["val/direction_err"] for h in result.history]))
    model.eval()
    pred = predict(model, data["test_so3"], method, ctx.device)
    runs = np.stack([predict(model, clouds, method, ctx.device) for clouds in data["consistency"]])
    row = {"dataset": cfg.data.dataset, "protocol": protocol, "val/acc": result.best_metrics["val/acc"],
           "best_epoch": result.best_epoch,
           "test/acc": float((pred == data["test_y"]).mean()),
           "test/balanced_acc": float(balanced_accuracy_score(data["test_y"], pred)),
           "agreement": float((runs == runs[0]).all(0).mean())}
    if isinstance(model, PaRotLite):  # how equivariant the learned patch directions are (1 = exactly)
        clouds, rotations = data["equivariance"]
        with torch.no_grad():
            row["direction_cos"] = model.direction_equivariance(torch.as_tensor(clouds, device=ctx.device),
                                                                torch.as_tensor(rotations, device=ctx.device))
    for angle, clouds in data["sweep"].items():
        row[f"acc/x{angle:g}"] = float((predict(model, clouds, method, ctx.device) == data["consistency_y"]).mean())
    ctx.log.info("%s %s: acc %.3f agreement %.3f", protocol, method, row["test/acc"], row["agreement"])
    return row


def load_segmentation(cfg: DictConfig, ctx: RunContext) -> dict:
    """ShapeNetPart train and SO(3)-rotated test shapes (the same for every unit of a replicate)."""
    train = load_shapenetpart(ctx.data_dir, cfg.data.points, True, ctx.data_seed("shapenetpart", "train"))
    test_x, test_c, test_p = load_shapenetpart(ctx.data_dir, cfg.data.points, False,
                                               ctx.data_seed("shapenetpart", "test"))
    rotations = random_rotations(len(test_x), np.random.default_rng(ctx.data_seed("test_rotations")), "so3")
    return {"train": train, "test": (rotate(test_x, rotations), test_c, test_p)}


def train_segmentation(cfg: DictConfig, ctx: RunContext, data: dict, protocol: str) -> dict:
    """ShapeNetPart with PaRot-lite's segmentation head: train under the protocol's rotations, test on SO(3)-rotated
    shapes, instance-averaged mIoU over the parts of each shape's category (predictions restricted to them).
    train/test = (clouds (M, N, 3), categories (M,), part labels (M, N))."""
    tag = protocol.replace("/", "-")
    torch.manual_seed(ctx.child_seed("init", tag))
    t, m = cfg.train, cfg.model
    train_x, train_c, train_p = data["train"]
    model = PaRotSeg(len(SHAPENET_PARTS), sum(SHAPENET_PARTS), local_patches=m.local_patches, local_k=m.local_k,
                     global_points=m.global_points, neighbours=m.neighbours, width=m.width,
                     embedding=m.embedding).to(ctx.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    steps = t.epochs * -(-len(train_x) // t.batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps, eta_min=t.lr / 100)

    def batches(epoch: int):
        rng = np.random.default_rng(ctx.child_seed("batches", tag, epoch))
        x = rotate(train_x, random_rotations(len(train_x), rng, PROTOCOLS[protocol]))
        order = rng.permutation(len(x))
        for start in range(0, len(x), t.batch_size):
            idx = order[start:start + t.batch_size]
            if len(idx) > 1:
                yield tuple(torch.as_tensor(a[idx], device=ctx.device) for a in (x, train_c, train_p))

    def loss_fn(model: torch.nn.Module, batch) -> torch.Tensor:
        logits = model(batch[0], batch[1])
        return F.cross_entropy(logits.flatten(0, 1), batch[2].flatten()) + sum(model.aux_losses.values())

    fit(ctx, tag, model, optimizer, batches, loss_fn, t.epochs, scheduler=schedule)
    model.eval()
    test_x, test_c, test_p = data["test"]
    own_parts = torch.zeros(len(SHAPENET_PARTS), sum(SHAPENET_PARTS), dtype=torch.bool, device=ctx.device)
    for c, (start, n) in enumerate(zip(PART_START, SHAPENET_PARTS)):
        own_parts[c, start:start + n] = True  # category -> its parts
    pred = []
    with torch.no_grad():
        for i in range(0, len(test_x), 16):
            categories = torch.as_tensor(test_c[i:i + 16], device=ctx.device)
            logits = model(torch.as_tensor(test_x[i:i + 16], device=ctx.device), categories)
            pred.append(logits.masked_fill(~own_parts[categories].unsqueeze(1), -torch.inf).argmax(-1).cpu().numpy())
    miou = part_miou(np.concatenate(pred), test_p, test_c)
    ctx.log.info("ShapeNetPart %s: mIoU %.3f", protocol, miou.mean())
    return {"dataset": cfg.data.dataset, "protocol": protocol, "test/miou": float(miou.mean())}
