"""Memorisation to generalisation in bias-free denoisers, and the geometry of what they learn.

Grid: ``transition/<architecture>`` for each training-set size N (two networks per unit, trained on the
disjoint subsets S1 = first N and S2 = last N images of one pool: their agreement is the measurement), and
``disk/<architecture>`` (one network on disks, a 5-dimensional manifold). Every unit of a replicate shares
the replicate's pool of images.
"""

import numpy as np
import torch
from omegaconf import DictConfig

from repro.core.context import RunContext
from repro.core.errors import ConfigError
from repro.core.train import fit_steps
from repro.core.units import Unit, grid
from repro.papers.diffusion_gahr.analysis import (
    centred_cosine,
    eigen_summary,
    empirical_mmse,
    jacobian,
    nearest_similarity,
    sample,
)
from repro.papers.diffusion_gahr.data import calpha_images, contour_band, disk_images, load_celeba
from repro.papers.diffusion_gahr.models import build_denoiser, denoise

METHODS = ("bf_cnn", "unet")
DATASETS = ("calpha", "celeba")


def units(cfg: DictConfig) -> list[Unit]:
    if cfg.data.dataset not in DATASETS:
        raise ConfigError(f"paper.data.dataset={cfg.data.dataset!r} is unknown; choose one of {DATASETS}")
    largest = max(cfg.data.sizes)
    if 2 * largest > cfg.data.pool:
        raise ConfigError(f"paper.data.pool={cfg.data.pool} cannot hold two disjoint subsets of {largest} images")
    return [*grid("transition", cfg.methods, N=list(cfg.data.sizes)),
            *grid("disk", cfg.methods, N=[cfg.disk.N])]


def run_unit(cfg: DictConfig, ctx: RunContext, u: Unit) -> list[dict]:
    if u.experiment == "disk":
        return disk_rows(cfg, ctx, u.method, u.settings["N"])
    return transition_rows(cfg, ctx, u.method, u.settings["N"])


def image_pool(cfg: DictConfig, ctx: RunContext) -> dict[str, torch.Tensor]:
    """The replicate's pool (subsets are cut from its two ends) and the held-out test images after it."""
    data = cfg.data
    total = data.pool + data.test
    if data.dataset == "celeba":
        images = load_celeba(ctx.data_dir / "celeba", data.size, total)
        band = np.zeros((total, data.size, data.size), bool)  # no contour annotation for faces
    else:
        images, contour = calpha_images(total, data.size, data.alpha, data.beta, ctx.data_seed("pool"))
        band = np.stack([contour_band(c, data.size) for c in contour])
    return {"images": torch.from_numpy(images).unsqueeze(1).to(ctx.device),
            "band": torch.from_numpy(band).to(ctx.device)}


def noise_levels(count: int, train: DictConfig, generator: torch.Generator, device: str) -> torch.Tensor:
    """The official noise law, sigma = (u (sqrt(hi) - sqrt(lo)) + sqrt(lo))^2 with u ~ U(0, 1) (quadratic: small
    noise is drawn more often than a uniform law would), drawn stratified: u_i = (i + U_i) / count, one draw in
    each count-th of [0, 1]. Each sigma still follows the official law; the batch's mix of noise levels, which sets
    the batch std that the bias-free batch norm divides by (and so its running std, used in eval mode), varies
    between batches of 32 about as little as between the official batches of 512."""
    u = (torch.arange(count, device=device).view(count, 1, 1, 1)
         + torch.rand(count, 1, 1, 1, generator=generator, device=device)) / count
    low, high = train.sigma_range
    return (u * (high ** 0.5 - low ** 0.5) + low ** 0.5) ** 2


