"""PER (soft_equiv): projectors against independently computed equivariant bases, the networks'
exact and broken symmetries, the regulariser and its retuning, and the closed-form inertia tensor."""

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.linalg import block_diag, null_space
from scipy.spatial.transform import Rotation
from threadpoolctl import threadpool_limits

from repro.papers.soft_equiv.data import REP_IN, REP_OUT, draw, inertia, modified_inertia
from repro.papers.soft_equiv.models import PER, BiLinear, TensorNet
from repro.papers.soft_equiv.reps import (
    GROUPS,
    TensorRep,
    WeightProjector,
    bias_projector,
    invariant_projector,
    uniform_rep,
)
from repro.papers.soft_equiv.task import equivariance_error

FLIP_Z = np.diag([1.0, 1.0, -1.0])


def write_dry_data(data_dir: Path) -> None:
    """Nothing to write: the data are generated in code at every scale."""


def o3_elements(count: int, seed: int) -> list[np.ndarray]:
    """Haar rotations from scipy, every other one made improper (times diag(1, 1, -1))."""
    rotations = Rotation.random(count, random_state=seed).as_matrix()
    return [r @ FLIP_Z if k % 2 else r for k, r in enumerate(rotations)]


def o2_elements(axis: str, count: int, seed: int) -> list[np.ndarray]:
    """Rotations about ``axis`` by uniform angles, every other one times a reflection fixing the axis."""
    angles = np.random.default_rng(seed).uniform(0, 2 * np.pi, count)
    reflection = {"z": np.diag([1.0, -1.0, 1.0]), "x": np.diag([1.0, 1.0, -1.0]), "y": np.diag([-1.0, 1.0, 1.0])}
    return [Rotation.from_euler(axis, a).as_matrix() @ (reflection[axis] if k % 2 else np.eye(3))
            for k, a in enumerate(angles)]


def rho(counts: tuple[int, ...], g: np.ndarray) -> np.ndarray:
    """Scalars (1), vectors (g), rank-2 (g kron g) and rank-3 tensors, block-diagonal."""
    powers = [np.eye(1), g, np.kron(g, g), np.kron(np.kron(g, g), g)]
    return block_diag(*[powers[r] for r, count in enumerate(counts) for _ in range(count)])


def sampled_projector(rep_out: TensorRep, rep_in: TensorRep, elements: list[np.ndarray]) -> np.ndarray:
    """The oracle: the null space of rho_out(g) W rho_in(g)^T = W for sampled g (vec W row-major)."""
    size = rep_out.size * rep_in.size
    constraints = [np.kron(rho(rep_out.counts, g), rho(rep_in.counts, g)) - np.eye(size) for g in elements]
    basis = null_space(np.concatenate(constraints))
    return basis @ basis.T


@pytest.mark.parametrize("name", list(GROUPS))
def test_invariant_projectors_are_orthogonal_projectors(name: str) -> None:
    for rank in range(5):
        p = invariant_projector(GROUPS[name], rank)
        assert np.allclose(p @ p, p, atol=1e-10) and np.allclose(p, p.T, atol=1e-12)


@pytest.fixture(autouse=True)
def one_blas_thread() -> None:
    """Small SVDs on a shared 2-core machine: BLAS threads only oversubscribe it."""
    with threadpool_limits(1):
        yield


def test_projector_ranks_count_the_equivariant_maps() -> None:
    rank = {name: [round(np.trace(invariant_projector(GROUPS[name], r))) for r in range(5)] for name in GROUPS}
    # vector -> vector maps (rank-2 invariants): O(3) only multiples of I; O(2) about z diag(a, a, b)
    assert rank["o3"][2] == 1 and rank["o2xy"][2] == 2
    # invariant vectors: none under O(3); the fixed axis under an embedded O(2)
    assert rank["o3"][1] == 0 and rank["o2xy"][1] == rank["o2yz"][1] == rank["o2xz"][1] == 1
    # rank-4 isotropic tensors of O(3): delta_ij delta_kl and its two permutations
    assert rank["o3"][4] == 3


@pytest.mark.parametrize("name,elements", [("o3", o3_elements(4, 0)), ("o2xy", o2_elements("z", 4, 1)),
                                           ("o2yz", o2_elements("x", 4, 2)), ("o2xz", o2_elements("y", 4, 3))])
