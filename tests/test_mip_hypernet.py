"""MIP hypernetworks: the proportionality h(c gamma) = c h(gamma) (and its failure for GELU/tanh), the
constant-norm encoding, the residual theta0, and our hypernetwork against the authors' hyperlight library
(same outputs from the same weights, same initialisation statistics)."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from repro.papers.mip_hypernet.data import evaluation_set, grid_points, target, training_batch
from repro.papers.mip_hypernet.models import HyperModel, HyperNetwork, encode, parameter_shapes, primary_network
from repro.papers.mip_hypernet.task import squared_errors, upswing

SHAPES = parameter_shapes(primary_network(32))
HIDDEN = [16, 64]


def write_dry_data(data_dir: Path) -> None:
    """Nothing: the function family is generated in the run, so scale=dry reads no file; its dry.yaml runs the
    paper scale's sweep of learning rates, activations and normalisers with fewer steps."""


def hypernetwork(variant: str, activation: str = "leakyrelu", seed: int = 0) -> HyperNetwork:
    torch.manual_seed(seed)
    return HyperNetwork(variant, SHAPES, 1, HIDDEN, activation).double()


@pytest.mark.parametrize("activation", ["relu", "leakyrelu"])
def test_default_is_proportional_for_homogeneous_activations(activation: str) -> None:
    h = hypernetwork("default", activation)
    # Zero biases everywhere at init: each layer is positively homogeneous of degree 1.
    gamma = torch.rand(5, 1, dtype=torch.float64)
    with torch.no_grad():
        for c in (0.1, 0.5, 3.0, 17.0):
            assert torch.allclose(h(c * gamma), c * h(gamma), rtol=1e-12, atol=1e-14)
        assert torch.count_nonzero(h(torch.zeros(1, 1, dtype=torch.float64))) == 0


@pytest.mark.parametrize("activation", ["gelu", "tanh"])
def test_proportionality_fails_without_homogeneity(activation: str) -> None:
    h = hypernetwork("default", activation)
    gamma = torch.full((1, 1), 0.5, dtype=torch.float64)
    with torch.no_grad():
        relative = (h(4 * gamma) - 4 * h(gamma)).norm() / (4 * h(gamma)).norm()
    assert relative > 1e-2


def test_mip_breaks_proportionality_and_starts_at_theta0() -> None:
    h = hypernetwork("mip")
    gamma = torch.full((1, 1), 0.3, dtype=torch.float64)
    with torch.no_grad():
        assert not torch.allclose(h(2 * gamma), 2 * h(gamma), rtol=1e-3)
        theta0 = h.output.bias
        delta = h.output(h.hidden(encode(gamma)))[0] - theta0
        assert torch.allclose(h(gamma)[0], theta0 + delta)
        assert torch.count_nonzero(theta0) > 0
    # theta0 is the primary network's Kaiming-normal init: std gain / sqrt(fan_in) per weight tensor, biases 0.
    start = 0
    for name, shape in SHAPES.items():
        block = theta0[start:start + math.prod(shape)]
        if name.endswith("bias"):
            assert torch.all(block == 0)
        elif block.numel() >= 1000:
            expected = torch.nn.init.calculate_gain("leaky_relu", 0.01) / math.sqrt(shape[1])
            assert abs(float(block.std()) / expected - 1) < 0.1
        start += math.prod(shape)


def test_encoding_has_constant_norm() -> None:
    gamma = torch.rand(1000, 3, dtype=torch.float64)
    gamma[0] = 0.0
    gamma[1] = 1.0
    norms = (encode(gamma) ** 2).sum(dim=1)
    assert torch.allclose(norms, torch.full_like(norms, 3.0), atol=1e-12)


def _hyperlight_net(encoding: str | None):
    hyperlight = pytest.importorskip("hyperlight")
    return hyperlight.HyperNet(input_shapes={"gamma": (1,)}, output_shapes=dict(SHAPES), hidden_sizes=HIDDEN,
                               encoding=encoding, init_independent_weights=encoding is not None)


