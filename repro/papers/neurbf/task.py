"""NeuRBF image fitting at an equal parameter budget.

Grid: ``image/<method>`` for every model on the same image (``image`` setting: a scikit-image image at cpu scale,
DIV2K images at paper scale). The budget is that of an Instant-NGP reference (16 levels x 2 features, the
configured hash-table size, the same decoder width), as the official code derives its kernel count.
"""

import math
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig
from scipy.interpolate import RBFInterpolator, RegularGridInterpolator
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from repro.core.context import RunContext
from repro.core.errors import ConfigError
from repro.core.train import fit_steps
from repro.core.units import Unit, grid
from repro.papers.neurbf.data import fetch_div2k, gradient_magnitude, load_div2k, pixel_centres, skimage_image
from repro.papers.neurbf.fields import (
    GridField,
    MultiResolutionGrid,
    NeuRBF,
    NeuRBFDecoder,
    RBFLayer,
    Siren,
    count_parameters,
    grid_parameters,
)
from repro.papers.neurbf.kernels import cluster_shapes, lattice_kernels, nearest_kernels, weighted_kmeans_centres

# NeuRBF and its ablations: (adaptive k-means kernels, anisotropic shapes, sinusoid composition, hybrid grid)
NEURBF_VARIANTS = {
    "neurbf": (True, True, True, True),
    "neurbf-regular": (False, True, True, True),
    "neurbf-isotropic": (True, False, True, True),
    "neurbf-nosine": (True, True, False, True),
    "neurbf-nogrid": (True, True, True, False),
}
METHODS = (*NEURBF_VARIANTS, "hashgrid", "densegrid", "siren", "classical-rbf")


def units(cfg: DictConfig) -> list[Unit]:
    return grid("image", cfg.methods, image=list(cfg.data.images))


def prepare_data(cfg: DictConfig, data_dir: Path, chosen: list[Unit]) -> None:
    """At paper scale, the DIV2K validation images are downloaded before any unit runs."""
    if cfg.data.source == "div2k":
        fetch_div2k(data_dir / "div2k")


def load_target(cfg: DictConfig, ctx: RunContext, name: str) -> dict:
    """The image to fit, its pixel centres, and (when the original is larger) the original for the off-grid check."""
    if cfg.data.source == "skimage":
        image, original = skimage_image(name, cfg.data.size)
    else:
        images = dict(load_div2k(ctx.data_dir / "div2k", cfg.data.count))
        if name not in images:
            raise ConfigError(f"paper.data.images lists {name!r}, absent from the DIV2K files {sorted(images)}")
        image = original = images[name]
    height, width, _ = image.shape
    return {"image": image, "original": original, "points": pixel_centres(height, width),
            "gradient": gradient_magnitude(image)}


