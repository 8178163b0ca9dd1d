"""enf2enf against a global-latent neural field and a pointwise MLP, with zero-shot super-resolution.

Grid: ``<dataset>/<method>`` (one training per replicate; every method of a replicate sees the same shapes).
enf2enf and the global-latent field train in two stages, as the reference code: (1) a geometry encoder meta-learned
on the standardised signed distance field (Meta-SGD: a few inner gradient steps fit each shape's latents, the outer
loss differentiates through them); (2) an output decoder that reads the frozen geometry latents with the global
conditions appended (for enf2enf standardised together over the training shapes, as the reference) and predicts
the solution fields directly at query points (x, y, SDF scaled to [-1, 1]), as the reference's output ENF. The
pointwise MLP reads (x, y, SDF, conditions).
"""

import numpy as np
import torch
from omegaconf import DictConfig
from scipy.stats import spearmanr
from torch import nn

from repro.core.context import RunContext
from repro.core.errors import ConfigError
from repro.core.train import fit_steps
from repro.core.units import Unit, grid
from repro.papers.enf2enf.data import airfrans_splits, joukowski_splits
from repro.papers.enf2enf.joukowski import lift_from_pressure
from repro.papers.enf2enf.models import (
    EquivariantNeuralField,
    ModulatedFourierField,
    PointwiseMLP,
    fit_latents,
)

METHODS = ("mlp", "global_latent", "enf2enf")
DATASETS = ("joukowski", "airfrans")
QUERY_CHUNK = 8192  # query points decoded at once at evaluation (bounds memory on full-resolution meshes)


def units(cfg: DictConfig) -> list[Unit]:
    if cfg.data.dataset not in DATASETS:
        raise ConfigError(f"paper.data.dataset={cfg.data.dataset!r} is unknown; choose one of {DATASETS}")
    return grid(cfg.data.dataset, cfg.methods)


def load_splits(cfg: DictConfig, ctx: RunContext) -> dict[str, list[dict]]:
    data = cfg.data
    if data.dataset == "joukowski":
        return joukowski_splits(data, ctx.data_seed("joukowski"))
    return airfrans_splits(ctx.data_dir / "airfrans", data.task, data.val_fraction, data.limit)


class Normalizer:
    """Mean and standard deviation of the training split only (no statistics of test data leak in)."""

    def __init__(self, values: np.ndarray, device: str) -> None:
        self.mean = torch.tensor(values.mean(0), dtype=torch.float32, device=device)
        self.std = torch.tensor(values.std(0).clip(min=1e-8), dtype=torch.float32, device=device)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std + self.mean


class RangeScaler:
    """Affine map of the training split's [min, max] onto [-1, 1] (the reference's scaling of the SDF input)."""

    def __init__(self, values: np.ndarray, device: str) -> None:
        self.low = torch.tensor(values.min(0), dtype=torch.float32, device=device)
        self.span = torch.tensor((values.max(0) - values.min(0)).clip(min=1e-8), dtype=torch.float32, device=device)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return 2 * (x - self.low) / self.span - 1


