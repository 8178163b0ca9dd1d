"""CRReLU: its derivative against sympy and gradcheck, the entropy integrals against closed forms and a
sample-based estimator, the ViT's patching, initialisation and weight-decay groups, and the CIFAR-10 binary
reader on an archive written in the real format."""

import io
import math
import tarfile
from pathlib import Path

import numpy as np
import pytest
import sympy
import torch
from scipy import stats

from repro.core.errors import DataUnavailableError
from repro.papers.crrelu.activations import CRReLU, make_activation
from repro.papers.crrelu.data import CIFAR_MEMBERS, cifar10_splits, digits_splits
from repro.papers.crrelu.entropy import BOUNDED, activation_pair, gaussian_entropy, output_entropy
from repro.papers.crrelu.models import ViT, parameter_groups
from repro.papers.crrelu.task import augment, entropy_row, warmup_cosine


def test_crrelu_derivative_matches_sympy() -> None:
    x, eps = sympy.symbols("x eps", real=True)
    correction = sympy.diff(x * sympy.exp(-x ** 2 / 2), x)
    assert sympy.simplify(correction - (1 - x ** 2) * sympy.exp(-x ** 2 / 2)) == 0
    derivative = sympy.lambdify((x, eps), sympy.Heaviside(x) + eps * correction, "numpy")
    points = torch.tensor([-3.0, -1.0, -0.4, 0.3, 1.0, 2.5], dtype=torch.float64, requires_grad=True)
    layer = CRReLU(0.37).double()
    layer(points).sum().backward()
    assert np.allclose(points.grad.numpy(), derivative(points.detach().numpy(), 0.37), atol=1e-12)


def test_crrelu_gradcheck_away_from_zero() -> None:
    layer = CRReLU(0.2).double()
    x = torch.cat([torch.linspace(-3, -0.1, 7), torch.linspace(0.1, 3, 7)]).double().requires_grad_()
    assert torch.autograd.gradcheck(lambda v: layer(v), (x,))
    # ... and with respect to eps: d CRReLU / d eps = x exp(-x^2 / 2).
    x = x.detach()
    layer(x).sum().backward()
    assert float(layer.eps.grad) == pytest.approx(float((x * torch.exp(-x ** 2 / 2)).sum()), rel=1e-12)


def test_crrelu_correction_size_and_non_monotone_left_branch() -> None:
    layer = CRReLU(0.01).double()
    x = torch.linspace(-6, 6, 120001, dtype=torch.float64)
    with torch.no_grad():
        correction = layer(x) - torch.relu(x)
        values = layer(x)
    assert float(correction.abs().max()) == pytest.approx(0.01 / math.sqrt(math.e), rel=1e-6)
    negative = x < 0
    assert float(x[negative][values[negative].argmin()]) == pytest.approx(-1.0, abs=1e-3)   # minimum at x = -1


def test_baselines_are_torch_definitions() -> None:
    x = torch.linspace(-3, 3, 61)
    assert torch.equal(make_activation("leaky_relu", 0.01)(x), torch.nn.functional.leaky_relu(x, 0.01))
    assert torch.equal(make_activation("celu", 0.01)(x), torch.nn.functional.celu(x))
    prelu = make_activation("prelu", 0.01)
    assert float(prelu.weight.detach()) == pytest.approx(0.25)


@pytest.mark.parametrize("scale", [0.5, 1.0, 2.0])
def test_wafbc_entropy_is_zero_and_gaussian_entropy_closed_form(scale: float) -> None:
    assert output_entropy(activation_pair("wafbc", scale)[1], scale) == pytest.approx(0.0, abs=1e-9)
    assert output_entropy(lambda x: 0.0 * x, scale) == pytest.approx(gaussian_entropy(scale), abs=1e-9)
    assert gaussian_entropy(scale) == pytest.approx(stats.norm(scale=scale).entropy(), abs=1e-12)


@pytest.mark.parametrize("name", sorted(BOUNDED))
def test_log_derivatives_match_finite_differences(name: str) -> None:
    f, log_derivative = BOUNDED[name]
    x = np.linspace(-6, 6, 25)
    h = 1e-5
    numeric = np.log((f(x + h) - f(x - h)) / (2 * h))
    assert np.allclose(log_derivative(x), numeric, atol=1e-5)
    assert f(-1e6) == pytest.approx(0.0, abs=1e-5) and f(1e6) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "arctan"])
def test_quadrature_entropy_matches_sample_estimator(name: str) -> None:
    samples = np.random.default_rng(0).standard_normal(400_000)
    f, log_derivative = BOUNDED[name]
    estimate = stats.differential_entropy(f(samples))
    assert output_entropy(log_derivative, 1.0) == pytest.approx(estimate, abs=2e-2)


def vit(activation: str) -> ViT:
    return ViT(8, 1, 2, 32, 2, 4, 64, 10, activation)