def finest_resolution(cfg: DictConfig, image: np.ndarray) -> int:
    """The finest grid resolution: configured, or half the image's longer side as the official code sets it."""
    return int(cfg.model.finest_resolution or max(image.shape[:2]) // 2)


def decoder_parameters(dim_in: int, hidden: int, dim_out: int) -> int:
    return (dim_in + 1) * hidden + (hidden + 1) * hidden + (hidden + 1) * dim_out


def reference_budget(cfg: DictConfig, image: np.ndarray) -> int:
    """Parameters of the Instant-NGP reference: its hash grid plus a three-layer decoder of the same width."""
    m = cfg.model
    return grid_parameters(m.reference_levels, m.level_features, m.base_resolution, finest_resolution(cfg, image),
                           2**m.log2_table) + decoder_parameters(m.reference_levels * m.level_features, m.hidden,
                                                                 image.shape[2])


def kernel_count(cfg: DictConfig, method: str, image: np.ndarray, budget: int) -> int:
    """The kernel count that fills the budget left by the decoder, the bias and the hybrid grid: each kernel holds
    its feature vector, its centre and its shape (3 numbers when anisotropic, 1 when isotropic)."""
    _, anisotropic, _, hybrid = NEURBF_VARIANTS[method]
    m = cfg.model
    grid_width = m.levels * m.level_features if hybrid else 0
    grid_size = grid_parameters(m.levels, m.level_features, m.base_resolution, finest_resolution(cfg, image),
                                2**m.log2_table) if hybrid else 0
    others = decoder_parameters(grid_width + m.channels, m.hidden, image.shape[2]) + grid_width + m.channels + grid_size
    return int((budget - others) // (m.channels + 2 + (3 if anisotropic else 1)))


def build_neurbf(cfg: DictConfig, ctx: RunContext, method: str, target: dict, budget: int) -> NeuRBF:
    adaptive, anisotropic, sinusoid, hybrid = NEURBF_VARIANTS[method]
    m = cfg.model
    channels_out = target["image"].shape[2]
    grid_part = MultiResolutionGrid(m.levels, m.level_features, m.base_resolution,
                                    finest_resolution(cfg, target["image"]), 2**m.log2_table) if hybrid else None
    decoder = NeuRBFDecoder((grid_part.out_dim if hybrid else 0) + m.channels, m.hidden, channels_out,
                            tuple(m.decoder_omegas))
    kernels = kernel_count(cfg, method, target["image"], budget)
    pixel = 1 / max(target["image"].shape[:2])
    if adaptive:
        centres = weighted_kmeans_centres(target["points"], target["gradient"], kernels, m.kmeans_iterations,
                                          ctx.child_seed("kmeans"))
        shapes = cluster_shapes(centres, target["points"], target["gradient"], not anisotropic, pixel)
    else:
        centres, shapes = lattice_kernels(kernels)
    omegas = torch.exp2(torch.linspace(math.log2(m.rbf_omegas[0]), math.log2(m.rbf_omegas[1]), m.channels)) \
        if sinusoid else None
    rbf = RBFLayer(torch.tensor(centres, dtype=torch.float32), torch.tensor(shapes, dtype=torch.float32),
                   m.channels, omegas)
    return NeuRBF(rbf, grid_part, decoder)


def dense_grid_for_budget(cfg: DictConfig, image: np.ndarray, budget: int) -> MultiResolutionGrid:
    """Instant NGP without hashing: ``dense_levels`` dense levels from half the base resolution, the finest
    resolution lowered until the grid and its decoder fit the budget."""
    m = cfg.model
    decoder = decoder_parameters(m.dense_levels * m.level_features, m.hidden, image.shape[2])
    for finest in range(finest_resolution(cfg, image), m.base_resolution // 2, -1):
        if grid_parameters(m.dense_levels, m.level_features, m.base_resolution // 2, finest, 2**62) + decoder <= budget:
            return MultiResolutionGrid(m.dense_levels, m.level_features, m.base_resolution // 2, finest, 2**62)
    raise ConfigError(f"no dense grid fits a budget of {budget} parameters")


def siren_width_for_budget(cfg: DictConfig, budget: int, channels_out: int) -> int:
    """The widest SIREN of the configured depth within the budget: 2->w, (layers-1) w->w, w->c, with biases."""
    layers = cfg.model.siren_layers

    def size(w: int) -> int:
        return 3 * w + (layers - 1) * (w * w + w) + (w + 1) * channels_out

    width = 8
    while size(width + 1) <= budget:
        width += 1
    return width


def stratified_block(height: int, width: int, batch: int) -> int:
    """The side of the square blocks that tile the image so that one pixel per block makes about ``batch`` pixels:
    floor(sqrt(H W / batch)), as the official stratified sampling (train_shuffle_mode 2)."""
    return max(1, math.isqrt(height * width // batch))


def stratified_batch(height: int, width: int, block: int, k: int, seed: int) -> torch.Tensor:
    """Pixel indices (row-major) of step ``k`` of an epoch: each block x block tile of the image visits its pixels
    in its own random order (drawn from ``seed``, one per epoch), one per step, so an epoch of block^2 steps
    covers every pixel exactly once; tiles cut by the image border skip the pixels outside it."""
    rows, cols = -(-height // block), -(-width // block)
    order = torch.rand(rows * cols, block * block, generator=torch.Generator().manual_seed(seed)).argsort(1)[:, k]
    tile = torch.arange(rows * cols)
    row = tile // cols * block + order // block
    col = tile % cols * block + order % block
    inside = (row < height) & (col < width)
    return (row * width + col)[inside]


def cosine_to_one_hundredth(step: int, steps: int) -> float:
    return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(step, steps) / steps))


def run_unit(cfg: DictConfig, ctx: RunContext, u: Unit) -> list[dict]:
    target = ctx.shared(f"target-{u.settings['image']}", lambda: load_target(cfg, ctx, u.settings["image"]))
    image, points = target["image"], target["points"]
    height, width, channels_out = image.shape
    budget = reference_budget(cfg, image)
    if u.method == "classical-rbf":
        return [classical_rbf_row(cfg, ctx, target, budget)]
    t, m = cfg.train, cfg.model
    neighbours = None
    if u.method in NEURBF_VARIANTS:
        model = build_neurbf(cfg, ctx, u.method, target, budget)
        neighbours = nearest_kernels(model.rbf.centres, points)
        fast = [model.decoder.parameters()]
        slow = [p for name, p in model.named_parameters() if not name.startswith("decoder.")]
    elif u.method in ("hashgrid", "densegrid"):
        grid_model = MultiResolutionGrid(m.reference_levels, m.level_features, m.base_resolution,
                                         finest_resolution(cfg, image), 2**m.log2_table) if u.method == "hashgrid" \
            else dense_grid_for_budget(cfg, image, budget)
        model = GridField(grid_model, m.hidden, channels_out)
        fast, slow = [model.decoder.parameters()], [model.grid.table]
    elif u.method == "siren":
        model = Siren(siren_width_for_budget(cfg, budget, channels_out), m.siren_layers, channels_out)
        fast, slow = [], list(model.parameters())
    else:
        raise ConfigError(f"unknown method {u.method!r}; choose from {METHODS}")
    model = model.to(ctx.device)
    neighbours = neighbours.to(ctx.device) if neighbours is not None else None
    x = torch.tensor(points, dtype=torch.float32, device=ctx.device)
    y = torch.tensor(image.reshape(-1, channels_out), dtype=torch.float32, device=ctx.device)
    lr_slow = t.siren_lr if u.method == "siren" else t.lr_features
    groups = [{"params": [p for ps in fast for p in ps], "lr": t.lr_decoder}] if fast else []
    optimizer = torch.optim.Adam([*groups, {"params": slow, "lr": lr_slow}], betas=(0.9, 0.99), eps=1e-15)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: cosine_to_one_hundredth(step, t.steps))

    block = stratified_block(height, width, t.batch_pixels)

    def batch_at(step: int) -> torch.Tensor:
        epoch, k = divmod(step, block**2)
        return stratified_batch(height, width, block, k, ctx.child_seed("pixels", epoch)).to(ctx.device)

    def loss_fn(model: torch.nn.Module, index: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.mse_loss(model(x[index], None if neighbours is None else neighbours[index]),
                                            y[index])

    def predict(model: torch.nn.Module) -> torch.Tensor:
        return torch.cat([model(x[c], None if neighbours is None else neighbours[c])
                          for c in torch.arange(len(x), device=ctx.device).split(65536)]).clamp(0, 1)

    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        return {"fit/mse": float(((predict(model) - y) ** 2).mean())}

    with ctx.stopwatch() as clock:
        result = fit_steps(ctx, "", model, optimizer, batch_at, loss_fn, t.steps, t.every, evaluate,
                           select="fit/mse", scheduler=schedule)
    model.eval()
    with torch.no_grad():
        reconstruction = predict(model).cpu().numpy().reshape(height, width, channels_out).astype(np.float64)
        row = {"params": count_parameters(model, isotropic=u.method == "neurbf-isotropic"), "budget": budget,
               "kernels": len(model.rbf.centres) if u.method in NEURBF_VARIANTS else 0,
               "train_time_s": clock.seconds, "best_round": result.best_epoch, **image_metrics(reconstruction, image)}
        if target["original"].shape[0] > height:
            row["offgrid/psnr"] = offgrid_psnr(model, cfg, ctx, target)
    ctx.log.info("%s: %s", u.method, {k: round(float(v), 4) for k, v in row.items()})
    return [row]


def image_metrics(reconstruction: np.ndarray, image: np.ndarray) -> dict[str, float]:
    return {"test/mse": float(np.mean((reconstruction - image) ** 2)),
            "test/psnr": float(peak_signal_noise_ratio(image, reconstruction, data_range=1.0)),
            "test/ssim": float(structural_similarity(image, reconstruction, data_range=1.0, channel_axis=2))}


def offgrid_psnr(model: torch.nn.Module, cfg: DictConfig, ctx: RunContext, target: dict) -> float:
    """PSNR at the original (finer) image's pixel centres, points the model never saw, against the original."""
    original = target["original"]
    points = pixel_centres(*original.shape[:2])
    x = torch.tensor(points, dtype=torch.float32, device=ctx.device)
    rbf = getattr(model, "rbf", None)
    neighbours = nearest_kernels(rbf.centres, points) if rbf is not None else None
    prediction = torch.cat([model(x[c], None if neighbours is None else neighbours[c])
                            for c in torch.arange(len(x), device=ctx.device).split(65536)]).clamp(0, 1)
    return float(peak_signal_noise_ratio(original, prediction.cpu().numpy().reshape(original.shape).astype(np.float64),
                                         data_range=1.0))


def classical_rbf_row(cfg: DictConfig, ctx: RunContext, target: dict, budget: int) -> dict:
    """The classical inverse-quadratic RBF interpolant (scipy) through the image's values at the kernel centres of
    the no-sinusoid ablation (its weighted k-means, same count), kernel width the mean centre spacing."""
    image, points = target["image"], target["points"]
    height, width, channels_out = image.shape
    kernels = kernel_count(cfg, "neurbf-nosine", image, budget)
    centres = weighted_kmeans_centres(points, target["gradient"], kernels, cfg.model.kmeans_iterations,
                                      ctx.child_seed("kmeans"))
    axes = ((np.arange(height) + 0.5) / height, (np.arange(width) + 0.5) / width)
    values = RegularGridInterpolator(axes, image, bounds_error=False, fill_value=None)(centres[:, ::-1])
    spacing = 1 / math.sqrt(kernels)
    with ctx.stopwatch() as clock:
        interpolant = RBFInterpolator(centres, values, kernel="inverse_quadratic", epsilon=2 / spacing)
        reconstruction = interpolant(points).reshape(height, width, channels_out).clip(0, 1)
    return {"params": kernels * (2 + channels_out), "budget": budget, "kernels": kernels,
            "train_time_s": clock.seconds, **image_metrics(reconstruction, image)}