class Shapes:
    """One split on the device: per-shape coordinates, SDF and targets (shapes may differ in point count), and the
    SDF standardised with the training statistics (the geometry encoder's target, as the reference's)."""

    def __init__(self, samples: list[dict], device: str, sdf_norm: Normalizer) -> None:
        self.samples = samples
        self.coords = [torch.tensor(s["coords"], device=device) for s in samples]
        self.sdf = [torch.tensor(s["sdf"], device=device)[:, None] for s in samples]
        self.sdf_target = [sdf_norm(sdf) for sdf in self.sdf]
        self.target = [torch.tensor(s["target"], device=device) for s in samples]
        self.cond = torch.tensor(np.stack([s["cond"] for s in samples]), device=device)
        self.device = device

    def __len__(self) -> int:
        return len(self.samples)

    def subsets(self, shapes: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
        """``count`` distinct random points of each chosen shape: an index tensor [len(shapes), count]."""
        return torch.stack([torch.randperm(self.coords[int(i)].shape[0], generator=generator)[:count]
                            for i in shapes]).to(self.device)

    def gather(self, field: list[torch.Tensor], shapes: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        return torch.stack([field[int(i)][p] for i, p in zip(shapes, points)])


class GeometryEncoder(nn.Module):
    """A neural field over the SDF with Meta-SGD step sizes (one per latent dimension) and a shared initial latent."""

    def __init__(self, field: nn.Module, init: torch.Tensor, inner_lr: float) -> None:
        super().__init__()
        self.field = field
        self.register_buffer("init", init)
        self.step_sizes = nn.Parameter(torch.full((init.shape[-1],), float(inner_lr)))

    def encode(self, inner: list[tuple[torch.Tensor, torch.Tensor]], second_order: bool) -> torch.Tensor:
        return fit_latents(self.field, self.init, self.step_sizes, inner, second_order)


def build_geometry_encoder(cfg: DictConfig, method: str, device: str) -> GeometryEncoder:
    m = cfg.model
    if method == "enf2enf":
        g = m.geometry
        field = EquivariantNeuralField(g.latent_dim, g.hidden, g.heads, g.self_layers, 1, tuple(g.frequencies),
                                       g.per_side, [list(b) for b in g.box], deep_stem=False)
        init = torch.ones(g.per_side**2, g.latent_dim)  # the reference initialises every context to ones
    else:
        g = m.global_latent
        field = ModulatedFourierField(g.code_dim, g.hidden, g.depth, 1, g.frequencies, g.std)
        init = torch.zeros(g.code_dim)  # functa's zero code
    return GeometryEncoder(field, init, cfg.train.geometry.inner_lr).to(device)


def build_decoder(cfg: DictConfig, method: str, cond_dim: int, out_dim: int, device: str) -> nn.Module:
    """Stage-2 decoders of the field methods query at (x, y, scaled SDF), as the reference's output ENF
    (coord_dim 3); the global-latent field gets the same query so that the two differ in their latents."""
    m = cfg.model
    if method == "enf2enf":
        g, o = m.geometry, m.output
        decoder = EquivariantNeuralField(g.latent_dim + cond_dim, o.hidden, o.heads, o.self_layers, out_dim,
                                         tuple(o.frequencies), g.per_side, [list(b) for b in g.box], deep_stem=True,
                                         coord_dim=3)
    elif method == "global_latent":
        g = m.global_latent
        decoder = ModulatedFourierField(g.code_dim + cond_dim, g.hidden, g.depth, out_dim, g.frequencies, g.std,
                                        in_dim=3)
    else:
        decoder = PointwiseMLP(3 + cond_dim, m.mlp.hidden, m.mlp.depth, out_dim)
    return decoder.to(device)


def inner_batches(shapes: Shapes, chosen: torch.Tensor, steps: int, count: int,
                  generator: torch.Generator) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """steps + 1 random point subsets of each chosen shape's standardised SDF (the last one for the outer loss)."""
    batches = []
    for _ in range(steps + 1):
        points = shapes.subsets(chosen, count, generator)
        batches.append((shapes.gather(shapes.coords, chosen, points),
                        shapes.gather(shapes.sdf_target, chosen, points)))
    return batches


def train_geometry(cfg: DictConfig, ctx: RunContext, method: str, train: Shapes, val: Shapes) -> GeometryEncoder:
    """Stage 1: meta-learn the SDF field (outer AdamW on the field, Adam on the step sizes, clipped to [1e-6, 10]),
    both rates decayed by a cosine over the steps."""
    t = cfg.train.geometry
    encoder = build_geometry_encoder(cfg, method, ctx.device)
    optimizer = torch.optim.AdamW([
        {"params": encoder.field.parameters(), "lr": t.lr, "weight_decay": t.weight_decay},
        {"params": [encoder.step_sizes], "lr": t.meta_lr, "weight_decay": 0.0}])

    def batch_at(step: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        generator = torch.Generator().manual_seed(ctx.child_seed("geometry", step))
        chosen = torch.randperm(len(train), generator=generator)[:t.batch]
        return inner_batches(train, chosen, t.inner_steps, t.points, generator)

    def loss_fn(model: GeometryEncoder, batches: list) -> torch.Tensor:
        with torch.no_grad():
            model.step_sizes.clamp_(1e-6, 10.0)
        latents = model.encode(batches[:-1], second_order=True)
        coords, sdf = batches[-1]
        return (model.field(coords, latents) - sdf).pow(2).mean()

    def evaluate(model: GeometryEncoder) -> dict[str, float]:
        return {"val/sdf_mse": sdf_error(model, val, t, ctx.child_seed("geometry-val"))}

    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=t.steps)
    fit_steps(ctx, "geometry", encoder, optimizer, batch_at, loss_fn, t.steps, t.every, evaluate,
              select="val/sdf_mse", scheduler=scheduler, grad_clip=t.grad_clip)
    return encoder


def encode_shapes(encoder: GeometryEncoder, shapes: Shapes, t: DictConfig, seed: int) -> torch.Tensor:
    """Each shape's latents fitted on its SDF alone (never on the solution), one shape at a time."""
    generator = torch.Generator().manual_seed(seed)
    latents = []
    with torch.enable_grad():
        for i in range(len(shapes)):
            chosen = torch.tensor([i])
            batches = inner_batches(shapes, chosen, t.inner_steps, t.points, generator)
            latents.append(encoder.encode(batches[:-1], second_order=False).detach())
    return torch.cat(latents)


def sdf_error(encoder: GeometryEncoder, shapes: Shapes, t: DictConfig, seed: int) -> float:
    """MSE of the reconstructed standardised SDF over every point of each shape, latents fitted as at test time."""
    latents = encode_shapes(encoder, shapes, t, seed)
    with torch.no_grad():
        errors = [(decode(encoder.field, shapes.coords[i][None], latents[i:i + 1])
                   - shapes.sdf_target[i][None]).pow(2).mean() for i in range(len(shapes))]
    return float(torch.stack(errors).mean())


def decode(field: nn.Module, coords: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
    """The field at many query points, in chunks."""
    return torch.cat([field(coords[:, lo:lo + QUERY_CHUNK], latents)
                      for lo in range(0, coords.shape[1], QUERY_CHUNK)], 1)


class Surrogate:
    """Maps a shape (its SDF samples and conditions) and query points to predicted fields, in physical units."""

    def __init__(self, method: str, decoder: nn.Module, encoder: GeometryEncoder | None, cfg: DictConfig,
                 target_norm: Normalizer, feature_norm: Normalizer | None, sdf_scale: RangeScaler) -> None:
        self.method, self.decoder, self.encoder, self.cfg = method, decoder, encoder, cfg
        self.target_norm, self.feature_norm, self.sdf_scale = target_norm, feature_norm, sdf_scale
        self.latent_norm: Normalizer | None = None  # set from the training shapes' latents (fit_latent_norm)

    def raw_latents(self, shapes: Shapes, seed: int) -> torch.Tensor:
        """Geometry latents with the raw conditions appended (to each latent for enf2enf)."""
        geometry = encode_shapes(self.encoder, shapes, self.cfg.train.geometry, seed)
        cond = shapes.cond
        if self.method == "enf2enf":
            cond = cond[:, None, :].expand(-1, geometry.shape[1], -1)
        return torch.cat([geometry, cond], -1)

    def fit_latent_norm(self, train_latents: torch.Tensor, cond_dim: int) -> None:
        """Per-feature mean and std over the training shapes (and their latents), as the reference standardises the
        latents with the conditions appended before stage 2. The global-latent field keeps its code raw, as
        functa-style decoders read the fitted code itself, and standardises only the appended conditions
        (standardising its code too made it worse: results/enf2enf/PREFACE.md)."""
        self.latent_norm = Normalizer(train_latents.reshape(-1, train_latents.shape[-1]).cpu().numpy(),
                                      str(train_latents.device))
        if self.method == "global_latent":
            code_dim = train_latents.shape[-1] - cond_dim
            self.latent_norm.mean[:code_dim] = 0.0
            self.latent_norm.std[:code_dim] = 1.0

    def latents(self, shapes: Shapes, seed: int) -> torch.Tensor | None:
        """The standardised stage-2 latents of a split (None for the MLP)."""
        if self.encoder is None:
            return None
        return self.latent_norm(self.raw_latents(shapes, seed))

    def normalised(self, coords: torch.Tensor, sdf: torch.Tensor, cond: torch.Tensor,
                   latents: torch.Tensor | None) -> torch.Tensor:
        """Normalised predictions at coords [B, C, 2] (sdf [B, C, 1]; cond [B, k] used by the MLP only)."""
        if self.method == "mlp":
            features = torch.cat([coords, sdf, cond[:, None, :].expand(-1, coords.shape[1], -1)], -1)
            return self.decoder(self.feature_norm(features))
        return decode(self.decoder, torch.cat([coords, self.sdf_scale(sdf)], -1), latents)

    @torch.no_grad()
    def predict(self, coords: torch.Tensor, sdf: torch.Tensor, cond: torch.Tensor,
                latents: torch.Tensor | None) -> torch.Tensor:
        chunks = [self.normalised(coords[:, lo:lo + QUERY_CHUNK], sdf[:, lo:lo + QUERY_CHUNK], cond, latents)
                  for lo in range(0, coords.shape[1], QUERY_CHUNK)]
        return self.target_norm.inverse(torch.cat(chunks, 1))


def train_output(cfg: DictConfig, ctx: RunContext, surrogate: Surrogate, train: Shapes,
                 val: Shapes, train_latents: torch.Tensor | None, val_latents: torch.Tensor | None) -> None:
    """Stage 2 (or the MLP's only stage): MSE on normalised fields at random points of random shapes; Adam with the
    rate decayed by a cosine over the steps."""
    t = cfg.train.output
    optimizer = torch.optim.Adam(surrogate.decoder.parameters(), lr=t.lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=t.steps)

    def batch_at(step: int) -> tuple[torch.Tensor, ...]:
        generator = torch.Generator().manual_seed(ctx.child_seed("output", step))
        chosen = torch.randperm(len(train), generator=generator)[:t.batch]
        points = train.subsets(chosen, t.points, generator)
        latents = None if train_latents is None else train_latents[chosen.to(ctx.device)]
        return (train.gather(train.coords, chosen, points), train.gather(train.sdf, chosen, points),
                train.cond[chosen.to(ctx.device)], latents, train.gather(train.target, chosen, points))

    def loss_fn(decoder: nn.Module, batch: tuple) -> torch.Tensor:
        coords, sdf, cond, latents, target = batch
        return (surrogate.normalised(coords, sdf, cond, latents) - surrogate.target_norm(target)).pow(2).mean()

    def evaluate(decoder: nn.Module) -> dict[str, float]:
        errors = []
        for i in range(len(val)):
            latents = None if val_latents is None else val_latents[i:i + 1]
            prediction = surrogate.predict(val.coords[i][None], val.sdf[i][None], val.cond[i:i + 1], latents)
            error = surrogate.target_norm(prediction) - surrogate.target_norm(val.target[i][None])
            errors.append(error.pow(2).mean())
        return {"val/field_mse": float(torch.stack(errors).mean())}

    fit_steps(ctx, "output", surrogate.decoder, optimizer, batch_at, loss_fn, t.steps, t.every, evaluate,
              select="val/field_mse", scheduler=scheduler)


def relative_l2(prediction: torch.Tensor, truth: torch.Tensor) -> float:
    return float((prediction - truth).norm() / truth.norm().clamp(min=1e-12))


def field_metrics(cfg: DictConfig, surrogate: Surrogate, shapes: Shapes, latents: torch.Tensor | None) -> dict:
    """Per-shape errors averaged over shapes: normalised MSE of every field; relative L2 of the pressure over the
    domain and in the band |SDF| < band next to the wall; on AirfRANS also the normalised MSE of the surface
    pressure."""
    p, band = cfg.data.pressure_channel, cfg.data.band
    rows: dict[str, list[float]] = {"field_mse": [], "p_rel_l2": [], "p_band_rel_l2": [], "surface_p_mse": []}
    for i, sample in enumerate(shapes.samples):
        shape_latents = None if latents is None else latents[i:i + 1]
        prediction = surrogate.predict(shapes.coords[i][None], shapes.sdf[i][None], shapes.cond[i:i + 1],
                                       shape_latents)[0]
        truth = shapes.target[i]
        near = shapes.sdf[i][:, 0].abs() < band
        normalised_error = surrogate.target_norm(prediction) - surrogate.target_norm(truth)
        rows["field_mse"].append(float(normalised_error.pow(2).mean()))
        rows["p_rel_l2"].append(relative_l2(prediction[:, p], truth[:, p]))
        rows["p_band_rel_l2"].append(relative_l2(prediction[near, p], truth[near, p]))
        if "on_surface" in sample:
            surface = torch.tensor(sample["on_surface"], device=shapes.device)
            rows["surface_p_mse"].append(float(normalised_error[surface, p].pow(2).mean()))
    return {key: float(np.mean(values)) for key, values in rows.items() if values}


def lift_metrics(cfg: DictConfig, surrogate: Surrogate, shapes: Shapes, latents: torch.Tensor | None) -> dict:
    """C_L from the predicted surface Cp (integrated around the polyline) against Kutta-Joukowski's exact C_L."""
    predicted, exact = [], []
    for i, sample in enumerate(shapes.samples):
        surface = torch.tensor(sample["surface"], device=shapes.device)[None]
        shape_latents = None if latents is None else latents[i:i + 1]
        cp = surrogate.predict(surface, torch.zeros_like(surface[..., :1]), shapes.cond[i:i + 1], shape_latents)
        cp = cp[0, :, cfg.data.pressure_channel].cpu().numpy().astype(float)
        predicted.append(lift_from_pressure(cp, sample["foil"], cfg.data.surface_points))
        exact.append(sample["foil"].lift_coefficient(cfg.data.surface_points))
    predicted, exact = np.array(predicted), np.array(exact)
    return {"cl_rel_err": float(np.abs(predicted - exact).mean() / np.abs(exact).mean()),
            "cl_spearman": float(spearmanr(predicted, exact).statistic)}


def run_unit(cfg: DictConfig, ctx: RunContext, u: Unit) -> list[dict]:
    splits = ctx.shared("splits", lambda: load_splits(cfg, ctx))
    train_sdf = np.concatenate([s["sdf"] for s in splits["train"]])[:, None]
    sdf_norm, sdf_scale = Normalizer(train_sdf, ctx.device), RangeScaler(train_sdf, ctx.device)
    shapes = {name: Shapes(samples, ctx.device, sdf_norm) for name, samples in splits.items()}
    train, val = shapes["train"], shapes["val"]
    train_targets = np.concatenate([s["target"] for s in splits["train"]])
    target_norm = Normalizer(train_targets, ctx.device)
    cond_dim, out_dim = train.cond.shape[1], train_targets.shape[1]

    encoder, feature_norm = None, None
    if u.method == "mlp":
        features = np.concatenate([np.concatenate([s["coords"], s["sdf"][:, None],
                                                   np.broadcast_to(s["cond"], (len(s["sdf"]), cond_dim))], 1)
                                   for s in splits["train"]])
        feature_norm = Normalizer(features, ctx.device)
    else:
        encoder = train_geometry(cfg, ctx, u.method, train, val)
    decoder = build_decoder(cfg, u.method, cond_dim, out_dim, ctx.device)
    surrogate = Surrogate(u.method, decoder, encoder, cfg, target_norm, feature_norm, sdf_scale)

    def latents(split: str) -> torch.Tensor | None:
        return surrogate.latents(shapes[split], ctx.child_seed("encode", split))

    train_latents = val_latents = None
    if encoder is not None:
        raw = surrogate.raw_latents(train, ctx.child_seed("encode", "train"))
        surrogate.fit_latent_norm(raw, cond_dim)
        train_latents, val_latents = surrogate.latent_norm(raw), latents("val")
    train_output(cfg, ctx, surrogate, train, val, train_latents, val_latents)

    base = {"params": sum(p.numel() for p in decoder.parameters())
            + (sum(p.numel() for p in encoder.parameters()) if encoder is not None else 0)}
    if encoder is not None:
        base["sdf_mse"] = sdf_error(encoder, shapes["test"], cfg.train.geometry, ctx.child_seed("sdf-test"))
    rows, split_latents = [], {}
    for split in ("test", "ood"):
        if split not in shapes:
            continue
        with ctx.stopwatch() as clock:  # geometry encoding plus decoding at every query point
            split_latents[split] = latents(split)
            row = {**base, "split": split, "n_query": int(shapes[split].coords[0].shape[0]),
                   **field_metrics(cfg, surrogate, shapes[split], split_latents[split])}
        row["inference_time_s"] = clock.seconds / len(shapes[split])
        if cfg.data.dataset == "joukowski":
            row.update(lift_metrics(cfg, surrogate, shapes[split], split_latents[split]))
        rows.append(row)
    # Zero-shot super-resolution: the first test shapes, latents fitted on their SDF at the training resolution,
    # fields decoded at other query counts and compared with the exact values there.
    for name in [name for name in shapes if name.startswith("resolution/")]:
        count = len(shapes[name])
        subset_latents = None if encoder is None else split_latents["test"][:count]
        rows.append({"split": "resolution", "n_query": int(name.split("/")[1]),
                     **field_metrics(cfg, surrogate, shapes[name], subset_latents)})
    ctx.log.info("%s: %s", u.method, [{k: round(v, 4) for k, v in r.items() if isinstance(v, float)} for r in rows])
    return rows
