"""AF-KAN: the basis against its closed form (support, peak), the B-spline baseline against pykan, parameter and
FLOP counts against hand counts and torch's FlopCounterMode, L2MM and the attention, and the IDX loader on files
written in the real format."""

from pathlib import Path

import numpy as np
import pytest
import torch
from kan.KANLayer import KANLayer
from kan.spline import B_batch
from torch.utils.flop_counter import FlopCounterMode

from repro.core.errors import DataUnavailableError
from repro.papers.afkan.data import digits_splits, load_idx_dataset
from repro.papers.afkan.models import (
    AFKAN,
    FUNCTION_TYPES,
    MLP,
    AFKANLayer,
    BSplineKAN,
    BSplineKANLayer,
    FastKAN,
    FastKANLayer,
    ReLUKAN,
    ReLUKANLayer,
    bspline_basis,
    flops_per_sample,
    l2_min_max,
    matmul_flops,
    used_parameters,
)
from repro.papers.afkan.task import exponential_decay
from tests.helpers import write_idx

WIDTH = [64, 32, 10]


@pytest.mark.parametrize("grid,order", [(3, 3), (5, 2), (2, 1)])
def test_relu_quad1_basis_support_and_peak(grid: int, order: int) -> None:
    layer = AFKANLayer(1, 1, grid, order, activation="relu", function="quad1", l2mm=False)
    x = torch.linspace(-3, 3, 6001, dtype=torch.float64).unsqueeze(1)
    with torch.no_grad():
        values = layer.double().basis(x)[:, 0, :]
    for j in range(grid + order):
        a, b = (j - order) / grid, (j - order) / grid + (order + 1) / grid
        outside = (x[:, 0] <= a - 1e-6) | (x[:, 0] >= b + 1e-6)   # float32 endpoints
        assert values[outside, j].abs().max() == 0                  # zero outside [a, b]
        peak = values[:, j].argmax()
        assert abs(float(x[peak, 0]) - (a + b) / 2) < 1e-3          # peak at the midpoint
        assert float(values[peak, j]) == pytest.approx(((order + 1) / (2 * grid)) ** 4, rel=1e-5)


def test_relukan_basis_is_af_kan_relu_quad1_scaled_to_peak_one() -> None:
    grid, order = 3, 3
    relu_kan = ReLUKANLayer(4, 2, grid, order)
    af_kan = AFKANLayer(4, 2, grid, order, activation="relu", function="quad1", l2mm=False)
    x = torch.randn(50, 4)
    with torch.no_grad():
        r = 4 * grid ** 2 / (order + 1) ** 2
        assert torch.allclose(relu_kan.basis(x), af_kan.basis(x) * r ** 2, atol=1e-6)
        midpoints = ((relu_kan.low + relu_kan.high) / 2)[0]           # one input at every interval's midpoint
        peaks = relu_kan.basis(midpoints.unsqueeze(1).expand(-1, 4))
        assert torch.allclose(peaks[torch.arange(6), 0, torch.arange(6)], torch.ones(6), atol=1e-5)


def test_silu_quad1_is_not_compactly_supported() -> None:
    layer = AFKANLayer(1, 1, 3, 3, activation="silu", l2mm=False)
    with torch.no_grad():
        far = layer.basis(torch.tensor([[-2.5], [2.5]]))
    assert (far > 1e-6).any()


@pytest.mark.parametrize("grid,order", [(5, 3), (3, 2)])
def test_bspline_basis_matches_pykan(grid: int, order: int) -> None:
    reference = KANLayer(in_dim=3, out_dim=2, num=grid, k=order)     # knots on [-1, 1], extended by k each side
    knots = reference.grid.detach().float()
    x = torch.rand(200, 3) * 1.98 - 0.99
    ours = bspline_basis(x, knots, order)
    theirs = B_batch(x, knots, k=order)
    assert ours.shape == (200, 3, grid + order)
    assert torch.allclose(ours, theirs.float(), atol=1e-5)
    assert torch.allclose(ours.sum(-1), torch.ones(200, 3), atol=1e-5)   # partition of unity inside the grid
    ours_knots = BSplineKAN([3, 2], grid, order).layers[0].knots
    assert torch.allclose(ours_knots, knots, atol=1e-6)