@pytest.mark.parametrize("variant,encoding", [("mip", "cos|sin"), ("default", None)])
def test_forward_matches_hyperlight_on_the_same_weights(variant: str, encoding: str | None) -> None:
    torch.manual_seed(1)
    reference = _hyperlight_net(encoding).double()
    ours = hypernetwork(variant)
    backbone = reference.backbone
    with torch.no_grad():
        for mine, theirs in ((ours.hidden[0], backbone.block0_lin), (ours.hidden[2], backbone.block1_lin),
                             (ours.output, backbone.output)):
            mine.weight.copy_(theirs.weight)
            mine.bias.copy_(theirs.bias)
        gamma = torch.rand(7, 1, dtype=torch.float64)
        expected = reference(gamma=gamma)
        flat = ours(gamma)
    for name, tensor in ours.unflatten(flat).items():
        assert torch.allclose(tensor, expected[name].reshape(tensor.shape), atol=1e-12), name
    from hyperlight.hypernet.encoding import encode_input

    assert torch.allclose(encode(gamma), encode_input(gamma, "cos|sin"), atol=1e-15)


def test_initialisation_matches_hyperlight_statistics() -> None:
    """Our init and hyperlight's draw each hidden layer and each block of the last layer (its weight, and its bias
    = theta0) from the same distribution: pooled over 20 draws, the standard deviations agree block by block, and
    the blocks that predict primary biases start at zero in both."""
    ours, theirs = {}, {}
    for seed in range(20):
        torch.manual_seed(seed)
        reference = _hyperlight_net("cos|sin").backbone
        mine = hypernetwork("mip", seed=seed)
        pairs = {"hidden0": (mine.hidden[0].weight, reference.block0_lin.weight),
                 "hidden1": (mine.hidden[2].weight, reference.block1_lin.weight)}
        start = 0
        for name, shape in SHAPES.items():
            rows = slice(start, start + math.prod(shape))
            pairs[f"out/{name}"] = (mine.output.weight[rows], reference.output.weight[rows])
            pairs[f"theta0/{name}"] = (mine.output.bias[rows], reference.output.bias[rows])
            start += math.prod(shape)
        for key, (a, b) in pairs.items():
            ours.setdefault(key, []).append(a.detach().double().flatten())
            theirs.setdefault(key, []).append(b.detach().double().flatten())
    for key in ours:
        a, b = float(torch.cat(ours[key]).std()), float(torch.cat(theirs[key]).std())
        if b == 0:
            assert a == 0, key
        else:
            assert abs(a / b - 1) < 0.15, (key, a, b)


def test_vmapped_primary_network_matches_explicit_matmuls() -> None:
    torch.manual_seed(2)
    model = HyperModel("mip", 32, 1, HIDDEN).double()
    gamma, x, _ = training_batch(grid_points(256, "cpu").double(), 5, 64, seed=3)
    p = model.hyper.unflatten(model.hyper(gamma))
    h = torch.relu(x.unsqueeze(-1) * p["0.weight"].transpose(1, 2) + p["0.bias"].unsqueeze(1))
    h = torch.relu(h @ p["2.weight"].transpose(1, 2) + p["2.bias"].unsqueeze(1))
    expected = (h @ p["4.weight"].transpose(1, 2) + p["4.bias"].unsqueeze(1)).squeeze(-1)
    assert torch.allclose(model(gamma, x), expected, atol=1e-12)