def train_denoiser(cfg: DictConfig, ctx: RunContext, name: str, architecture: str,
                   images: torch.Tensor) -> torch.nn.Module:
    """Adam on the summed squared error of the predicted noise per image; every N gets the same number of steps
    (the subset is tiled: batches are cut from it however small it is); lr halved every tenth of training."""
    t, device = cfg.train, ctx.device
    torch.manual_seed(ctx.child_seed("init", name))
    net = build_denoiser(architecture, cfg.model.channels, cfg.model.depth).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=t.lr)
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, t.steps // t.halvings), gamma=0.5)
    monitor = images[: cfg.eval.images]
    monitor_noise = torch.randn(monitor.shape, generator=torch.Generator(device=device).manual_seed(
        ctx.child_seed("monitor", name)), device=device)

    def order(epoch: int) -> torch.Tensor:
        generator = torch.Generator(device=device).manual_seed(ctx.child_seed("order", name, epoch))
        return torch.randperm(len(images), generator=generator, device=device)

    def batch_at(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        # The subset tiled and shuffled pass by pass (each image once per pass), cut into batches of batch_size.
        position = torch.arange(step * t.batch_size, (step + 1) * t.batch_size, device=device)
        epoch, offset = position // len(images), position % len(images)
        first = int(epoch[0])
        orders = torch.stack([order(e) for e in range(first, int(epoch[-1]) + 1)])
        chosen = images[orders[epoch - first, offset]]
        generator = torch.Generator(device=device).manual_seed(ctx.child_seed("batch", name, step))
        sigma = noise_levels(t.batch_size, t, generator, device)
        noise = torch.randn(chosen.shape, generator=generator, device=device) * sigma
        return chosen + noise, noise

    def loss_fn(model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        noisy, noise = batch
        return ((model(noisy) - noise) ** 2).sum() / len(noisy)

    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        # Training images at a fixed noise: the objective's plateau (held-out error is what memorisation raises).
        noisy = monitor + cfg.eval.sigma_mse * monitor_noise
        return {"monitor/mse": float(((denoise(model, noisy) - monitor) ** 2).mean())}

    fit_steps(ctx, name, net, optimizer, batch_at, loss_fn, t.steps, max(1, t.steps // t.rounds), evaluate,
              select="monitor/mse", scheduler=schedule)
    return net.eval()


@torch.no_grad()
def mse_at(net: torch.nn.Module, images: torch.Tensor, sigma: float, seed: int) -> float:
    """Mean squared error per pixel of the denoiser at noise std sigma (noise fixed by seed)."""
    noise = torch.randn(images.shape, generator=torch.Generator(device=images.device).manual_seed(seed),
                        device=images.device)
    return float(((denoise(net, images + sigma * noise) - images) ** 2).mean())


def geometry_rows(cfg: DictConfig, ctx: RunContext, net: torch.nn.Module, image: torch.Tensor,
                  band: torch.Tensor, training: torch.Tensor, test: torch.Tensor) -> list[dict]:
    """Per sigma: the Jacobian's trace, asymmetry, eigenvalue range and contour concentration at one held-out
    image, and the train/test MSE (the power law in sigma); plus the leading eigenvalues (spectrum figure)."""
    rows = []
    for sigma in cfg.eval.sigmas:
        noise = torch.randn(image.shape, generator=torch.Generator(device=image.device).manual_seed(
            ctx.child_seed("jacobian", sigma)), device=image.device)
        jac = jacobian(net, image + sigma * noise, cfg.eval.jacobian_chunk)
        summary = eigen_summary(jac, band, cfg.eval.top)
        rows.append({"analysis": "sigma", "sigma": sigma, **summary,
                     "train/mse": mse_at(net, training, sigma, ctx.child_seed("train_mse", sigma)),
                     "test/mse": mse_at(net, test, sigma, ctx.child_seed("test_mse", sigma))})
        values = torch.linalg.eigvalsh((jac + jac.T) / 2).flip(0)[: cfg.eval.spectrum]
        rows += [{"analysis": "spectrum", "sigma": sigma, "k": k, "eigenvalue": float(v)}
                 for k, v in enumerate(values)]
    return rows


def transition_rows(cfg: DictConfig, ctx: RunContext, architecture: str, n: int) -> list[dict]:
    pool = ctx.shared("pool", lambda: image_pool(cfg, ctx))
    images, size = pool["images"], cfg.data.size
    subsets = [images[:n], images[cfg.data.pool - n: cfg.data.pool]]
    test = images[cfg.data.pool:]
    nets = [train_denoiser(cfg, ctx, f"s{k + 1}", architecture, s) for k, s in enumerate(subsets)]
    e = cfg.eval
    with torch.no_grad():
        # (i) one noisy held-out image through both networks, and the memorising oracle of each subset.
        noise = torch.randn(test.shape, generator=torch.Generator(device=ctx.device).manual_seed(
            ctx.child_seed("similarity")), device=ctx.device)
        noisy = test + e.sigma_similarity * noise
        sigma = torch.full((len(test),), e.sigma_similarity, device=ctx.device)
        denoised = [denoise(net, noisy) for net in nets]
        oracle = [empirical_mmse(noisy, s, sigma) for s in subsets]
        # (ii) samples from the same initial noise and the same noise at every step.
        seed = ctx.child_seed("sampler")
        samples = [sample(net, e.samples, size, seed, e.sampler.h0, e.sampler.beta, e.sampler.sigma_end,
                          e.sampler.max_steps, ctx.device) for net in nets]
        train_mse = np.mean([mse_at(net, s[: e.images], e.sigma_mse, ctx.child_seed("train_mse"))
                             for net, s in zip(nets, subsets)])
        test_mse = np.mean([mse_at(net, test, e.sigma_mse, ctx.child_seed("test_mse")) for net in nets])
    row = {
        "analysis": "transition",
        "denoise/cross_similarity": float(centred_cosine(*denoised).diagonal().mean()),
        "denoise/nearest_train_similarity": float(np.mean(
            [nearest_similarity(d, s).mean().item() for d, s in zip(denoised, subsets)])),
        "oracle/similarity": float(np.mean([centred_cosine(d, o).diagonal().mean().item()
                                            for d, o in zip(denoised, oracle)])),
        "sample/cross_similarity": float(centred_cosine(*samples).diagonal().mean()),
        "sample/nearest_train_similarity": float(np.mean(
            [nearest_similarity(x, s).mean().item() for x, s in zip(samples, subsets)])),
        "train/mse": float(train_mse), "test/mse": float(test_mse),
        "generalisation_gap": float((test_mse - train_mse) / test_mse),
    }
    row["memorisation_margin"] = row["sample/nearest_train_similarity"] - row["sample/cross_similarity"]
    ctx.log.info("N=%d: %s", n, {k: round(v, 3) for k, v in row.items() if isinstance(v, float)})
    return [row, *geometry_rows(cfg, ctx, nets[0], test[0], pool["band"][cfg.data.pool], subsets[0][: e.images],
                                test)]


def disk_rows(cfg: DictConfig, ctx: RunContext, architecture: str, n: int) -> list[dict]:
    """Disks: a 5-parameter family (centre x, y, radius, two grey levels) where an optimal denoiser at small
    noise projects onto the 5-dimensional tangent space (trace J -> 5); a harmonic bias keeps it far larger."""
    d = cfg.disk
    images, band = disk_images(n + cfg.data.test, cfg.data.size, d.supersample, d.min_radius,
                               ctx.data_seed("disks"))
    images = torch.from_numpy(images).unsqueeze(1).to(ctx.device)
    band = torch.from_numpy(band).to(ctx.device)
    training, test = images[:n], images[n:]
    net = train_denoiser(cfg, ctx, "", architecture, training)
    with torch.no_grad():
        rows = geometry_rows(cfg, ctx, net, test[0], band[n], training[: cfg.eval.images], test)
    for row in rows:
        if row["analysis"] == "sigma":
            row["trace_over_manifold_dim"] = row["trace"] / d.manifold_dim
    return rows