def test_bspline_kan_parameters_match_pykan_layer() -> None:
    grid, order = 5, 3
    ours = sum(p.numel() for p in BSplineKAN(WIDTH, grid, order).parameters())
    theirs = sum(p.numel() for d_in, d_out in zip(WIDTH, WIDTH[1:])
                 for p in KANLayer(in_dim=d_in, out_dim=d_out, num=grid, k=order).parameters() if p.requires_grad)
    assert ours == theirs == (64 * 32 + 32 * 10) * (grid + order + 2)


def test_used_parameters_by_hand() -> None:
    x, y = torch.randn(16, 64), torch.randint(0, 10, (16,))
    grid, order = 3, 3
    f = grid + order
    # W (O D) + score layer (F + 1) + LayerNorm (2 D) + tau + intervals 2 F, per layer
    by_hand = sum(o * d + f + 1 + 2 * d + 1 + 2 * f for d, o in zip(WIDTH, WIDTH[1:]))
    assert used_parameters(AFKAN(WIDTH, grid, order), x, y) == by_hand == 2600
    assert used_parameters(MLP(WIDTH), x, y) == 2 * 64 + 64 * 32 + 2 * 32 + 32 * 10
    relu_kan = sum(2 * d * f + o * f * d + o + 2 * d for d, o in zip(WIDTH, WIDTH[1:]))
    assert used_parameters(ReLUKAN(WIDTH, grid, order), x, y) == relu_kan
    # Without the LayerNorm the full model loses exactly its 2 D parameters per layer.
    assert used_parameters(AFKAN(WIDTH, layer_norm=False), x, y) == by_hand - 2 * (64 + 32)


@pytest.mark.parametrize("model", [AFKAN(WIDTH), MLP(WIDTH), ReLUKAN(WIDTH), BSplineKAN(WIDTH), FastKAN(WIDTH)],
                         ids=["af_kan", "mlp", "relu_kan", "bspline_kan", "fast_kan"])
def test_matmul_flops_match_flop_counter(model: torch.nn.Module) -> None:
    batch = 8
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.rand(batch, 64) * 2 - 1)
    assert counter.get_total_flops() == batch * matmul_flops(model)
    assert flops_per_sample(model) > matmul_flops(model)


def test_flops_order_of_the_networks() -> None:
    assert flops_per_sample(AFKAN(WIDTH)) > 2 * flops_per_sample(MLP(WIDTH))
    assert flops_per_sample(AFKAN(WIDTH, l2mm=False)) < flops_per_sample(AFKAN(WIDTH))


def test_l2mm_range_and_scale_invariance() -> None:
    features = torch.rand(5, 4, 6, generator=torch.Generator().manual_seed(0)) + 1.0
    features[3, 0, 0], features[4, 0, 0] = 0.0, 10.0     # the batch's extremes lie outside the first two samples
    out = l2_min_max(features)
    assert float(out.min()) == 0.0 and float(out.max()) == pytest.approx(1.0)
    # The min-max step undoes any positive rescaling, the L2 step's included.
    assert torch.allclose(l2_min_max(features * 37.0), out, atol=1e-6)
    # It normalises over the whole batch: a sample's output depends on the others.
    assert not torch.allclose(l2_min_max(features[:2])[0], out[0])


def test_attention_sums_to_one_over_inputs() -> None:
    layer = AFKANLayer(7, 3, 3, 3)
    with torch.no_grad():
        features = layer.basis(torch.randn(4, 7))
        weights = torch.softmax(layer.score(features) / layer.temperature.clamp(min=1.0), dim=-2)
    assert weights.shape == (4, 7, 1)
    assert torch.allclose(weights.sum(1), torch.ones(4, 1))
    assert float(layer.temperature.detach()) == pytest.approx(7 ** 0.5)