def test_layer_projector_matches_the_sampled_null_space(name: str, elements: list[np.ndarray]) -> None:
    rep_in, rep_out = TensorRep((1, 1, 0, 1)), TensorRep((1, 1, 1))
    project = WeightProjector(rep_out, rep_in, [name], "cpu")
    units = torch.eye(rep_out.size * rep_in.size).reshape(-1, rep_out.size, rep_in.size)
    ours = torch.stack([project(unit)[0].reshape(-1) for unit in units], dim=1).numpy()  # column n: P e_n
    assert np.allclose(ours, sampled_projector(rep_out, rep_in, elements), atol=1e-5)
    bias = bias_projector(rep_out, [name], "cpu")[0].numpy()
    assert np.allclose(bias, sampled_projector(rep_out, TensorRep((1,)), elements), atol=1e-5)


def equivariance_gap(f, rep_in: TensorRep, rep_out: TensorRep, g: np.ndarray, x: torch.Tensor) -> float:
    a = torch.tensor(rho(rep_in.counts, g), dtype=x.dtype)
    b = torch.tensor(rho(rep_out.counts, g), dtype=x.dtype)
    with torch.no_grad():
        moved, expected = f(x @ a.T), f(x) @ b.T
    return float((moved - expected).norm() / expected.norm())


def test_emlp_networks_have_exactly_their_symmetry() -> None:
    torch.manual_seed(0)
    x = torch.randn(16, REP_IN.size)
    hidden = TensorRep((4, 3, 1, 1))
    o3 = TensorNet(REP_IN, hidden, REP_OUT, 2, "projected", ["o3"], False, "cpu")
    assert max(equivariance_gap(o3, REP_IN, REP_OUT, g, x) for g in o3_elements(4, 5)) < 1e-4
    about_z = TensorNet(REP_IN, hidden, REP_OUT, 2, "projected", ["o2xy"], False, "cpu")
    assert max(equivariance_gap(about_z, REP_IN, REP_OUT, g, x) for g in o2_elements("z", 4, 6)) < 1e-4
    assert min(equivariance_gap(about_z, REP_IN, REP_OUT, g, x) for g in o2_elements("x", 4, 7)) > 1e-2


def test_bilinear_layer_is_o3_equivariant() -> None:
    torch.manual_seed(1)
    rep = TensorRep((5, 4, 2, 1))
    layer, x = BiLinear(rep), torch.randn(8, rep.size)
    assert max(equivariance_gap(layer, rep, rep, g, x) for g in o3_elements(4, 8)) < 1e-4


def test_regulariser_vanishes_exactly_for_the_projected_group_and_retune_follows_the_reference() -> None:
    torch.manual_seed(2)
    model = PER(REP_IN, TensorRep((4, 3, 1, 1)), REP_OUT, 2, ["o3", "o2xy", "o2yz", "o2xz"], [0, 100, 100, 100], "cpu")
    with torch.no_grad():
        for linear in model.linears():  # project every layer onto O(2) about z (the second candidate)
            linear.w.copy_(linear.weight_projector(linear.w)[1])
            linear.b.copy_((linear.bias_projector @ linear.b)[1])
        r = model.regularisers()
    assert float(r[1]) < 1e-8 and float(r[[0, 2, 3]].min()) > 1e-2
    model.retune(2.0)
    # the exact group keeps its weight; the weight of the O(3) candidate (0) stays 0; the others shrink
    # by (min R / R_i)^2 with min R that of the exact group
    expected = 100 * (r[1] / r[2:]) ** 2
    assert float(model.lambdas[0]) == 0 and float(model.lambdas[1]) == 100
    assert torch.allclose(model.lambdas[2:], expected)


def test_inertia_against_the_closed_form_per_body() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 20))
    x[:, :5] = np.abs(x[:, :5])
    expected = np.zeros((4, 3, 3))
    for n in range(4):
        for body in range(5):
            m, r = x[n, body], x[n, 5 + 3 * body: 8 + 3 * body]
            for j in range(3):
                for k in range(3):
                    expected[n, j, k] += m * ((r @ r) * (j == k) - r[j] * r[k])
    assert np.allclose(inertia(x), expected)
    modified = modified_inertia(x, 0.3).reshape(4, 3, 3)
    assert np.allclose(modified[:, :, :2], expected[:, :, :2])
    assert np.allclose(modified[:, :, 2], 1.3 * expected[:, :, 2])


def test_the_target_is_exactly_o2_about_z_and_not_o3() -> None:
    x = np.random.default_rng(4).standard_normal((8, 20))

    def target(inputs: torch.Tensor) -> torch.Tensor:
        return torch.tensor(modified_inertia(inputs.double().numpy(), 0.3))

    xt = torch.tensor(x)
    assert max(equivariance_gap(target, REP_IN, REP_OUT, g, xt) for g in o2_elements("z", 4, 9)) < 1e-5
    assert min(equivariance_gap(target, REP_IN, REP_OUT, g, xt) for g in o2_elements("y", 4, 10)) > 1e-2
    plain = torch.tensor(modified_inertia(x, 0.0))
    assert np.allclose(plain.numpy().reshape(8, 3, 3), inertia(x))  # eps = 0: the O(3)-equivariant inertia