def test_patches_are_row_major_2x2_blocks() -> None:
    image = torch.arange(64.0).view(1, 1, 8, 8)
    patches = vit("relu").patches(image)
    assert patches.shape == (1, 16, 4)
    assert patches[0, 0].tolist() == [0.0, 1.0, 8.0, 9.0]
    assert patches[0, 5].tolist() == [18.0, 19.0, 26.0, 27.0]


def test_only_the_mlp_activation_differs_between_models() -> None:
    torch.manual_seed(3)
    relu = vit("relu")
    torch.manual_seed(3)
    crrelu = vit("crrelu")
    shared = relu.state_dict()
    other = crrelu.state_dict()
    assert set(other) - set(shared) == {"blocks.0.mlp.act.eps", "blocks.1.mlp.act.eps"}
    assert all(torch.equal(shared[k], other[k]) for k in shared)
    x = torch.rand(4, 1, 8, 8)
    with torch.no_grad():
        for block in crrelu.blocks:
            block.mlp.act.eps.zero_()      # eps = 0 turns CRReLU back into ReLU
        assert torch.allclose(relu(x), crrelu(x), atol=1e-6)


def test_no_weight_decay_on_eps_norms_biases_and_embeddings() -> None:
    model = vit("crrelu")
    decay, no_decay = parameter_groups(model, 0.05)
    names = {id(p): n for n, p in model.named_parameters()}
    undecayed = {names[id(p)] for p in no_decay["params"]}
    assert {"blocks.0.mlp.act.eps", "pos_embed", "cls_token", "norm.weight", "head.bias"} <= undecayed
    assert {names[id(p)] for p in decay["params"]} == {n for n, p in model.named_parameters() if p.ndim == 2}


def cifar_archive(path: Path, train_per_batch: int, test: int, seed: int = 0, label_high: int = 10) -> None:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        for member in [*CIFAR_MEMBERS["train"], *CIFAR_MEMBERS["test"]]:
            n = test if member in CIFAR_MEMBERS["test"] else train_per_batch
            records = np.concatenate([rng.integers(0, label_high, (n, 1)), rng.integers(0, 256, (n, 3072))], 1)
            blob = records.astype(np.uint8).tobytes()
            info = tarfile.TarInfo(member)
            info.size = len(blob)
            archive.addfile(info, io.BytesIO(blob))


def write_dry_data(data_dir: Path) -> None:
    """A small CIFAR-10 binary archive (5 x 24 training images, 20 test) at the path the loader reads."""
    cifar_archive(data_dir / "cifar10" / "cifar-10-binary.tar.gz", train_per_batch=24, test=20)


def test_cifar_reader_and_validation(tmp_path: Path) -> None:
    write_dry_data(tmp_path)
    splits = cifar10_splits(tmp_path, validation=20, seed=0)
    assert {k: v[0].shape for k, v in splits.items()} == {"train": (100, 3, 32, 32), "val": (20, 3, 32, 32),
                                                         "test": (20, 3, 32, 32)}
    assert 0.0 <= splits["train"][0].min() and splits["train"][0].max() <= 1.0
    cifar_archive(tmp_path / "cifar10" / "cifar-10-binary.tar.gz", 10, 10, label_high=20)
    with pytest.raises(DataUnavailableError, match="outside 0..9"):
        cifar10_splits(tmp_path, validation=5, seed=0)
    (tmp_path / "cifar10" / "cifar-10-binary.tar.gz").write_bytes(b"not an archive")
    with pytest.raises(DataUnavailableError, match="not a readable CIFAR-10"):
        cifar10_splits(tmp_path, validation=5, seed=0)


@pytest.mark.parametrize("scale", [0.5, 2.0])
def test_entropy_row_gap_against_sample_estimator(scale: float) -> None:
    """The WAFBC's output is uniform on [0, 1] (entropy 0), so the gap is H(f(X)) itself, estimated here from
    samples of f(s Z) with scipy's estimator."""
    samples = scale * np.random.default_rng(1).standard_normal(200_000)
    row = entropy_row("sigmoid", scale)
    estimate = stats.differential_entropy(BOUNDED["sigmoid"][0](samples))
    assert row["gap_to_wafbc"] == pytest.approx(estimate, abs=2e-2)
    assert row["gap_to_wafbc"] < 0 and row["entropy"] == pytest.approx(row["gap_to_wafbc"], abs=1e-9)
    assert entropy_row("wafbc", scale)["gap_to_wafbc"] == pytest.approx(0.0, abs=1e-12)


def test_patches_match_slicing_of_every_block() -> None:
    image = torch.randn(2, 3, 8, 8)
    model = ViT(8, 3, 2, 32, 1, 4, 64, 10, "relu")
    patches = model.patches(image)
    for row in range(4):
        for col in range(4):
            block = image[:, :, 2 * row:2 * row + 2, 2 * col:2 * col + 2].reshape(2, -1)   # (C, p, p) flattened
            assert torch.equal(patches[:, 4 * row + col], block)