def write_dry_data(data_dir: Path, train: int = 400, test: int = 100) -> None:
    """Small MNIST and Fashion-MNIST sets in the canonical gzip IDX format, at the paths the loader reads."""
    rng = np.random.default_rng(0)
    for dataset in ("mnist", "fashion_mnist"):
        for prefix, n in (("train", train), ("t10k", test)):
            write_idx(data_dir / dataset / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
            write_idx(data_dir / dataset / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))


def test_idx_loader_reads_and_validates(tmp_path: Path) -> None:
    write_dry_data(tmp_path, train=50, test=20)
    splits = load_idx_dataset(tmp_path, "mnist", validation=10, seed=0)
    assert {k: len(v[0]) for k, v in splits.items()} == {"train": 40, "val": 10, "test": 20}
    assert splits["train"][0].shape == (40, 784)
    assert splits["train"][0].min() >= -1.0 and splits["train"][0].max() <= 1.0
    write_idx(tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz", np.full(20, 12))
    with pytest.raises(DataUnavailableError, match="outside 0..9"):
        load_idx_dataset(tmp_path, "mnist", validation=10, seed=0)
    write_idx(tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz", np.zeros(19))
    with pytest.raises(DataUnavailableError, match="19 labels for 20 images"):
        load_idx_dataset(tmp_path, "mnist", validation=10, seed=0)
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip")
    with pytest.raises(DataUnavailableError, match="not a readable gzip"):
        load_idx_dataset(tmp_path, "mnist", validation=10, seed=0)


def test_function_types_match_the_papers_formulas() -> None:
    x1, x2 = torch.rand(2, 40, dtype=torch.float64) * 3 - 1
    formulas = {"quad1": (x1 * x2) ** 2, "quad2": x1 * x2 + x1 * x1 + x2 * x2, "sum": x1 + x2, "prod": x1 * x2,
                "sum_prod": x1 + x2 + x1 * x2, "cubic1": (x1 + x2) * (x1 * x1 + x2 * x2), "cubic2": (x1 * x2) ** 3}
    assert set(formulas) == set(FUNCTION_TYPES)
    for name, expected in formulas.items():
        assert torch.allclose(FUNCTION_TYPES[name](x1, x2), expected), name


def test_l2mm_against_numpy() -> None:
    features = np.random.default_rng(1).uniform(2.0, 5.0, (6, 4, 3))    # the minimum is far from 0
    scaled = features / np.sqrt((features ** 2).sum())
    expected = (scaled - scaled.min()) / (scaled.max() - scaled.min())
    assert np.allclose(l2_min_max(torch.tensor(features)).numpy(), expected, atol=1e-12)


def silu(x: np.ndarray) -> np.ndarray:
    return x / (1 + np.exp(-x))


@pytest.mark.parametrize("tau", [0.4, 3.0])
def test_af_kan_layer_forward_against_numpy(tau: float) -> None:
    """The whole layer written from its equations in numpy: SiLU quad1 basis, L2MM over the batch tensor, softmax
    over the D inputs of score / max(tau, 1), sum over the G + k functions, LayerNorm over D, W SiLU(.)."""
    torch.manual_seed(0)
    grid, order, d_in, d_out = 3, 2, 5, 4
    layer = AFKANLayer(d_in, d_out, grid, order).double()
    with torch.no_grad():
        layer.temperature.fill_(tau)
        layer.score.weight.normal_(0, 3.0)               # a non-trivial attention
        layer.norm.weight.uniform_(0.5, 1.5)
        layer.norm.bias.uniform_(-0.5, 0.5)
    x = np.random.default_rng(2).uniform(-1.5, 1.5, (7, d_in))
    a = (np.arange(grid + order) - order) / grid
    b = a + (order + 1) / grid
    basis = (silu(x[..., None] - a) * silu(b - x[..., None])) ** 2                       # (B, D, G + k)
    basis = basis / np.sqrt((basis ** 2).sum())
    basis = (basis - basis.min()) / (basis.max() - basis.min())
    score = basis @ layer.score.weight.detach().numpy()[0] + layer.score.bias.detach().numpy()[0]   # (B, D)
    score = score / max(tau, 1.0)
    attention = np.exp(score) / np.exp(score).sum(1, keepdims=True)
    reduced = (basis * attention[..., None]).sum(-1)                                      # (B, D)
    normed = (reduced - reduced.mean(1, keepdims=True)) / np.sqrt(reduced.var(1, keepdims=True) + 1e-5)
    normed = normed * layer.norm.weight.detach().numpy() + layer.norm.bias.detach().numpy()
    expected = silu(normed) @ layer.weight.detach().numpy().T
    with torch.no_grad():
        ours = layer(torch.tensor(x)).numpy()
    assert np.allclose(ours, expected, atol=1e-10)


def test_bspline_kan_layer_forward_against_pykan_basis() -> None:
    torch.manual_seed(0)
    grid, order = 4, 3
    layer = BSplineKANLayer(3, 2, grid, order)
    x = torch.rand(30, 3) * 1.98 - 0.99
    splines = B_batch(x, layer.knots, k=order).float()                                    # (B, D, G + k)
    coefficients = layer.spline_weight * layer.spline_scaler.unsqueeze(-1)                 # (O, D, G + k)
    # y_o = sum_i w_oi silu(x_i) + sum_ij c_oij s_oi B_j(x_i), silu(x) = x sigmoid(x)
    expected = (x * torch.sigmoid(x)) @ layer.base_weight.T + torch.einsum("bij,oij->bo", splines, coefficients)
    with torch.no_grad():
        assert torch.allclose(layer(x), expected, atol=1e-5)


def test_fast_kan_layer_forward_against_numpy() -> None:
    torch.manual_seed(0)
    layer = FastKANLayer(3, 2, centres=8).double()
    x = np.random.default_rng(3).normal(size=(9, 3))
    normed = (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 1e-5)
    centres = np.linspace(-2, 2, 8)
    h = 4 / 7                                              # FastKAN's denominator: the spacing of the centres
    rbf = np.exp(-((normed[..., None] - centres) / h) ** 2).reshape(9, -1)
    expected = (rbf @ layer.spline.weight.detach().numpy().T + silu(x) @ layer.base.weight.detach().numpy().T
                + layer.base.bias.detach().numpy())
    with torch.no_grad():
        assert np.allclose(layer(torch.tensor(x)).numpy(), expected, atol=1e-10)


def test_digits_mapped_to_minus_one_one_and_stratified() -> None:
    splits = digits_splits((0.6, 0.2, 0.2), seed=0)
    x = np.concatenate([v[0] for v in splits.values()])
    y = np.concatenate([v[1] for v in splits.values()])
    assert x.shape == (1797, 64) and x.min() == -1.0 and x.max() == 1.0     # pixels 0..16 -> x / 8 - 1
    assert np.allclose(np.sort(np.unique(x)), np.arange(17) / 8 - 1)
    counts = np.bincount(y)
    for _, labels in splits.values():
        assert np.abs(np.bincount(labels, minlength=10) / len(labels) - counts / len(y)).max() < 0.02


def test_idx_pixels_mapped_to_minus_one_one(tmp_path: Path) -> None:
    write_dry_data(tmp_path, train=30, test=5)
    pixels = np.array([0, 255, 51, 204, 128]).repeat(784).reshape(5, 28, 28)
    write_idx(tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz", pixels)
    x_test = load_idx_dataset(tmp_path, "mnist", validation=10, seed=0)["test"][0]
    assert np.allclose(x_test[:, 0], [-1.0, 1.0, -0.6, 0.6, 128 / 127.5 - 1])


def test_learning_rate_decays_like_exponential_lr_per_epoch() -> None:
    steps_per_epoch, gamma = 5, 0.8
    ours = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    reference = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = exponential_decay(ours, gamma, steps_per_epoch)
    epochs = torch.optim.lr_scheduler.ExponentialLR(reference, gamma)
    for step in range(1, 4 * steps_per_epoch + 1):
        ours.step()
        schedule.step()
        if step % steps_per_epoch == 0:
            reference.step()
            epochs.step()
        assert ours.param_groups[0]["lr"] == pytest.approx(reference.param_groups[0]["lr"], rel=1e-12)