def test_uniform_rep_follows_emlp_heuristic() -> None:
    assert uniform_rep(27) == TensorRep((9, 3, 1)) and uniform_rep(64) == TensorRep((27, 9, 3))
    assert uniform_rep(108) == TensorRep((27, 9, 3, 1)) and uniform_rep(384) == TensorRep((108, 36, 12, 4))


@pytest.mark.parametrize("names", [list(GROUPS), ["o3"]])  # O(3) alone: rank-1 blocks have no invariants
def test_regulariser_residuals_equal_the_distance_to_the_projection(names: list[str]) -> None:
    torch.manual_seed(5)
    rep_in, rep_out = TensorRep((2, 2, 1)), TensorRep((3, 1, 1))
    project = WeightProjector(rep_out, rep_in, names, "cpu")
    w = torch.randn(rep_out.size, rep_in.size)
    expected = 0.5 * ((w - project(w)) ** 2).sum((1, 2))
    assert torch.allclose(project.residuals(w), expected, rtol=1e-5)


def test_draw_has_softplus_masses_and_shifts_only_the_positions() -> None:
    x, y = draw(6, 0.3, 0.5, seed=3)
    z = np.random.default_rng(3).standard_normal((6, 20))  # the same normal draws
    assert np.allclose(x[:, :5], np.log1p(np.exp(z[:, :5])), atol=1e-12)
    assert np.allclose(x[:, 5:], z[:, 5:] + 0.5, atol=1e-12)
    assert np.allclose(y, modified_inertia(x, 0.3))


def test_per_regulariser_is_the_distance_of_weights_and_biases_to_the_sampled_equivariant_maps() -> None:
    """R_i = sum over layers of 1/2 ||W - P_i W||^2 + 1/2 ||b - P_i b||^2 with P_i the sampled null-space
    projectors (the oracle above), on a small network."""
    torch.manual_seed(6)
    model = PER(REP_IN, TensorRep((2, 1)), REP_OUT, 1, ["o3", "o2xy"], [1.0, 1.0], "cpu")
    elements = {"o3": o3_elements(4, 11), "o2xy": o2_elements("z", 4, 12)}
    expected = []
    for name in ("o3", "o2xy"):
        total = 0.0
        for linear in model.linears():
            w, b = linear.w.detach().double().numpy().ravel(), linear.b.detach().double().numpy()
            p = sampled_projector(linear.rep_out, linear.rep_in, elements[name])
            p_bias = sampled_projector(linear.rep_out, TensorRep((1,)), elements[name])
            total += 0.5 * ((w - p @ w) ** 2).sum() + 0.5 * ((b - p_bias @ b) ** 2).sum()
        expected.append(total)
    with torch.no_grad():
        assert np.allclose(model.regularisers().numpy(), expected, rtol=1e-4)


def _probe(elements: list[np.ndarray], x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return (x, torch.tensor(np.stack([rho(REP_IN.counts, g) for g in elements])),
            torch.tensor(np.stack([rho(REP_OUT.counts, g) for g in elements])))


def test_equivariance_error_vanishes_on_the_exact_symmetry_and_has_the_reference_normalisation() -> None:
    """Zero for the target under rotations about z (rho_out(g) f(x) = f(rho_in(g) x)); for a constant
    f = V, each input's row v gives ||v - rho_out(g) v|| / (||v|| + ||rho_out(g) v||) =
    ||v - rho_out(g) v|| / (2 ||v||), averaged over rows and group elements (the reference's per-sample
    normalisation)."""
    x = torch.tensor(np.random.default_rng(13).standard_normal((10, 20)))
    turns = [Rotation.from_euler("z", a).as_matrix() for a in (0.4, 1.3, 2.5)]

    def target(inputs: torch.Tensor) -> torch.Tensor:
        return torch.tensor(modified_inertia(inputs.numpy(), 0.3))

    assert equivariance_error(target, _probe(turns, x)) < 1e-12
    v = np.random.default_rng(14).standard_normal((10, 9))
    constant = _probe(turns, x)
    expected = np.mean([np.linalg.norm(v - v @ b.T, axis=1) / (2 * np.linalg.norm(v, axis=1))
                        for b in constant[2].numpy()])
    assert equivariance_error(lambda inputs: torch.tensor(v), constant) == pytest.approx(expected, rel=1e-12)
