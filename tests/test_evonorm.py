"""EvoNorm: the layers against the paper's equations evaluated independently in numpy float64 (train and eval
mode, explicit eps and groups), their exact properties (S0 batch independence, scale invariance, no centring,
the affine-only path), the emulated data-parallel workers against PyTorch's BatchNorm per chunk, the official
pre-activation ResNet's structure, and the data loaders on files in the real format.

timm's EvoNorm2dB0/S0 (the planned reference) cannot be imported against the CPU torch wheel here; they were
read, not run. timm's B0 differs from the official code on purpose-neutral details: its running variance uses
momentum 0.1 with an n/(n-1) correction, the official one the biased batch variance (followed here).
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from repro.core.errors import DataUnavailableError
from repro.papers.evonorm.data import digits_splits, imagenet_files, imagenet_splits
from repro.papers.evonorm.layers import BNReLU, EvoNormB0, EvoNormS0, GNReLU, group_count
from repro.papers.evonorm.models import PreActResNet
from repro.papers.evonorm.task import optimizer_for

EPS = 1e-5


def randomise(layer: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Non-trivial gamma, beta and v so that a wrong formula cannot hide behind the initial values."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in layer.named_parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.5 + (1.0 if name != "beta" else 0.0))
    return layer


def params64(layer: torch.nn.Module) -> dict[str, np.ndarray]:
    return {n: p.detach().double().numpy() for n, p in layer.named_parameters()}


def b0_oracle(x: np.ndarray, gamma, beta, v, moving_variance=None, eps=EPS) -> np.ndarray:
    """y = x / max(sqrt(var_{N,H,W}(x) + eps), v x + sqrt(var_{H,W}(x) + eps)) * gamma + beta (numpy, float64)."""
    batch_var = x.var(axis=(0, 2, 3), keepdims=True) if moving_variance is None else moving_variance
    instance_var = x.var(axis=(2, 3), keepdims=True)
    return x / np.maximum(np.sqrt(batch_var + eps), v * x + np.sqrt(instance_var + eps)) * gamma + beta


def s0_oracle(x: np.ndarray, gamma, beta, v, groups: int, eps=EPS) -> np.ndarray:
    """y = x sigmoid(v x) / sqrt(var_{H,W,C/g}(x) + eps) * gamma + beta, the group std by explicit loops."""
    n, c, h, w = x.shape
    std = np.empty_like(x)
    size = c // groups
    for i in range(n):
        for g in range(groups):
            block = x[i, g * size:(g + 1) * size]
            std[i, g * size:(g + 1) * size] = np.sqrt(block.var() + eps)
    return x * (1 / (1 + np.exp(-v * x))) / std * gamma + beta


@pytest.fixture
def x() -> torch.Tensor:
    return torch.randn(6, 12, 5, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 2 + 0.7


def test_b0_train_mode_matches_the_equation_and_updates_the_moving_variance(x) -> None:
    layer = randomise(EvoNormB0(12), 0).double().train()
    p = params64(layer)
    y = layer(x).detach().numpy()
    assert np.allclose(y, b0_oracle(x.numpy(), p["gamma"], p["beta"], p["v"]), atol=1e-12)
    expected = 1.0 - (1.0 - x.numpy().var(axis=(0, 2, 3), keepdims=True)) * (1 - 0.9)  # from 1, decay 0.9, biased
    assert np.allclose(layer.moving_variance.numpy(), expected, atol=1e-12)


def test_b0_eval_mode_uses_the_moving_variance_and_the_sample_own_instance_term(x) -> None:
    layer = randomise(EvoNormB0(12), 1).double()
    with torch.no_grad():
        layer.moving_variance.copy_(torch.rand(1, 12, 1, 1, dtype=torch.float64) + 0.5)
    layer.eval()
    p = params64(layer)
    y = layer(x).detach().numpy()
    assert np.allclose(y, b0_oracle(x.numpy(), p["gamma"], p["beta"], p["v"], layer.moving_variance.numpy()),
                       atol=1e-12)
    # eval mode: each sample is normalised independently of the rest of the batch
    assert torch.allclose(layer(x[:1]), layer(x)[:1], atol=1e-12)


@pytest.mark.parametrize("channels, groups, used", [(12, 4, 4), (12, 8, 6), (12, 5, 4), (16, 32, 16)])
def test_s0_matches_the_equation_with_explicit_groups(channels: int, groups: int, used: int) -> None:
    x = torch.randn(3, channels, 4, 4, generator=torch.Generator().manual_seed(channels + groups), dtype=torch.float64)
    layer = randomise(EvoNormS0(channels, groups=groups), 2).double()
    assert layer.groups == used
    p = params64(layer)
    for mode in (layer.train, layer.eval):  # no batch statistics, no moving average: both modes are one map
        mode()
        assert np.allclose(layer(x).detach().numpy(), s0_oracle(x.numpy(), p["gamma"], p["beta"], p["v"], used),
                           atol=1e-12)


def test_group_count_falls_back_like_the_official_code() -> None:
    def oracle(c: int, g: int) -> int:
        return max(k for k in range(1, g + 1) if c % k == 0)  # the largest divisor <= g (32, 31, ... descending)
    for c in (8, 12, 16, 24, 48, 64, 96, 100, 1000, 2048):
        assert group_count(c, 32) == oracle(c, 32)
    assert group_count(48, 32) == 24 and group_count(64, 32) == 32 and group_count(100, 32) == 25


def test_group_std_is_torch_var_of_the_reshaped_tensor_not_groupnorm(x) -> None:
    layer = EvoNormS0(12, groups=3).double()
    with torch.no_grad():
        layer.v.zero_()  # sigmoid(0) = 1/2: y = x / 2 / group std
    expected = x / 2 / torch.sqrt(x.reshape(6, 3, 4, 5, 4).var(dim=(2, 3, 4), unbiased=False, keepdim=True)
                                  + EPS).expand(6, 3, 4, 5, 4).reshape(x.shape)
    assert torch.allclose(layer(x), expected, atol=1e-12)
    gn = torch.nn.GroupNorm(3, 12, eps=EPS, affine=False).double()
    assert not torch.allclose(layer(x), gn(x) / 2, atol=1e-3)  # GroupNorm subtracts the mean; S0 does not


def test_s0_output_of_a_sample_ignores_the_rest_of_the_batch(x) -> None:
    layer = randomise(EvoNormS0(12, groups=4), 3).double().train()
    other = x.clone()
    other[1:] = torch.randn(5, 12, 5, 4, dtype=torch.float64) * 10
    assert torch.equal(layer(x)[0], layer(other)[0])
    bn = BNReLU(12).double().train()
    assert not torch.allclose(bn(x)[0], bn(other)[0])  # BN does depend on the batch


def test_b0_is_scale_invariant_in_training_and_in_eval_with_rescaled_statistics(x) -> None:
    layer = randomise(EvoNormB0(12, eps=0.0), 4).double()
    with torch.no_grad():
        layer.v.abs_()
    a = 37.5
    layer.train()
    assert torch.allclose(layer(a * x), layer(x), atol=1e-10)
    layer.eval()
    y = layer(x)
    with torch.no_grad():
        layer.moving_variance.mul_(a * a)
    assert torch.allclose(layer(a * x), y, atol=1e-10)
    with torch.no_grad():
        layer.moving_variance.div_(a * a)
    assert not torch.allclose(layer(a * x), y, atol=1e-3)  # with fixed moving statistics it is not invariant


@pytest.mark.parametrize("make", [lambda: EvoNormB0(12), lambda: EvoNormS0(12, groups=4)], ids=["B0", "S0"])
def test_evonorms_do_not_centre_their_input(make, x) -> None:
    layer = randomise(make(), 5).double().train()
    assert not torch.allclose(layer(x + 3.0), layer(x), atol=1e-3)
    gn = GNReLU(12, groups=4).double()
    assert torch.allclose(gn(x + 3.0), gn(x), atol=1e-8)  # the mean-subtracting baseline is shift-invariant


@pytest.mark.parametrize("make", [EvoNormB0, EvoNormS0], ids=["B0", "S0"])
def test_no_nonlinearity_is_the_affine_map_only(make, x) -> None:
    layer = randomise(make(12, nonlinearity=False), 6).double().train()
    assert layer.v is None
    assert torch.equal(layer(x), x * layer.gamma + layer.beta)
    assert torch.equal(make(12, nonlinearity=False, zero_init=True).gamma, torch.zeros(1, 12, 1, 1))


def test_b0_gradient_flows_only_through_the_larger_branch() -> None:
    x = torch.randn(4, 3, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    layer = EvoNormB0(3).double().train()
    with torch.no_grad():
        layer.v.fill_(-10.0)  # v x + instance std is negative for most positive x: the batch term wins there
    layer(x).sum().backward()
    right = layer.v * x + torch.sqrt(x.var(dim=(2, 3), unbiased=False, keepdim=True) + EPS)
    left = torch.sqrt(x.var(dim=(0, 2, 3), unbiased=False, keepdim=True) + EPS)
    wins = (right > left).double()
    # dL/dv = sum over elements where the right branch wins of -x^2 gamma / right^2
    expected = (-(x * x) / right ** 2 * wins).sum(dim=(0, 2, 3))
    assert torch.allclose(layer.v.grad.view(-1), expected, atol=1e-10)


def test_emulated_workers_match_per_chunk_batch_norm_and_b0(x) -> None:
    workers = 3
    bn = BNReLU(12, workers=workers).double().train()
    reference = torch.nn.BatchNorm2d(12, eps=EPS, momentum=0.1).double().train()
    expected = torch.cat([torch.relu(reference(chunk)) for chunk in x.chunk(workers)])
    assert torch.allclose(bn(x), expected, atol=1e-12)
    assert torch.allclose(bn.norm.running_var, reference.running_var, atol=1e-12)
    b0 = randomise(EvoNormB0(12, workers=workers), 8).double().train()
    p = params64(b0)
    expected = np.concatenate([b0_oracle(c.numpy(), p["gamma"], p["beta"], p["v"]) for c in x.chunk(workers)])
    assert np.allclose(b0(x).detach().numpy(), expected, atol=1e-12)
    moving = np.ones((1, 12, 1, 1))
    for chunk in x.chunk(workers):
        moving = moving - (moving - chunk.numpy().var(axis=(0, 2, 3), keepdims=True)) * 0.1
    assert np.allclose(b0.moving_variance.numpy(), moving, atol=1e-12)
    with pytest.raises(ValueError, match="does not split"):
        BNReLU(12, workers=4).train()(x)


def small_resnet(layer: str = "evonorm_s0", block: str = "basic") -> PreActResNet:
    return PreActResNet(layer, 8, [16, 32, 64], [1, 1, 1], [1, 2, 2], 16, "small", block, 1, 10)


def test_preactivation_resnet_structure_follows_the_official_v2_code() -> None:
    model = small_resnet()
    norms = [m for m in model.modules() if isinstance(m, EvoNormS0)]
    assert len(norms) == 3 * 2 + 1  # per block: pre-activation + middle; plus the final norm-act before pooling
    assert all(m.nonlinearity for m in norms)  # v2 never uses the affine-only form
    assert all(m.gamma.detach().eq(1).all() for m in norms)  # no zero-initialised last norm in v2
    assert isinstance(model.stem, torch.nn.Conv2d)  # v2 stem: convolution only
    for block in model.blocks:  # every group's first block has a bare 1x1 projection shortcut
        assert isinstance(block.shortcut, torch.nn.Conv2d) and block.shortcut.kernel_size == (1, 1)
    assert model(torch.randn(2, 1, 16, 16)).shape == (2, 10)
    # the residual output is branch + shortcut, nothing after the addition
    block = model.blocks[0]
    z = torch.randn(2, 16, 16, 16)
    pre = block.pre(z)
    assert torch.allclose(block(z), block.conv2(block.act1(block.conv1(pre))) + block.shortcut(pre), atol=1e-6)


def test_resnet50_v2_shapes_and_parameter_count() -> None:
    model = PreActResNet("bn_relu", 32, [64, 128, 256, 512], [3, 4, 6, 3], [1, 2, 2, 2], 64, "imagenet",
                         "bottleneck", 3, 1000)
    count = sum(p.numel() for p in model.parameters())
    assert 25_500_000 < count < 25_600_000  # ResNet-50: 25.5 M parameters
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 1000)


def test_norm_parameters_are_exempt_from_weight_decay() -> None:
    from omegaconf import OmegaConf

    model = small_resnet("evonorm_b0")
    t = OmegaConf.create({"lr": 0.05, "lr_batch": 64, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4})
    decay, exempt = optimizer_for(model, t, 16).param_groups
    assert decay["weight_decay"] == 5e-4 and exempt["weight_decay"] == 0.0
    assert decay["lr"] == pytest.approx(0.05 * 16 / 64)
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(names[id(p)].rsplit(".", 1)[-1] in ("gamma", "beta", "v") for p in exempt["params"])
    assert {names[id(p)] for p in decay["params"]} >= {"stem.weight", "head.weight", "head.bias"}


def test_digits_splits_are_stratified_disjoint_and_scaled() -> None:
    splits = digits_splits(1097, 200, 500, 16, seeds=(11, 12))
    sizes = {k: len(v[1]) for k, v in splits.items()}
    assert sizes == {"train": 1097, "val": 200, "test": 500}
    images = torch.cat([v[0] for v in splits.values()])
    assert images.shape[1:] == (1, 16, 16) and images.min() >= 0 and images.max() <= 1
    counts = torch.bincount(splits["test"][1], minlength=10)
    assert counts.min() >= 48 and counts.max() <= 52  # stratified: ~50 per class
    flat = {tuple(img.flatten().tolist()) for img in torch.cat([splits["val"][0], splits["test"][0]])}
    assert not any(tuple(img.flatten().tolist()) in flat for img in splits["train"][0][:200])
    again = digits_splits(1097, 200, 500, 16, seeds=(11, 12))
    assert torch.equal(again["test"][1], splits["test"][1])


def _write_jpegs(folder: Path, count: int, seed: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for k in range(count):
        pixels = rng.integers(0, 256, size=(40 + 4 * k, 48, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"ILSVRC2012_{seed:02d}_{k:08d}.JPEG", quality=90)


def write_dry_data(data_dir: Path) -> None:
    """ImageNet in its extracted layout (<data_dir>/imagenet/{train,val}/<wnid>/*.JPEG): 2 classes, 8 training
    and 2 validation JPEGs each, of varying sizes."""
    for c, wnid in enumerate(("n01440764", "n01443537")):
        _write_jpegs(data_dir / "imagenet" / "train" / wnid, 8, seed=c)
        _write_jpegs(data_dir / "imagenet" / "val" / wnid, 2, seed=10 + c)


def test_imagenet_loader_reads_the_real_layout(tmp_path: Path) -> None:
    write_dry_data(tmp_path)
    splits = imagenet_splits(tmp_path / "imagenet", 32)
    assert splits["classes"] == 2 and len(splits["train"]) == 16 and len(splits["val"]) == 4
    image, label = splits["train"][9]
    assert image.shape == (3, 32, 32) and label == 1 and torch.isfinite(image).all()
    splits["train"].seed = 5
    first = splits["train"][0][0]
    assert torch.equal(first, splits["train"][0][0])  # augmentation is a function of (seed, index)
    val_image, _ = splits["val"][0]
    assert val_image.shape == (3, 32, 32)


def test_imagenet_loader_fails_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(DataUnavailableError, match="licence-gated"):
        imagenet_files(tmp_path / "imagenet", "train")
    write_dry_data(tmp_path)
    (tmp_path / "imagenet" / "val" / "n99999999").mkdir()
    with pytest.raises(DataUnavailableError, match="class folders differ"):
        imagenet_splits(tmp_path / "imagenet", 32)
    (tmp_path / "imagenet" / "train" / "n99999999").mkdir()
    with pytest.raises(DataUnavailableError, match="holds no images"):
        imagenet_splits(tmp_path / "imagenet", 32)


def test_bn_relu_moving_variance_uses_momentum_one_minus_decay(x) -> None:
    """The official decay 0.9: moving = 0.9 moving + 0.1 batch variance (PyTorch stores the unbiased one)."""
    layer = BNReLU(12).double().train()
    layer(x)
    n = x.shape[0] * x.shape[2] * x.shape[3]
    batch = x.numpy().var(axis=(0, 2, 3)) * n / (n - 1)
    assert np.allclose(layer.norm.running_var.numpy(), 0.9 * 1.0 + 0.1 * batch, atol=1e-12)
    assert np.allclose(layer.norm.running_mean.numpy(), 0.1 * x.numpy().mean(axis=(0, 2, 3)), atol=1e-12)


def test_convolution_init_is_tf_variance_scaling() -> None:
    """TF1's variance_scaling(fan_in, truncated_normal): variance 1 / fan_in after truncation at 2 std."""
    from repro.papers.evonorm.models import conv

    torch.manual_seed(0)
    weight = conv(64, 128, 3, 1).weight.detach().double()
    assert float(weight.std()) == pytest.approx(1 / np.sqrt(64 * 9), rel=0.02)
    limit = 2 * np.sqrt(1 / (64 * 9)) / 0.87962566103423978
    assert float(weight.abs().max()) <= limit + 1e-9


def test_identity_shortcut_is_the_raw_block_input() -> None:
    """v2 block without projection: branch(pre(x)) + x (the identity skips the pre-activation)."""
    model = PreActResNet("evonorm_s0", 8, [16], [2], [1], 16, "small", "basic", 1, 10)
    block = model.blocks[1]
    assert block.shortcut is None
    z = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        pre = block.pre(z)
        assert torch.allclose(block(z), block.conv2(block.act1(block.conv1(pre))) + z, atol=1e-6)


def test_digits_are_bilinearly_upsampled_with_half_pixel_centres() -> None:
    """Output pixel i of the 16x16 image samples the 8x8 one at (i + 1/2) / 2 - 1/2 (clamped at the border), the
    convention of tf.image.resize / PIL; the 8x8 digits are pixel / 16."""
    from sklearn.datasets import load_digits

    splits = digits_splits(1097, 200, 500, 16, seeds=(11, 12))
    source = load_digits().images / 16.0
    position = np.clip((np.arange(16) + 0.5) / 2 - 0.5, 0, 7)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, 7)
    weight = position - low
    rows = (1 - weight)[:, None] * source[:, low] + weight[:, None] * source[:, high]
    expected = (1 - weight) * rows[:, :, low] + weight * rows[:, :, high]
    images = torch.cat([v[0] for v in splits.values()])[:, 0].double().numpy()
    # Every split image is one of the 1797 upsampled digits: its nearest oracle image is equal to float32 precision.
    images = images[:100].reshape(100, -1)
    expected = expected.reshape(len(expected), -1)
    nearest = ((images[:, None, :] - expected[None]) ** 2).sum(-1).min(1)
    assert nearest.max() < 1e-10
