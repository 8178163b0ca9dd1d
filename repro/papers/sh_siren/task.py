"""SH-Siren: location encodings x networks on the sphere.

Grid: ``checkerboard/<encoding>-<network>`` (Table 1a: 16-class checkerboard over 200 Fibonacci support points,
accuracy overall and per 10-degree latitude band, Fig. 4b), ``resolution/sphericalharmonics-<network>`` at
several support counts and Legendre degrees L (Fig. 4a), and ``bandlimited/<encoding>-<network>`` (regression of a
random band-limited function, l <= 15). Every method of a replicate sees the same sampled points.
"""

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig

from repro.core.context import RunContext
from repro.core.errors import ConfigError
from repro.core.train import fit
from repro.core.units import Unit, grid, unit
from repro.papers.sh_siren.data import (
    bandlimited_coefficients,
    bandlimited_values,
    checkerboard_labels,
    fibonacci_lattice,
    uniform_sphere,
)
from repro.papers.sh_siren.encodings import ENCODINGS, encode
from repro.papers.sh_siren.models import NETWORKS, build_network

METHODS = tuple(f"{e}-{n}" for e in ENCODINGS for n in NETWORKS)
LATITUDE_BANDS = np.arange(-90, 90, 10)


def units(cfg: DictConfig) -> list[Unit]:
    used = [*cfg.methods, *cfg.resolution.methods, *(method for method, _ in cfg.bandlimited.runs)]
    unknown = sorted({m for m in used if m not in cfg.combinations})
    if unknown:
        raise ConfigError(f"paper.combinations has no hyperparameters for {unknown}; add them or drop the methods")
    r, b = cfg.resolution, cfg.bandlimited
    return [*grid("checkerboard", cfg.methods, support=[cfg.data.support]),
            *grid("resolution", r.methods, support=list(r.supports), legendre=list(r.legendre)),
            *[unit("bandlimited", method, legendre=legendre) for method, legendre in b.runs]]


def run_unit(cfg: DictConfig, ctx: RunContext, u: Unit) -> list[dict]:
    hp = dict(cfg.combinations[u.method])
    if u.settings.get("legendre"):
        hp["legendre"] = u.settings["legendre"]
    if u.experiment == "bandlimited":
        points = ctx.shared("points", lambda: sample_points(cfg, ctx))
        targets = ctx.shared("bandlimited", lambda: bandlimited_targets(cfg, ctx, points))
        return [train_one(cfg, ctx, u.method, hp, points, targets, regression=True)]
    support = u.settings["support"]
    points = ctx.shared("points", lambda: sample_points(cfg, ctx))
    labels = ctx.shared(f"checkerboard{support}", lambda: {split: checkerboard_labels(p, support, cfg.data.classes)
                                                            for split, p in points.items()})
    return [train_one(cfg, ctx, u.method, hp, points, labels, regression=False)]


def sample_points(cfg: DictConfig, ctx: RunContext) -> dict[str, np.ndarray]:
    """Train and validation points uniform on the sphere (fresh per replicate); the test points are the fixed
    Fibonacci lattice, as in the official evaluation."""
    lon, lat, _ = fibonacci_lattice(cfg.data.test_samples)
    return {"train": uniform_sphere(cfg.data.samples, ctx.data_seed("train")),
            "val": uniform_sphere(cfg.data.samples, ctx.data_seed("val")),
            "test": np.stack([lon, lat], 1)}


def bandlimited_targets(cfg: DictConfig, ctx: RunContext, points: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    coefficients = bandlimited_coefficients(cfg.bandlimited.degree, ctx.data_seed("coefficients"))
    return {split: bandlimited_values(p, coefficients) for split, p in points.items()}


def train_one(cfg: DictConfig, ctx: RunContext, method: str, hp: dict, points: dict[str, np.ndarray],
              targets: dict[str, np.ndarray], regression: bool) -> dict:
    encoding, network = method.split("-")
    t = cfg.train
    features = {split: encode(torch.as_tensor(p, device=ctx.device), encoding, hp.get("legendre", 10),
                              hp.get("frequency_num", 16), hp.get("min_radius", 10.0), t.max_radius)
                for split, p in points.items()}
    dtype = torch.float32 if regression else torch.long
    y = {split: torch.as_tensor(v, dtype=dtype, device=ctx.device) for split, v in targets.items()}
    outputs = 1 if regression else cfg.data.classes
    model = build_network(network, features["train"].shape[1], outputs, hp.get("hidden", 64),
                          hp.get("layers", 2)).to(ctx.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=hp["lr"], weight_decay=hp["wd"])

    def loss_of(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(logits[:, 0], target) if regression else F.cross_entropy(logits, target)

    def batches(epoch: int) -> list[torch.Tensor]:
        generator = torch.Generator().manual_seed(ctx.child_seed("batches", epoch))
        order = torch.randperm(len(y["train"]), generator=generator).to(ctx.device)
        return list(order.split(t.batch_size))

    def loss_fn(model: torch.nn.Module, index: torch.Tensor) -> torch.Tensor:
        return loss_of(model(features["train"][index]), y["train"][index])

    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        return {"val/loss": float(loss_of(model(features["val"]), y["val"]))}

    result = fit(ctx, "", model, optimizer, batches, loss_fn, t.epochs, evaluate, select="val/loss")
    model.eval()
    with torch.no_grad():
        prediction = model(features["test"])
    latitude = points["test"][:, 1]
    row = {"encoding": encoding, "network": network, "legendre": hp.get("legendre", 0) if encoding ==
           "sphericalharmonics" else 0, "features": features["train"].shape[1],
           "params": sum(p.numel() for p in model.parameters()), "best_epoch": result.best_epoch,
           "val/loss": result.best_metrics["val/loss"]}
    if regression:
        # squared error relative to the function's variance on the test lattice (0 = exact, 1 = the mean)
        error = ((prediction[:, 0] - y["test"]) ** 2).cpu().numpy() / float(y["test"].var())
        row["test/rel_mse"] = float(error.mean())
        row["test/rel_mse_polar"] = float(error[np.abs(latitude) > cfg.polar_latitude].mean())
    else:
        correct = (prediction.argmax(1) == y["test"]).cpu().numpy().astype(float)
        row["test/accuracy"] = float(correct.mean())
        row["test/acc_equatorial"] = float(correct[np.abs(latitude) < cfg.equatorial_latitude].mean())
        row["test/acc_polar"] = float(correct[np.abs(latitude) > cfg.polar_latitude].mean())
        row["test/polar_drop"] = row["test/acc_equatorial"] - row["test/acc_polar"]
        for low in LATITUDE_BANDS:
            row[f"test/acc_lat{low:+d}"] = float(correct[(latitude >= low) & (latitude < low + 10)].mean())
    ctx.log.info("%s: %s", method, {k: round(v, 4) for k, v in row.items() if k.startswith("test/") and
                                    "lat" not in k})
    return row
