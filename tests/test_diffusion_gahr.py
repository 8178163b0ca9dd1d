"""diffusion_gahr: bias-free homogeneity f(y) = J(y) y, the empirical MMSE denoiser against Tweedie's formula
and SURE, the sampler's direction on a known denoiser, the generators against the official formulas, and
CelebA reading from JPEG files."""

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image
from sklearn.metrics.pairwise import cosine_similarity

from repro.core.context import RunContext
from repro.core.errors import DataUnavailableError
from repro.core.units import Unit
from repro.papers.diffusion_gahr import task
from repro.papers.diffusion_gahr.analysis import (
    centred_cosine,
    eigen_summary,
    empirical_mmse,
    jacobian,
    nearest_similarity,
    sample,
)
from repro.papers.diffusion_gahr.data import calpha_images, disk_images, inverse_frequency, load_celeba
from repro.papers.diffusion_gahr.models import BiasFreeBatchNorm, build_denoiser, denoise
from repro.papers.diffusion_gahr.task import mse_at, noise_levels


def trained_like(architecture: str, channels: int, depth: int, size: int) -> torch.nn.Module:
    """A network whose running statistics moved away from 1 (a few training-mode passes), then in eval mode."""
    torch.manual_seed(0)
    net = build_denoiser(architecture, channels, depth)
    with torch.no_grad():
        for _ in range(3):
            net(torch.rand(8, 1, size, size))
    return net.eval()


@pytest.mark.parametrize("architecture,depth", [("bf_cnn", 5), ("unet", 2)])
def test_bias_free_denoiser_is_its_jacobian_times_input(architecture: str, depth: int) -> None:
    net = trained_like(architecture, 8, depth, 8)
    y = torch.rand(1, 1, 8, 8, dtype=torch.float32)
    jac = jacobian(net, y[0])
    assert torch.allclose(jac @ y.flatten(), denoise(net, y).flatten(), atol=1e-5)
    with torch.no_grad():
        assert torch.allclose(denoise(net, 3.0 * y), 3.0 * denoise(net, y), atol=1e-5)


def test_homogeneity_fails_with_a_bias() -> None:
    """The identity above is a property of bias-freeness: one conv bias breaks it (so the test can fail)."""
    net = trained_like("bf_cnn", 8, 5, 8)
    with torch.no_grad():
        net.body[-1].bias = torch.nn.Parameter(torch.full((1,), 0.1))
    y = torch.rand(1, 1, 8, 8)
    assert not torch.allclose(jacobian(net, y[0]) @ y.flatten(), denoise(net, y).flatten(), atol=1e-3)


def test_jacobian_matches_autograd_functional() -> None:
    net = trained_like("bf_cnn", 4, 4, 6)
    y = torch.rand(1, 1, 6, 6)
    expected = torch.autograd.functional.jacobian(lambda v: denoise(net, v.view(1, 1, 6, 6)).flatten(), y.flatten())
    assert torch.allclose(jacobian(net, y[0], chunk=5), expected, atol=1e-6)


def test_bias_free_batch_norm_divides_by_std_without_centring() -> None:
    norm = BiasFreeBatchNorm(3)
    x = torch.randn(16, 3, 4, 4) * torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1) + 5.0
    out = norm(x)
    sd = x.permute(1, 0, 2, 3).reshape(3, -1).std(1, unbiased=False)
    expected = x / torch.sqrt(sd ** 2 + 1e-5).view(1, 3, 1, 1) * norm.gammas
    assert torch.allclose(out, expected, atol=1e-5)
    assert torch.allclose(norm.running_sd.flatten(), 0.9 + 0.1 * torch.sqrt(sd ** 2 + 1e-5), atol=1e-5)