def test_function_family_and_batches() -> None:
    points = grid_points(256, "cpu")
    assert torch.allclose(target(torch.zeros(1, 1), points[None]), torch.sin(2 * math.pi * points)[None])
    assert torch.allclose(target(torch.ones(1, 1), points[None]), torch.sin(8 * math.pi * points)[None], atol=1e-5)
    gamma, x, y = training_batch(points, 16, 64, seed=5)
    again = training_batch(points, 16, 64, seed=5)
    assert all(torch.equal(a, b) for a, b in zip((gamma, x, y), again))
    assert gamma.shape == (16, 1) and x.shape == (16, 64) and ((gamma >= 0) & (gamma <= 1)).all()
    assert all(len(set(row.tolist())) == 64 for row in x)  # drawn without replacement
    eval_gamma, eval_x, _ = evaluation_set(points, [0.0, 0.5, 1.0])
    assert eval_x.shape == (3, 256) and eval_gamma[:, 0].tolist() == [0.0, 0.5, 1.0]


def test_upswing_counts_only_increases_in_decades() -> None:
    assert upswing([1.0, 0.5, 0.1, 0.01]) == 0.0
    assert upswing([1.0, 0.1, 1.0, 0.1]) == pytest.approx(1.0)


def _numpy_forward(h: HyperNetwork, inputs: np.ndarray) -> np.ndarray:
    """The hypernetwork's MLP in numpy: LeakyReLU(0.01) after each hidden linear layer, then the output layer."""
    z = inputs
    for layer in h.hidden:
        if isinstance(layer, torch.nn.Linear):
            z = z @ layer.weight.detach().numpy().T + layer.bias.detach().numpy()
            z = np.where(z > 0, z, 0.01 * z)
    return z @ h.output.weight.detach().numpy().T + h.output.bias.detach().numpy()


@pytest.mark.parametrize("variant", ["default", "encoding", "residual", "mip"])
def test_each_variant_has_its_input_map_and_initial_theta0(variant: str) -> None:
    h = hypernetwork(variant, seed=3)
    gamma = np.random.default_rng(0).uniform(0, 1, (5, 1))
    encoded = variant in ("encoding", "mip")
    inputs = np.concatenate([np.cos(np.pi * gamma / 2), np.sin(np.pi * gamma / 2)], 1) if encoded else gamma
    with torch.no_grad():
        assert np.allclose(h(torch.tensor(gamma)).numpy(), _numpy_forward(h, inputs), atol=1e-12)
    residual = variant in ("residual", "mip")
    assert (torch.count_nonzero(h.output.bias) > 0) == residual   # theta0 only for the residual variants


def test_theta0_has_the_primary_networks_kaiming_normal_statistics() -> None:
    """theta0 block by block against torch's own kaiming_normal_ (fan-in, gain of the leaky ReLU) applied to the
    primary network's tensors: pooled over 30 draws the standard deviations agree (fan-in 1 and 32 differ 5.7x)."""
    ours, reference = {}, {}
    for seed in range(30):
        h = hypernetwork("mip", seed=seed)
        start = 0
        for name, shape in SHAPES.items():
            size = math.prod(shape)
            if not name.endswith("bias"):
                ours.setdefault(name, []).append(h.output.bias[start:start + size].detach())
                tensor = torch.empty(shape, dtype=torch.float64)
                torch.nn.init.kaiming_normal_(tensor, a=0.01, nonlinearity="leaky_relu")
                reference.setdefault(name, []).append(tensor.flatten())
            start += size
    for name in ours:
        a, b = float(torch.cat(ours[name]).std()), float(torch.cat(reference[name]).std())
        assert abs(a / b - 1) < 0.15, (name, a, b)


def test_squared_errors_are_per_gamma_means_over_points() -> None:
    torch.manual_seed(4)
    model = HyperModel("mip", 32, 1, HIDDEN).double()
    gamma, x, y = training_batch(grid_points(256, "cpu").double(), 5, 64, seed=3)
    with torch.no_grad():
        prediction = model(gamma, x).numpy()
        errors = squared_errors(model, (gamma, x, y)).numpy()
    assert errors.shape == (5,)
    assert np.allclose(errors, ((prediction - y.numpy()) ** 2).mean(axis=1), atol=1e-12)


def test_upswing_adds_every_rise() -> None:
    assert upswing([1.0, 0.1, 1.0, 0.01, 1.0]) == pytest.approx(3.0)