def test_block_matches_torch_pre_norm_encoder_layer() -> None:
    torch.manual_seed(0)
    model = vit("gelu")
    block = model.blocks[0]
    reference = torch.nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, activation="gelu", batch_first=True,
                                                 norm_first=True)
    reference.self_attn.load_state_dict(block.attention.state_dict())
    reference.linear1.load_state_dict(block.mlp.fc1.state_dict())
    reference.linear2.load_state_dict(block.mlp.fc2.state_dict())
    reference.norm1.load_state_dict(block.norm1.state_dict())
    with torch.no_grad():
        block.norm2.weight.uniform_(0.5, 1.5)       # the two norms differ, so swapping them shows
        block.norm2.bias.uniform_(-0.5, 0.5)
    reference.norm2.load_state_dict(block.norm2.state_dict())
    x = torch.randn(3, 17, 32)
    with torch.no_grad():
        assert torch.allclose(block(x), reference(x), atol=1e-5)


def test_class_token_output_is_invariant_to_patch_order_without_position_embedding() -> None:
    """Attention is permutation-equivariant, so without position embeddings the class token (and only it)
    does not see the order of the patches."""
    torch.manual_seed(0)
    model = vit("relu")
    with torch.no_grad():
        model.pos_embed.zero_()
        image = torch.rand(2, 1, 8, 8)
        swapped = image.clone()
        swapped[..., 0:2, 0:2], swapped[..., 4:6, 6:8] = image[..., 4:6, 6:8], image[..., 0:2, 0:2]
        assert torch.allclose(model(image), model(swapped), atol=1e-5)
        assert not torch.allclose(model.patches(image), model.patches(swapped))


def test_warmup_cosine_against_torch_schedulers() -> None:
    warmup, total = 4, 20
    ours = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = warmup_cosine(ours, warmup, total)
    reference = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    linear = torch.optim.lr_scheduler.LinearLR(reference, 1 / warmup, 1.0, total_iters=warmup - 1)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(reference, T_max=total - warmup)
    sequence = torch.optim.lr_scheduler.SequentialLR(reference, [linear, cosine], milestones=[warmup])
    for _ in range(total + 1):
        assert ours.param_groups[0]["lr"] == pytest.approx(reference.param_groups[0]["lr"], abs=1e-12)
        ours.step()
        reference.step()
        schedule.step()
        sequence.step()


def test_augment_is_a_padded_crop_or_its_mirror() -> None:
    images = torch.rand(32, 3, 6, 6)
    pad = 2
    out = augment(images, torch.Generator().manual_seed(0), pad)
    padded = torch.nn.functional.pad(images, (pad, pad, pad, pad))
    flipped = 0
    for i in range(len(images)):
        crops = [padded[i, :, dy:dy + 6, dx:dx + 6] for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)]
        plain = any(torch.equal(out[i], crop) for crop in crops)
        mirror = any(torch.equal(out[i], crop.flip(-1)) for crop in crops)
        assert plain != mirror
        flipped += mirror
    assert 0 < flipped < len(images)


def test_digits_splits_in_unit_range_with_the_requested_sizes() -> None:
    splits = digits_splits(1097, 200, 500, seed=0)
    assert {k: v[0].shape for k, v in splits.items()} == {"train": (1097, 1, 8, 8), "val": (200, 1, 8, 8),
                                                         "test": (500, 1, 8, 8)}
    pixels = np.concatenate([v[0].ravel() for v in splits.values()])
    assert pixels.min() == 0.0 and pixels.max() == 1.0
    assert np.allclose(np.unique(pixels), np.arange(17) / 16)


def test_cifar_records_are_channel_major(tmp_path: Path) -> None:
    """The CIFAR-10 binary format: a label byte, then 1024 red, 1024 green and 1024 blue bytes, rows in order."""
    cifar_archive(tmp_path / "cifar10" / "cifar-10-binary.tar.gz", train_per_batch=4, test=3, seed=5)
    with tarfile.open(tmp_path / "cifar10" / "cifar-10-binary.tar.gz") as archive:
        raw = np.frombuffer(archive.extractfile(CIFAR_MEMBERS["test"][0]).read(), np.uint8).reshape(3, 3073)
    x_test, y_test = cifar10_splits(tmp_path, validation=5, seed=0)["test"]
    assert np.array_equal(y_test, raw[:, 0])
    for channel, row, col in [(0, 0, 1), (1, 5, 7), (2, 31, 0), (2, 3, 30)]:
        assert x_test[1, channel, row, col] * 255 == pytest.approx(raw[1, 1 + 1024 * channel + 32 * row + col])