def test_bias_free_batch_norm_eval_mode_is_training_mode_at_its_fixed_point() -> None:
    """After many training passes on one batch the running std is that batch's std (momentum 0.1: 0.9^300 left
    of the start), so eval mode must give the training-mode output on that batch."""
    norm = BiasFreeBatchNorm(2)
    x = torch.randn(8, 2, 3, 3, generator=torch.Generator().manual_seed(0)) * torch.tensor([3.0, 0.2]).view(1, 2, 1, 1)
    with torch.no_grad():
        for _ in range(300):
            trained = norm(x)
        norm.eval()
        assert torch.allclose(norm(x), trained, rtol=1e-5, atol=1e-7)


def log_mixture_density(y: torch.Tensor, points: torch.Tensor, sigma: float) -> torch.Tensor:
    """log p(y) for p = (1/K) sum_i N(x_i, sigma^2 I), up to a constant."""
    return torch.logsumexp(-((y[:, None, :] - points[None]) ** 2).sum(-1) / (2 * sigma ** 2), dim=1)


def test_empirical_mmse_is_tweedie_on_the_mixture() -> None:
    """Tweedie: E[x | y] = y + sigma^2 grad log p_sigma(y), p_sigma the training set blurred by the noise."""
    torch.manual_seed(1)
    points = torch.rand(5, 6, dtype=torch.float64)
    sigma = 0.3
    y = (points[torch.tensor([0, 3, 4])] + sigma * torch.randn(3, 6, dtype=torch.float64)).requires_grad_()
    score = torch.autograd.grad(log_mixture_density(y, points, sigma).sum(), y)[0]
    expected = y + sigma ** 2 * score
    got = empirical_mmse(y.detach().view(3, 1, 2, 3), points.view(5, 1, 2, 3),
                         torch.full((3,), sigma, dtype=torch.float64))
    assert torch.allclose(got.flatten(1), expected.detach(), atol=1e-10)


def test_empirical_mmse_sure_matches_true_error() -> None:
    """SURE: E||y - f(y)||^2 - n sigma^2 + 2 sigma^2 tr J = E||f(y) - x||^2 (Monte Carlo over x and noise)."""
    generator = torch.Generator().manual_seed(2)
    points = torch.rand(4, 4, generator=generator, dtype=torch.float64)
    sigma, count, n = 0.25, 400, 4
    clean = points[torch.randint(4, (count,), generator=generator)]
    noisy = clean + sigma * torch.randn(count, n, generator=generator, dtype=torch.float64)

    def f(v: torch.Tensor) -> torch.Tensor:
        return empirical_mmse(v.view(1, 1, 2, 2), points.view(4, 1, 2, 2),
                              torch.tensor([sigma], dtype=torch.float64)).flatten()

    traces = torch.stack([torch.trace(torch.func.jacrev(f)(v)) for v in noisy])
    denoised = torch.stack([f(v) for v in noisy])
    sure = ((noisy - denoised) ** 2).sum(1) - n * sigma ** 2 + 2 * sigma ** 2 * traces
    true = ((denoised - clean) ** 2).sum(1)
    assert abs(sure.mean() - true.mean()) < 3 * float((sure - true).std() / count ** 0.5) + 1e-3


