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
from repro.papers.afkan.data import load_idx_dataset
from repro.papers.afkan.models import (
    AFKAN,
    MLP,
    AFKANLayer,
    BSplineKAN,
    FastKAN,
    ReLUKAN,
    ReLUKANLayer,
    bspline_basis,
    flops_per_sample,
    l2_min_max,
    matmul_flops,
    used_parameters,
)
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
