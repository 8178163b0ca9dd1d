"""NeuRBF: the inverse-quadratic kernel against scipy's RBFInterpolator, the hash grid's layout, hashing and
bilinear interpolation, the kernel initialisation (weighted k-means, cluster shapes, lattice), nearest kernels
against brute force, the pixel convention, the Sobel weights, the parameter budget, metrics against
scikit-image, and DIV2K parsing."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from scipy.interpolate import RBFInterpolator
from skimage import io
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from repro.core.errors import DataUnavailableError
from repro.papers.neurbf import task
from repro.papers.neurbf.data import gradient_magnitude, load_div2k, pixel_centres
from repro.papers.neurbf.fields import (
    HASH_PRIME,
    MultiResolutionGrid,
    NeuRBFDecoder,
    RBFLayer,
    Siren,
    count_parameters,
    grid_layout,
    inverse_quadratic,
)
from repro.papers.neurbf.kernels import cluster_shapes, lattice_kernels, nearest_kernels, weighted_kmeans_centres

CONFIG = Path(__file__).resolve().parents[1] / "conf" / "paper" / "neurbf.yaml"


def write_dry_data(data_dir: Path) -> None:
    """Two small 8-bit RGB PNGs where the DIV2K loader reads them (data/div2k/DIV2K_valid_HR/0801.png, ...)."""
    folder = data_dir / "div2k" / "DIV2K_valid_HR"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:48, 0:64]
    for name in ("0801", "0802"):
        smooth = np.stack([np.sin(x / 5 + rng.uniform()), np.cos(y / 7), np.sin((x + y) / 9)], -1)
        io.imsave(folder / f"{name}.png", ((smooth + 1) * 127.5).astype(np.uint8), check_contrast=False)


@pytest.mark.parametrize("epsilon", [3.0, 11.0])
def test_isotropic_kernel_matches_scipy_inverse_quadratic(epsilon: float) -> None:
    """scipy's inverse_quadratic is 1 / (1 + (eps r)^2): our kernel with A = eps^2 I, solved for the same
    interpolation coefficients, must predict what RBFInterpolator predicts."""
    rng = np.random.default_rng(0)
    centres, values, queries = rng.uniform(size=(30, 2)), rng.normal(size=30), rng.uniform(size=(50, 2))
    scipy_prediction = RBFInterpolator(centres, values, kernel="inverse_quadratic", epsilon=epsilon, degree=-1)(queries)

    def kernel_matrix(points: np.ndarray, shape: torch.Tensor) -> np.ndarray:
        offset = torch.tensor(points[:, None, :] - centres[None], dtype=torch.float64)
        return inverse_quadratic(offset, shape.expand(*offset.shape[:2], *shape.shape)).numpy()

    for shape in (torch.eye(2, dtype=torch.float64) * epsilon**2, torch.tensor([epsilon**2], dtype=torch.float64)):
        coefficients = np.linalg.solve(kernel_matrix(centres, shape), values)
        np.testing.assert_allclose(kernel_matrix(queries, shape) @ coefficients, scipy_prediction, atol=1e-8)


def test_anisotropic_kernel_is_the_quadratic_form() -> None:
    rotation = torch.tensor([[math.cos(0.3), -math.sin(0.3)], [math.sin(0.3), math.cos(0.3)]], dtype=torch.float64)
    shape = rotation @ torch.diag(torch.tensor([100.0, 4.0], dtype=torch.float64)) @ rotation.T
    along_narrow = 0.1 * rotation[:, 0]  # d^T A d = 100 * 0.01 = 1
    along_wide = 0.5 * rotation[:, 1]    # 4 * 0.25 = 1
    for offset in (along_narrow, along_wide):
        assert inverse_quadratic(offset, shape).item() == pytest.approx(0.5)


def test_rbf_layer_normalises_over_neighbours_and_composes_sinusoids() -> None:
    centres = torch.tensor([[0.2, 0.2], [0.8, 0.2], [0.2, 0.8], [0.8, 0.8]])
    shapes = torch.eye(2).expand(4, 2, 2) * 25.0
    omegas = torch.tensor([1.0, 8.0])
    layer = RBFLayer(centres, shapes, 2, omegas)
    with torch.no_grad():
        layer.weights.copy_(torch.arange(8.0).view(4, 2))
    x = torch.tensor([[0.3, 0.4]])
    neighbours = torch.arange(4).view(1, 4)
    phi = 1 / (1 + 25.0 * ((x - centres) ** 2).sum(1))
    phi = phi / phi.sum()
    expected = (layer.weights * torch.sin(phi[:, None] * omegas)).sum(0)
    torch.testing.assert_close(layer(x, neighbours)[0], expected)


def test_dense_grid_interpolates_a_linear_function_exactly() -> None:
    grid = MultiResolutionGrid(levels=1, features=1, base=8, finest=8, table_size=2**20)
    (resolution,), (scale,) = grid.resolutions, grid.scales
    i, j = np.meshgrid(np.arange(resolution + 1), np.arange(resolution + 1), indexing="xy")
    with torch.no_grad():  # vertex (gx, gy) sits at index gx + gy (r + 1) and holds 2 gx - 3 gy
        grid.table[: (resolution + 1) ** 2, 0] = torch.tensor((2 * i - 3 * j).ravel(), dtype=torch.float32)
    x = torch.rand(100, 2)
    position = x * scale + 0.5
    torch.testing.assert_close(grid(x)[:, 0], 2 * position[:, 0] - 3 * position[:, 1], atol=1e-4, rtol=0)


def test_hashed_level_uses_the_instant_ngp_hash() -> None:
    grid = MultiResolutionGrid(levels=2, features=1, base=4, finest=64, table_size=64)
    assert grid.hashed == [False, True] and grid.sizes == [32, 64] and grid.resolutions == [4, 64]
    gx, gy = 10, 7
    slot = (gx ^ ((gy * HASH_PRIME) & 0xFFFFFFFF)) % 64 + grid.offsets[1]
    with torch.no_grad():
        grid.table.zero_()
        grid.table[slot] = 1.0
    # a query exactly on vertex (10, 7) of level 1 reads only that vertex
    x = (torch.tensor([[gx, gy]], dtype=torch.float32) - 0.5) / grid.scales[1]
    assert grid(x)[0, 1].item() == pytest.approx(1.0, abs=1e-4)


def test_weighted_kmeans_follows_the_weights() -> None:
    points = pixel_centres(32, 32)
    weights = np.where(points[:, 0] > 0.75, 1.0, 0.01)  # an edge region holds most weight
    centres = weighted_kmeans_centres(points, weights, 40, 10, seed=0)
    assert (centres[:, 0] > 0.7).mean() > 0.6


def test_cluster_shapes_are_twice_the_weighted_covariance_inverted() -> None:
    rng = np.random.default_rng(1)
    points = np.concatenate([rng.normal([0.3, 0.3], [0.05, 0.01], (400, 2)), rng.normal([0.7, 0.7], 0.02, (400, 2))])
    weights = rng.uniform(0.5, 1.5, 800)
    centres = np.array([[0.3, 0.3], [0.7, 0.7]])
    shapes = cluster_shapes(centres, points, weights, isotropic=False, pixel=1 / 256)
    first = points[:400] - centres[0]
    covariance = (weights[:400, None, None] * first[:, :, None] * first[:, None, :]).sum(0) / weights[:400].sum()
    # the official kw_init 'v3': A = (2 Cov)^-1
    np.testing.assert_allclose(np.linalg.inv(shapes[0]), 2 * covariance, rtol=1e-6)
    assert np.linalg.eigvalsh(shapes[1]).min() > 0
    isotropic = cluster_shapes(centres, points, weights, isotropic=True, pixel=1 / 256)
    np.testing.assert_allclose(1 / isotropic[0, 0], 2 * np.trace(covariance), rtol=1e-6)


def test_lattice_kernels() -> None:
    centres, shapes = lattice_kernels(30)
    assert len(centres) == 25 and centres.min() == 0 and centres.max() == 1
    np.testing.assert_allclose(shapes[0], np.eye(2) / (0.25 / 2) ** 2)


def test_nearest_kernels_match_brute_force() -> None:
    rng = np.random.default_rng(2)
    centres, points = torch.tensor(rng.uniform(size=(50, 2))), rng.uniform(size=(200, 2))
    ours = nearest_kernels(centres, points).numpy()
    brute = np.argsort(((points[:, None] - centres.numpy()[None]) ** 2).sum(-1), 1)[:, :4]
    assert np.array_equal(np.sort(ours, 1), np.sort(brute, 1))


def test_pixel_convention_places_a_known_pixel() -> None:
    points = pixel_centres(4, 8)
    row, column = 3, 5
    np.testing.assert_allclose(points[row * 8 + column], [(column + 0.5) / 8, (row + 0.5) / 4])


def test_sobel_weights_measure_the_slope() -> None:
    ramp = np.tile(np.arange(16.0) * 0.02, (16, 1))[..., None]  # slope 0.02 per pixel along x
    magnitude = gradient_magnitude(ramp).reshape(16, 16)
    np.testing.assert_allclose(magnitude[2:-2, 2:-2], 0.02, rtol=1e-9)


@pytest.mark.parametrize("height,width,batch", [(256, 256, 7282), (37, 53, 100), (48, 64, 1024)])
def test_stratified_sampling_covers_each_pixel_once_per_epoch(height: int, width: int, batch: int) -> None:
    """The official train_shuffle_mode 2: blocks of floor(sqrt(H W / batch)) pixels a side, one pixel of every block
    per step, so that the block^2 steps of an epoch visit every pixel exactly once, in an order set by the seed."""
    block = task.stratified_block(height, width, batch)
    assert block == math.isqrt(height * width // batch)
    steps = [task.stratified_batch(height, width, block, k, seed=7) for k in range(block**2)]
    assert torch.equal(torch.cat(steps).sort().values, torch.arange(height * width))
    for indices in steps:  # one pixel per block: the tiles of the step's pixels are all different
        tiles = (indices // width // block) * width + (indices % width) // block
        assert len(tiles.unique()) == len(tiles)
        full_tiles = (height // block) * (width // block)  # tiles not cut by the border give a pixel every step
        assert full_tiles <= len(tiles) <= -(-height // block) * -(-width // block)
    if block > 1:  # another epoch's seed visits the pixels in another order
        assert not torch.equal(steps[0], task.stratified_batch(height, width, block, 0, seed=8))


def test_every_model_fits_the_reference_budget() -> None:
    cfg = OmegaConf.load(CONFIG)
    image = np.zeros((256, 256, 1))
    budget = task.reference_budget(cfg, image)
    per_kernel = {"neurbf-isotropic": cfg.model.channels + 3}
    for method in ("neurbf", "neurbf-isotropic", "neurbf-nogrid", "neurbf-nosine"):
        kernels = task.kernel_count(cfg, method, image, budget)
        centres, shapes = lattice_kernels(kernels)
        rbf = RBFLayer(torch.rand(kernels, 2), torch.eye(2).expand(kernels, 2, 2), cfg.model.channels, None)
        _, _, _, hybrid = task.NEURBF_VARIANTS[method]
        grid = MultiResolutionGrid(2, 2, 16, 128, 2**cfg.model.log2_table) if hybrid else None
        model = task.NeuRBF(rbf, grid, task.NeuRBFDecoder((4 if hybrid else 0) + cfg.model.channels, cfg.model.hidden,
                                                          1, (10.0, 100.0)))
        params = count_parameters(model, isotropic=method == "neurbf-isotropic")
        assert budget - per_kernel.get(method, cfg.model.channels + 5) < params <= budget, method
    dense = task.dense_grid_for_budget(cfg, image, budget)
    assert not any(dense.hashed) and dense.table.numel() < budget
    siren_width = task.siren_width_for_budget(cfg, budget, 1)
    assert budget - 400 < sum(p.numel() for p in task.Siren(siren_width, 3, 1).parameters()) <= budget


def test_metrics_are_scikit_image_psnr_and_ssim() -> None:
    rng = np.random.default_rng(3)
    image = rng.uniform(size=(32, 32, 1))
    noisy = np.clip(image + rng.normal(0, 0.05, image.shape), 0, 1)
    metrics = task.image_metrics(noisy, image)
    assert metrics["test/psnr"] == pytest.approx(10 * math.log10(1 / np.mean((noisy - image) ** 2)))
    assert metrics["test/psnr"] == pytest.approx(peak_signal_noise_ratio(image, noisy, data_range=1.0))
    assert metrics["test/ssim"] == pytest.approx(structural_similarity(image[..., 0], noisy[..., 0], data_range=1.0))


def test_div2k_parsing_and_offline_message(tmp_path: Path) -> None:
    with pytest.raises(DataUnavailableError, match="DIV2K_valid_HR.zip"):
        load_div2k(tmp_path / "div2k", 2)
    write_dry_data(tmp_path)
    images = load_div2k(tmp_path / "div2k", 5)
    assert [name for name, _ in images] == ["0801", "0802"]
    assert images[0][1].shape == (48, 64, 3) and 0 <= images[0][1].min() and images[0][1].max() <= 1
    io.imsave(tmp_path / "div2k" / "DIV2K_valid_HR" / "0803.png", np.zeros((20, 20), np.uint8), check_contrast=False)
    with pytest.raises(DataUnavailableError, match="8-bit RGB"):
        load_div2k(tmp_path / "div2k", 5)


def test_decoder_adds_a_log_spaced_sine_after_the_first_layer() -> None:
    """out = W3 relu(W2 (h + sin(omega' h)) + b2) + b3 with h = W1 x + b1 and omega' = numpy.geomspace(10, 100)."""
    torch.manual_seed(0)
    decoder = NeuRBFDecoder(5, 8, 3, (10.0, 100.0)).double()
    x = torch.randn(6, 5, dtype=torch.float64)
    W = [(layer.weight.detach().numpy(), layer.bias.detach().numpy())
         for layer in (decoder.first, decoder.second, decoder.out)]
    h = x.numpy() @ W[0][0].T + W[0][1]
    h = h + np.sin(h * np.geomspace(10, 100, 8))
    expected = np.maximum(h @ W[1][0].T + W[1][1], 0) @ W[2][0].T + W[2][1]
    np.testing.assert_allclose(decoder(x).detach().numpy(), expected, atol=1e-5)  # omega' stored in float32


def test_rbf_frequencies_are_log_spaced_over_the_configured_range() -> None:
    cfg = OmegaConf.load(CONFIG)
    image = np.zeros((64, 64, 1))
    target = {"image": image, "points": pixel_centres(64, 64)}
    model = task.build_neurbf(cfg, None, "neurbf-regular", target, task.reference_budget(cfg, image))
    expected = np.geomspace(*cfg.model.rbf_omegas, cfg.model.channels)
    np.testing.assert_allclose(model.rbf.omegas.numpy(), expected, rtol=1e-5)


def test_grid_layout_follows_torch_ngp() -> None:
    """torch-ngp's grid encoder: per-level growth b = (finest / base)^(1 / (levels - 1)), position scale
    base b^l - 1 and resolution ceil(base b^l): base 16, finest 100, 3 levels gives b = 2.5."""
    scales, resolutions, _, _ = grid_layout(3, 16, 100, 2**30)
    np.testing.assert_allclose(scales, [15.0, 39.0, 99.0])
    assert resolutions == [16, 40, 100]


def test_cosine_schedule_decays_to_one_hundredth() -> None:
    """Cosine annealing (SGDR, eta_min = 0.01 eta_0): 1 at the start, 0.01 at the end and after, 0.505 halfway,
    and point-symmetric about the midpoint: f(t) + f(T - t) = 1.01."""
    f = task.cosine_to_one_hundredth
    assert f(0, 50) == pytest.approx(1.0) and f(50, 50) == pytest.approx(0.01) and f(70, 50) == pytest.approx(0.01)
    assert f(25, 50) == pytest.approx(0.505)
    for step in range(51):
        assert f(step, 50) + f(50 - step, 50) == pytest.approx(1.01)
    assert f(10, 50) == pytest.approx(0.01 + 0.99 * math.cos(math.pi * 10 / 100) ** 2)  # (1 + cos 2u) / 2 = cos^2 u


def test_siren_baseline_is_sin_of_thirty_times_the_affine_map() -> None:
    """h0 = 2 x - 1 (inputs on [-1, 1]), h_{k+1} = sin(30 (W h_k + b)), out = W h + b."""
    torch.manual_seed(0)
    net = Siren(hidden=6, layers=2, dim_out=1).double()
    x = torch.rand(5, 2, dtype=torch.float64)
    h = 2 * x.numpy() - 1
    for layer in net.layers:
        h = np.sin(30 * (h @ layer.weight.detach().numpy().T + layer.bias.detach().numpy()))
    expected = h @ net.out.weight.detach().numpy().T + net.out.bias.detach().numpy()
    np.testing.assert_allclose(net(x).detach().numpy(), expected, atol=1e-12)


def test_classical_rbf_samples_the_image_at_the_centres_row_y_column_x(monkeypatch, tmp_path) -> None:
    """The classical baseline's interpolation data: the image's value at each kernel centre (x, y). On a 12 x 16
    image whose channels are affine in the pixel-centre coordinates (y = (row + 0.5) / 12 in channel 0,
    x = (col + 0.5) / 16 in channel 1; bilinear sampling is exact for them) the values handed to scipy's
    RBFInterpolator must be (y, x / 2 + 1/4) of the centres, in closed form."""
    import logging

    from repro.core.context import RunContext
    from repro.core.units import Unit

    cfg = OmegaConf.merge(OmegaConf.load(CONFIG), {"seed": 0, "scale": {"name": "test"}, "data_dir": str(tmp_path)})
    rows, cols = np.mgrid[0:12, 0:16]
    image = np.stack([(rows + 0.5) / 12, (cols + 0.5) / 16 / 2 + 0.25], -1)
    target = {"image": image, "points": pixel_centres(12, 16), "gradient": gradient_magnitude(image)}
    budget = next(b for b in range(0, 10**6, 10) if task.kernel_count(cfg, "neurbf-nosine", image, b) >= 24)
    seen = []

    def recording(centres: np.ndarray, values: np.ndarray, **options) -> RBFInterpolator:
        seen.append((centres, values))
        return RBFInterpolator(centres, values, **options)

    monkeypatch.setattr(task, "RBFInterpolator", recording)
    ctx = RunContext(cfg, tmp_path, "cpu", Unit("fit", "classical-rbf"), logging.getLogger("test"))
    row = task.classical_rbf_row(cfg, ctx, target, budget)
    (centres, values), = seen
    assert row["kernels"] == len(centres) >= 24
    np.testing.assert_allclose(values, np.stack([centres[:, 1], centres[:, 0] / 2 + 0.25], 1), atol=1e-12)


def test_div2k_archive_is_unzipped_where_the_loader_reads(tmp_path: Path) -> None:
    """A DIV2K_valid_HR.zip already at the download destination is used as is (no network) and unzipped into
    div2k/DIV2K_valid_HR/; a file there that is not a zip fails with a message naming the download."""
    import zipfile

    from repro.papers.neurbf.data import fetch_div2k

    write_dry_data(tmp_path / "source")
    directory = tmp_path / "data" / "div2k"
    directory.mkdir(parents=True)
    with zipfile.ZipFile(directory / "DIV2K_valid_HR.zip", "w") as archive:
        for name in ("0801", "0802"):
            archive.write(tmp_path / "source" / "div2k" / "DIV2K_valid_HR" / f"{name}.png",
                          f"DIV2K_valid_HR/{name}.png")
    fetch_div2k(directory)
    assert [name for name, _ in load_div2k(directory, 5)] == ["0801", "0802"]
    broken = tmp_path / "broken" / "div2k"
    broken.mkdir(parents=True)
    (broken / "DIV2K_valid_HR.zip").write_bytes(b"not a zip")
    with pytest.raises(DataUnavailableError, match="DIV2K_valid_HR.zip"):
        fetch_div2k(broken)