def test_empirical_mmse_snaps_to_nearest_image_at_small_noise() -> None:
    points = torch.tensor([[0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    y = torch.tensor([[0.3, 0.2, 0.4, 0.1]])
    got = empirical_mmse(y.view(1, 1, 2, 2), points.view(2, 1, 2, 2), torch.tensor([0.05]))
    assert torch.allclose(got.flatten(), points[0], atol=1e-6)


class KnownDenoiser(torch.nn.Module):
    """The exact MMSE denoiser of a one-image distribution: the residual y - x0 (what the network predicts)."""

    def __init__(self, image: torch.Tensor) -> None:
        super().__init__()
        self.image = image

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return y - self.image


def test_sampler_reaches_the_image_of_a_one_image_distribution() -> None:
    image = torch.rand(1, 1, 6, 6)
    out = sample(KnownDenoiser(image), 3, 6, seed=5, h0=0.05, beta=0.5, sigma_end=0.01, max_steps=200, device="cpu")
    assert torch.allclose(out, image.expand(3, 1, 6, 6), atol=1e-5)


class RecordingDenoiser(KnownDenoiser):
    """The one-image denoiser, recording the effective noise std ||y - x0|| / sqrt(n) of each sample at each call."""

    def __init__(self, image: torch.Tensor) -> None:
        super().__init__(image)
        self.sigmas: list[torch.Tensor] = []

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        self.sigmas.append((y - self.image).flatten(1).norm(dim=1) / y[0].numel() ** 0.5)
        return y - self.image


def test_sampler_shrinks_the_effective_noise_by_one_minus_beta_h() -> None:
    """Kadkhodaie & Simoncelli (2021): with an exact denoiser, y <- y - h d + gamma z leaves noise of variance
    (1 - h)^2 sigma^2 + gamma^2 = (1 - beta h)^2 sigma^2, with h_t = h0 t / (1 + h0 (t - 1)). On 64 x 64 images the
    per-step ratio of the measured sigmas concentrates to within about 1% of 1 - beta h_t."""
    h0, beta = 0.3, 0.5
    net = RecordingDenoiser(torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(1)))
    sample(net, 4, 64, seed=3, h0=h0, beta=beta, sigma_end=1e-6, max_steps=6, device="cpu")
    sigmas = torch.stack(net.sigmas[:6])
    t = torch.arange(1, 6, dtype=torch.float32)
    expected = 1 - beta * h0 * t / (1 + h0 * (t - 1))
    ratios = (sigmas[1:] / sigmas[:-1]).mean(1)
    assert torch.allclose(ratios, expected, rtol=0.02)


def test_sampler_gives_both_networks_the_same_noise() -> None:
    """Same seed, same network: identical samples; a different seed: different samples."""
    net = trained_like("bf_cnn", 4, 3, 6)
    a = sample(net, 2, 6, seed=7, h0=0.05, beta=0.5, sigma_end=0.01, max_steps=30, device="cpu")
    b = sample(net, 2, 6, seed=7, h0=0.05, beta=0.5, sigma_end=0.01, max_steps=30, device="cpu")
    c = sample(net, 2, 6, seed=8, h0=0.05, beta=0.5, sigma_end=0.01, max_steps=30, device="cpu")
    assert torch.equal(a, b) and not torch.allclose(a, c)


def test_centred_cosine_matches_sklearn() -> None:
    a, b = torch.rand(4, 1, 3, 3, dtype=torch.float64), torch.rand(5, 1, 3, 3, dtype=torch.float64)
    flat_a, flat_b = a.flatten(1).numpy(), b.flatten(1).numpy()
    expected = cosine_similarity(flat_a - flat_a.mean(1, keepdims=True), flat_b - flat_b.mean(1, keepdims=True))
    assert np.allclose(centred_cosine(a, b).numpy(), expected)


def test_nearest_similarity_is_the_best_training_match_of_each_image() -> None:
    images, training = torch.rand(3, 1, 2, 3, dtype=torch.float64), torch.rand(7, 1, 2, 3, dtype=torch.float64)
    flat_a, flat_b = images.flatten(1).numpy(), training.flatten(1).numpy()
    expected = cosine_similarity(flat_a - flat_a.mean(1, keepdims=True), flat_b - flat_b.mean(1, keepdims=True))
    assert np.allclose(nearest_similarity(images, training).numpy(), expected.max(axis=1))


def test_eigen_summary_of_an_asymmetric_jacobian_uses_its_symmetric_part() -> None:
    rng = np.random.default_rng(5)
    jac = rng.normal(size=(6, 6))
    band = np.array([[True, False, False], [False, True, False]])
    summary = eigen_summary(torch.tensor(jac), torch.tensor(band), top=2)
    values, vectors = np.linalg.eigh((jac + jac.T) / 2)
    assert summary["eig_min"] == pytest.approx(values[0]) and summary["eig_max"] == pytest.approx(values[-1])
    assert summary["trace"] == pytest.approx(np.trace(jac))
    assert summary["asymmetry"] == pytest.approx(np.linalg.norm(jac - jac.T) / np.linalg.norm(jac))
    energy = (vectors[band.flatten(), -2:] ** 2).sum(0).mean()
    assert summary["contour_energy_ratio"] == pytest.approx(energy / band.mean())


def test_eigen_summary_on_a_known_shrinkage() -> None:
    """J = Q diag(l) Q^T: trace = sum l, symmetric, eigenvalues recovered; a basis concentrated on the band
    gives the band's inverse share as the energy ratio."""
    values = torch.tensor([0.9, 0.5, 0.2, 0.0], dtype=torch.float64)
    band = torch.tensor([[True, False], [False, False]])
    jac = torch.diag(values)  # eigenvectors = pixel indicators; the leading one is pixel 0 (in the band)
    summary = eigen_summary(jac, band, top=1)
    assert summary["trace"] == pytest.approx(1.6) and summary["asymmetry"] == 0.0
    assert summary["eig_max"] == pytest.approx(0.9) and summary["eig_min"] == pytest.approx(0.0)
    assert summary["contour_energy_ratio"] == pytest.approx(4.0)


def test_inverse_frequency_matches_the_official_fftshift_filters() -> None:
    """The official code builds 1/|f|/N on fftshift-ed frequencies and gives the zero frequency its right
    neighbour's value; unshifted, that is 1/|k| with k = 0 -> 1."""
    n = 16
    shifted = np.abs(np.fft.fftshift(np.fft.fftfreq(n)))
    with np.errstate(divide="ignore"):
        official = 1 / shifted / n
    zero = int(np.where(np.isinf(official))[0][0])
    official[zero] = official[zero + 1]
    assert np.allclose(np.fft.ifftshift(official), inverse_frequency(n, 1))
    f = np.fft.fftshift(np.fft.fftfreq(n))
    with np.errstate(divide="ignore"):
        official2 = 1 / np.sqrt(f[:, None] ** 2 + f[None, :] ** 2) / n
    i, j = (int(v[0]) for v in np.where(np.isinf(official2)))
    official2[i, j] = official2[i + 1, j]
    assert np.allclose(np.fft.ifftshift(official2), inverse_frequency(n, 2))


def official_calpha(count: int, size: int, alpha: float, beta: float, seed: int) -> np.ndarray:
    """The official per-image recipe (same random draws, in the same order): contour by a loop over columns
    (clipped first), backgrounds rescaled by min-max, the mask blurred by Conv2d(2x2, padding 1, reflect)
    with its last row and column trimmed."""
    rng = np.random.default_rng(seed)
    u = rng.uniform(-1, 1, (count, size))
    fields = [rng.uniform(-1, 1, (count, size, size)) for _ in range(2)]
    coin, r1, r2 = rng.integers(0, 2, count), rng.uniform(0, 1, count), rng.uniform(0, 1, count)
    k = np.abs(np.fft.fftfreq(size) * size)
    k2 = np.sqrt(k[:, None] ** 2 + k[None, :] ** 2)
    k[0], k2[0, 0] = 1, 1
    box = torch.nn.Conv2d(1, 1, 2, padding=1, padding_mode="reflect", bias=False)
    box.weight.data.fill_(0.25)
    out = []
    for i in range(count):
        c = np.fft.ifft(np.fft.fft(u[i]) * k ** -alpha).real
        c = np.clip(np.round(c * size).astype(int) + size // 2, 0, size)
        b1, b2 = (np.fft.ifft2(np.fft.fft2(f[i]) * k2 ** -beta).real for f in fields)

        def to_range(x: np.ndarray, low: float, high: float) -> np.ndarray:
            return (x - x.min()) / (x.max() - x.min()) * (high - low) + low

        if coin[i] == 1:
            b1, b2 = to_range(b1, r1[i], 1), to_range(b2, 0, r2[i])
        else:
            b1, b2 = to_range(b1, 0, r2[i]), to_range(b2, r1[i], 1)
        mask = np.ones((size, size))
        for j in range(size):
            mask[0:c[j], j] = 0
        with torch.no_grad():
            blurred = box(torch.tensor(mask, dtype=torch.float32)[None, None])[0, 0, :-1, :-1].double().numpy()
        out.append(b1 * blurred + b2 * (1 - blurred))
    return np.stack(out)


def test_calpha_images_match_the_official_loop() -> None:
    images, contour = calpha_images(16, 16, 2.0, 2.0, seed=3)
    assert contour.min() >= 0 and contour.max() <= 16
    assert images.min() >= 0 and images.max() <= 1 + 1e-6
    assert np.allclose(images, official_calpha(16, 16, 2.0, 2.0, seed=3), atol=1e-5)


def test_calpha_seeded_and_distinct() -> None:
    a, _ = calpha_images(4, 16, 2.0, 2.0, seed=9)
    b, _ = calpha_images(4, 16, 2.0, 2.0, seed=9)
    assert np.array_equal(a, b) and not np.allclose(a[0], a[1])


def test_disk_images_hold_two_grey_levels_and_the_disk_area() -> None:
    images, band = disk_images(32, 16, 4, 3.0, seed=4)
    assert images.shape == (32, 16, 16) and images.min() >= 0 and images.max() <= 1
    # Anti-aliased: every pixel lies between the two grey levels (the image's own min and max).
    assert all(len(np.unique(np.round(im, 6))) >= 2 for im in images)
    assert band.any(axis=(1, 2)).all() and not band.all(axis=(1, 2)).any()


def test_stratified_noise_levels_follow_the_official_law() -> None:
    """One level in each 32nd of the quadratic law, and pooled over batches the official marginal law:
    P(sigma <= s) = (sqrt(s) - sqrt(lo)) / (sqrt(hi) - sqrt(lo)) (Kolmogorov-Smirnov distance to it)."""
    train = OmegaConf.create({"sigma_range": [0.01, 0.4]})
    generator = torch.Generator().manual_seed(0)
    batches = torch.stack([noise_levels(32, train, generator, "cpu").flatten() for _ in range(200)])
    u = (batches.sqrt() - 0.1) / (0.4 ** 0.5 - 0.1)
    assert torch.equal(torch.floor(u * 32).long(), torch.arange(32).expand(200, 32))
    pooled = np.sort(batches.flatten().numpy())
    cdf = (np.sqrt(pooled) - 0.1) / (0.4 ** 0.5 - 0.1)
    empirical = np.arange(1, len(pooled) + 1) / len(pooled)
    assert np.abs(cdf - empirical).max() < 0.01


class Identity(torch.nn.Module):
    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return y


def test_training_batches_tile_the_subset_and_the_loss_targets_the_noise(monkeypatch: pytest.MonkeyPatch,
                                                                         tmp_path: Path) -> None:
    """Each step's batch holds every image of a small subset equally often (the subset tiled); its noise has the
    official law's E[sigma^2] = hi^2 E[u^4] = hi^2 / 5 (lo = 0); the loss is the summed squared error of the predicted
    noise per image, so a network that returns its input scores ||clean||^2 per image."""
    cfg = OmegaConf.create({"seed": 0, "scale": {"name": "test"}, "data_dir": str(tmp_path),
                            "train": {"steps": 4, "batch_size": 32, "lr": 1e-3, "halvings": 2, "rounds": 2,
                                      "sigma_range": [0.0, 0.4]},
                            "model": {"channels": 4, "depth": 3}, "eval": {"images": 8, "sigma_mse": 0.2}})
    ctx = RunContext(cfg, tmp_path, "cpu", Unit("transition", "bf_cnn"), logging.getLogger("test"))
    captured = {}
    monkeypatch.setattr(task, "fit_steps", lambda *args, **kwargs: captured.update(batch_at=args[4], loss=args[5]))
    images = torch.rand(8, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    task.train_denoiser(cfg, ctx, "s1", "bf_cnn", images)
    noisy, noise = captured["batch_at"](1)
    clean = noisy - noise
    matches = ((clean[:, None] - images[None]).flatten(2).abs().amax(2) < 1e-6).float()
    assert torch.equal(matches.sum(0), torch.full((8,), 4.0)) and torch.equal(matches.sum(1), torch.ones(32))
    assert float((noise ** 2).mean()) == pytest.approx(0.4 ** 2 / 5, rel=0.15)
    loss = float(captured["loss"](Identity(), (noisy, noise)))
    assert loss == pytest.approx(float((clean ** 2).sum() / 32), rel=1e-5)


def test_transition_subsets_are_disjoint_ends_of_the_pool(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """S1 = the first N and S2 = the last N images of the pool, disjoint (the paper's non-overlapping subsets)."""
    cfg = OmegaConf.create({"seed": 0, "scale": {"name": "test"}, "data_dir": str(tmp_path),
                            "data": {"dataset": "calpha", "size": 8, "alpha": 2.0, "beta": 2.0, "pool": 20, "test": 2}})
    ctx = RunContext(cfg, tmp_path, "cpu", Unit("transition", "bf_cnn"), logging.getLogger("test"))
    subsets = []

    def stop(cfg: object, ctx: object, name: str, architecture: str, images: torch.Tensor) -> None:
        subsets.append(images)
        if len(subsets) == 2:
            raise InterruptedError

    monkeypatch.setattr(task, "train_denoiser", stop)
    with pytest.raises(InterruptedError):
        task.transition_rows(cfg, ctx, "bf_cnn", 6)
    pool, _ = calpha_images(22, 8, 2.0, 2.0, ctx.data_seed("pool"))
    assert np.array_equal(subsets[0][:, 0].numpy(), pool[:6]) and np.array_equal(subsets[1][:, 0].numpy(), pool[14:20])


def test_mse_at_of_the_identity_denoiser_is_the_noise_variance() -> None:
    """A zero noise prediction leaves y: its per-pixel MSE is sigma^2 (chi-square mean over 20 000 pixels)."""

    class Zero(torch.nn.Module):
        def forward(self, y: torch.Tensor) -> torch.Tensor:
            return torch.zeros_like(y)

    images = torch.rand(20, 1, 32, 32, dtype=torch.float64)
    assert mse_at(Zero(), images, 0.3, seed=0) == pytest.approx(0.09, rel=0.05)


def _write_jpegs(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        pixels = rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)  # the aligned CelebA size (h 218, w 178)
        Image.fromarray(pixels).save(folder / f"{i + 1:06d}.jpg", quality=90)


def write_dry_data(data_dir: Path) -> None:
    """24 aligned-CelebA-shaped JPEGs where scale=dry reads them (data/celeba/img_align_celeba)."""
    _write_jpegs(data_dir / "celeba" / "img_align_celeba", 24)


def test_celeba_reader_crops_resizes_and_greys(tmp_path: Path) -> None:
    folder = tmp_path / "celeba" / "img_align_celeba"
    folder.mkdir(parents=True)
    Image.fromarray(np.full((218, 178, 3), [255, 0, 0], np.uint8)).save(folder / "000001.jpg", quality=95)
    Image.fromarray(np.full((218, 178, 3), 128, np.uint8)).save(folder / "000002.jpg", quality=95)
    images = load_celeba(tmp_path / "celeba", 8, 2)
    assert images.shape == (2, 8, 8)
    assert images[0].mean() == pytest.approx(0.299, abs=0.02)  # ITU-R 601 luminance of pure red
    assert images[1].mean() == pytest.approx(128 / 255, abs=0.02)


def test_celeba_missing_or_short_says_what_to_fetch(tmp_path: Path) -> None:
    with pytest.raises(DataUnavailableError, match="img_align_celeba.zip"):
        load_celeba(tmp_path / "celeba", 8, 2)
    _write_jpegs(tmp_path / "celeba" / "img_align_celeba", 2)
    with pytest.raises(DataUnavailableError, match="fewer than"):
        load_celeba(tmp_path / "celeba", 8, 5)
