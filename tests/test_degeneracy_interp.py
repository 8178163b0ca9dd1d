"""degeneracy_interp: free directions, the LLC estimator and the interaction basis against independent oracles
(autograd Jacobians, scipy null spaces, Gibbs quadrature, explicit numpy forward passes and edge sums)."""

from pathlib import Path

import numpy as np
import pytest
import scipy.integrate
import scipy.linalg
import torch

from repro.papers.degeneracy_interp.degeneracy import (
    gauss_newton,
    null_dimension,
    per_sample_jacobians,
    predicted_free_directions,
    tangent_residual,
    tangent_vectors,
)
from repro.papers.degeneracy_interp.interaction import edges, gini, interaction_bases, layer_features, neuron_bases
from repro.papers.degeneracy_interp.llc import estimate_llc, localized_quadratic_llc, sgld_quadratic_expectation
from repro.papers.degeneracy_interp.mlp import FlatMLP, train
from repro.papers.degeneracy_interp.modularity import block_mask, coordinate_modules, interaction_graph
from repro.papers.degeneracy_interp.task import check_digits, plant, reparameterise


def worked_network(seed: int = 0) -> tuple[FlatMLP, torch.Tensor, torch.Tensor]:
    """A worked check: 6 inputs spanning 3 dims, 8 ReLUs, 2 outputs (74 parameters), random weights."""
    gen = torch.Generator().manual_seed(seed)
    model = FlatMLP([6, 8, 2])
    basis = torch.linalg.qr(torch.randn(6, 3, generator=gen, dtype=torch.float64))[0]
    return model, model.init(gen), torch.randn(200, 3, generator=gen, dtype=torch.float64) @ basis.T


def test_jacobians_match_autograd() -> None:
    model, theta, x = worked_network()
    jac = per_sample_jacobians(model, theta, x[:5])
    for i in range(5):
        reference = torch.autograd.functional.jacobian(lambda t, i=i: model.forward(t, x[i]), theta)
        torch.testing.assert_close(jac[i], reference)


@pytest.mark.parametrize(("dead", "synchronised", "expected"), [(0, 0, 32), (1, 0, 37), (0, 3, 41)])
def test_worked_counts(dead: int, synchronised: int, expected: int) -> None:
    """The card's worked check (computed independently of this code), with the suite's +-50 planted biases."""
    model, theta, x = worked_network()
    star = plant(model, theta, dead, synchronised, 50.0)
    jac = per_sample_jacobians(model, star, x)
    flat = jac.reshape(-1, model.size).numpy()
    assert null_dimension(jac) == expected
    assert scipy.linalg.null_space(flat, rcond=1e-7).shape[1] == expected
    tangents = tangent_vectors(model, star, x)
    assert predicted_free_directions(tangents, 1e-8) == expected
    assert tangent_residual(jac, tangents) < 1e-12


@pytest.mark.parametrize("bias", [5.0, 50.0, 500.0, 5000.0])
def test_counts_do_not_depend_on_the_plant_bias(bias: float) -> None:
    """Three always-active ReLUs: any bias that keeps them active on every point gives the same network geometry up to
    scale, so the same 41 free directions (the card's worked count), predicted and measured, each exactly free. A
    relative cut on Gram / H_B eigenvalues (1e-10 x max) broke this: the largest eigenvalues grow like bias^2 while
    genuine small ones do not, so at bias 50 two activation directions with Gram eigenvalue 4e-11 x max were
    predicted free (43, residual 6e-6) and at bias 500 one H_B direction was measured free (42)."""
    model, theta, x = worked_network()
    star = plant(model, theta, 0, 3, bias)
    jac = per_sample_jacobians(model, star, x)
    tangents = tangent_vectors(model, star, x)
    assert null_dimension(jac) == 41
    assert predicted_free_directions(tangents, 1e-8) == 41
    assert tangent_residual(jac, tangents) < 1e-12


def test_measured_null_space_is_what_finite_differences_find_free() -> None:
    """Autograd-free oracle (central differences of the outputs) at bias 500: the null_dimension smallest eigen-
    directions of H_B leave the outputs unchanged; the next one, with eigenvalue below 1e-10 x max, moves them by
    sqrt(eigenvalue) per unit step, so it is not free."""
    model, theta, x = worked_network()
    star = plant(model, theta, 0, 3, 500.0)
    jac = per_sample_jacobians(model, star, x)
    evals, evecs = np.linalg.eigh(gauss_newton(jac))
    free = null_dimension(jac)

    def moved(direction: np.ndarray, step: float = 1e-3) -> float:
        v = torch.tensor(direction)
        change = (model.forward(star + step * v, x) - model.forward(star - step * v, x)) / (2 * step)
        return float(change.pow(2).sum(-1).mean().sqrt())

    assert max(moved(evecs[:, i]) for i in range(free)) < 1e-6
    assert evals[free] < 1e-10 * evals[-1]
    assert moved(evecs[:, free]) == pytest.approx(np.sqrt(evals[free]), rel=1e-3)
    assert moved(evecs[:, free]) > 1e-3


def test_partially_synchronised_units_free_the_out_weights_of_a_sparse_unit() -> None:
    """Hand-derived free direction of type (b) restricted to a unit's active points: layer-1 units i (always active)
    and j (active exactly where layer-0 unit k is) have different patterns, yet both are active wherever h_k != 0, so
    dW[i, k] = a_j, dW[j, k] = -a_i (a the out-weights) changes f by h_k (a_i a_j - a_j a_i) = 0. Backward Jacobians
    taken over all points (the layer-wise statement) miss it."""
    gen = torch.Generator().manual_seed(0)
    model = FlatMLP([3, 4, 4, 1])
    theta = model.init(gen)
    w0, b0 = model.unpack(theta, 0)
    x = torch.randn(400, 3, generator=gen, dtype=torch.float64)
    x = x[(x @ w0[0] + b0[0]).abs() > 0.5]                # unit k = 0 of layer 0 is > 0.5 where active
    w1, b1 = model.unpack(theta, 1)                       # views into theta
    b1[0] = 50.0                                          # i = 0: always active
    w1[1], b1[1] = torch.eye(4, dtype=torch.float64)[0] * 50.0, -10.0   # j = 1: active exactly where h_k > 0.5
    _, pre = model.activations(theta, x)
    assert pre[1][:, 0].min() > 0 and torch.equal(pre[1][:, 1] > 0, pre[0][:, 0] > 0)
    a = model.unpack(theta, 2)[0][0].numpy()
    v = np.zeros(model.size)
    w = model.slices[1][0]
    v[w.start + 0 * 4 + 0], v[w.start + 1 * 4 + 0] = a[1], -a[0]
    jac = per_sample_jacobians(model, theta, x)
    assert np.abs(jac.reshape(-1, model.size).numpy() @ v).max() < 1e-12
    tangents = tangent_vectors(model, theta, x)
    basis = scipy.linalg.orth(tangents.T)
    assert np.linalg.norm(v - basis @ (basis.T @ v)) < 1e-10 * np.linalg.norm(v)
    assert predicted_free_directions(tangents, 1e-8) == null_dimension(jac)
    assert tangent_residual(jac, tangents) < 1e-12


def test_predicted_directions_are_free_on_a_trained_student() -> None:
    """(Was the claim predicted_directions_are_free: true by construction of the tangent vectors.) On a trained
    student with a planted dead unit every predicted tangent vector leaves the outputs unchanged to first order."""
    gen = torch.Generator().manual_seed(3)
    model = FlatMLP([6, 10, 10, 1])
    basis = torch.linalg.qr(torch.randn(6, 3, generator=gen, dtype=torch.float64))[0]
    x = torch.randn(300, 3, generator=gen, dtype=torch.float64) @ basis.T
    y = torch.tanh(x.sum(1, keepdim=True))
    theta = train(model, model.init(gen), x, y, 200, 1e-2)
    star = plant(model, theta, 2, 0, 50.0)
    jac = per_sample_jacobians(model, star, x)
    tangents = tangent_vectors(model, star, x)
    assert predicted_free_directions(tangents, 1e-8) > 0
    assert tangent_residual(jac, tangents) < 1e-12


def test_llc_calibration_linear_regression() -> None:
    """f_theta(x) = theta^T x in d dims is regular: lambda = d / 2."""
    gen = torch.Generator().manual_seed(1)
    d, n = 4, 1000
    x = torch.randn(n, d, generator=gen, dtype=torch.float64)
    star = torch.randn(d, generator=gen, dtype=torch.float64)

    def loss(t: torch.Tensor) -> torch.Tensor:
        return ((x @ (t - star)) ** 2).mean()

    hessian = (x.T @ x / n).numpy()
    eps = 0.04 / (n / np.log(n) * np.linalg.eigvalsh(hessian).max())
    llc = estimate_llc(loss, star, n, eps, 1.0, 3000, 500, 2, gen)
    assert llc == pytest.approx(d / 2, rel=0.2)
    assert localized_quadratic_llc(np.linalg.eigvalsh(hessian), n, 1.0) == pytest.approx(d / 2, rel=0.01)


def digits_like(seed: int = 2):
    rng = np.random.default_rng(seed)
    x = np.abs(rng.standard_normal((400, 12)))
    x[:, :2] = 0.0                                      # always-zero inputs (type-a degeneracy)
    widths = [12, 10, 8, 3]
    weights = [(rng.standard_normal((o, i)) / np.sqrt(i), 0.1 * rng.standard_normal(o))
               for i, o in zip(widths[:-1], widths[1:])]
    return weights, x, rng


@pytest.mark.parametrize("centre", [False, True])
def test_interaction_basis_invariant_under_reparameterisation(centre: bool) -> None:
    weights, x, rng = digits_like()
    moved = reparameterise(weights, rng, dead_inputs=(x == 0).all(0))
    feats, maps = layer_features(weights, x, centre)
    feats_moved, maps_moved = layer_features(moved, x, centre)
    np.testing.assert_allclose(feats_moved[-1], feats[-1], atol=1e-12)            # same function
    assert not np.allclose(moved[0][0], weights[0][0])                          # different weights
    for b0, b1, f0, f1 in zip(interaction_bases(feats, maps, 1e-12), interaction_bases(feats_moved, maps_moved, 1e-12),
                              feats, feats_moved):
        h0, h1 = f0 @ b0.c, f1 @ b1.c
        np.testing.assert_allclose(np.abs(h0), np.abs(h1), atol=1e-7 * np.abs(h0).max())


def test_interaction_basis_whitening() -> None:
    """C^T G C = Lam (features uncorrelated, variances = the eigenvalues of M) and f = P fhat on the data."""
    weights, x, _ = digits_like()
    feats, maps = layer_features(weights, x, True)
    for basis, f in zip(interaction_bases(feats, maps, 1e-12)[:-1], feats):
        gram = basis.c.T @ (f.T @ f / len(f)) @ basis.c
        np.testing.assert_allclose(gram, np.diag(basis.strengths), atol=1e-9 * basis.strengths.max())


def test_gini_extremes() -> None:
    assert gini(np.ones(10)) == pytest.approx(0.0, abs=1e-12)
    assert gini(np.eye(1, 10)) == pytest.approx(0.9)


def test_block_mask() -> None:
    model = FlatMLP([8, 16, 16, 2])
    mask = block_mask(model, 2)
    w, _ = model.unpack(mask, 1)
    assert w[:8, :8].all() and not w[:8, 8:].any() and not w[8:, :8].any()
    np.testing.assert_array_equal(coordinate_modules(6, 2), [0, 0, 0, 1, 1, 1])


def block_network(seed: int = 4) -> tuple[list, np.ndarray]:
    """Two towers 4 -> 8 -> 8 -> 1 side by side (block-diagonal weights) on two independent input blocks."""
    gen = torch.Generator().manual_seed(seed)
    model = FlatMLP([8, 16, 16, 2])
    theta = model.init(gen) * block_mask(model, 2)
    weights = [tuple(t.numpy() for t in model.unpack(theta, layer)) for layer in range(len(model.slices))]
    return weights, torch.randn(500, 8, generator=gen, dtype=torch.float64).numpy()


def test_module_wise_basis_keeps_a_block_network_block_diagonal() -> None:
    """Decomposed module by module, every basis vector lives on one tower and no edge joins the towers; decomposed
    globally, the sample covariance between the independent towers rotates features across them."""
    weights, x = block_network()
    graph, modules = interaction_graph(weights, x, 1e-12, blocks=2)
    across = sum(d["weight"] for a, b, d in graph.edges(data=True) if modules[a] != modules[b])
    assert across == 0.0 and set(modules) == {0, 1} and graph.number_of_edges() > 0
    feats, maps = layer_features(weights, x, centre=True, constant=False)
    labels = [coordinate_modules(f.shape[1], 2) for f in feats]

    def largest_mixing(bases: list) -> float:
        """Over all basis vectors: the smaller tower's share of the vector's squared weight (0 = one tower)."""
        shares = [np.minimum((b.c[label == 0] ** 2).sum(0), (b.c[label == 1] ** 2).sum(0)) / (b.c ** 2).sum(0)
                  for b, label in zip(bases, labels)]
        return float(max(share.max() for share in shares))

    module_wise = interaction_bases(feats, maps, 1e-12, labels)
    for basis, label in zip(module_wise, labels):
        assert np.all((basis.c != 0) <= (label[:, None] == basis.modules[None, :]))
    assert largest_mixing(module_wise) == 0.0
    assert largest_mixing(interaction_bases(feats, maps, 1e-12)) > 0.1


def test_sgld_chain_matches_its_closed_form_on_a_quadratic() -> None:
    """On L(theta) = delta^T H delta the chain is Gaussian AR(1) per eigen-direction: the Monte Carlo estimate of a
    short, unequilibrated chain must match sgld_quadratic_expectation, which is well below the stationary value."""
    gen = torch.Generator().manual_seed(5)
    d, n, gamma = 12, 1000, 1.0
    eigenvalues = np.logspace(-4, 0, d)
    rotation = np.linalg.qr(np.random.default_rng(5).standard_normal((d, d)))[0]
    hessian = torch.tensor(rotation * eigenvalues @ rotation.T)

    def loss(t: torch.Tensor) -> torch.Tensor:
        return t @ hessian @ t

    eps, steps, burn_in = 0.5 / (n / np.log(n) * eigenvalues[-1]), 60, 20
    expected = sgld_quadratic_expectation(eigenvalues, n, eps, gamma, steps, burn_in)
    stationary = sgld_quadratic_expectation(eigenvalues, n, eps, gamma)
    assert expected < 0.8 * stationary
    assert stationary == pytest.approx(localized_quadratic_llc(eigenvalues, n, gamma), rel=0.3)
    estimate = estimate_llc(loss, torch.zeros(d, dtype=torch.float64), n, eps, gamma, steps, burn_in, 200, gen)
    assert estimate == pytest.approx(expected, rel=0.08)


def test_digits_are_validated() -> None:
    data, target = np.zeros((5, 64)), np.arange(5)
    check_digits(data, target)
    with pytest.raises(ValueError, match="expected \\(n, 64\\).*reinstall scikit-learn"):
        check_digits(np.zeros((5, 63)), target)
    with pytest.raises(ValueError, match="outside 0..16"):
        check_digits(np.full((5, 64), 17.0), target)
    with pytest.raises(ValueError, match="labels outside 0..9"):
        check_digits(data, np.array([0, 1, 2, 3, 10]))


def write_dry_data(data_dir: Path) -> None:
    """Nothing: the planted and modular students train on generated data and the digits come bundled with
    scikit-learn (load_digits reads no file under data_dir), so scale=dry reads no file; its dry.yaml runs the paper
    scale's sizes with fewer steps and epochs."""


def test_gauss_newton_is_the_sample_mean_of_jt_j() -> None:
    model, theta, x = worked_network()
    jac = per_sample_jacobians(model, theta, x[:7])
    expected = sum(j.T @ j for j in jac.numpy()) / 7
    np.testing.assert_allclose(gauss_newton(jac), expected, rtol=1e-12, atol=1e-14)


def test_localized_quadratic_llc_against_gibbs_quadrature() -> None:
    """Per eigen-direction h the localised Gibbs law is exp(-n beta h t^2 - gamma t^2 / 2); n beta E[h t^2] under it
    (scipy quadrature) is what localized_quadratic_llc adds up."""
    n, gamma, hs = 500, 3.0, np.array([1e-5, 1e-3, 0.1])
    n_beta = n / np.log(n)
    total = 0.0
    for h in hs:
        def weight(t: float, h: float = h) -> float:
            return np.exp(-(n_beta * h + gamma / 2) * t**2)
        scale = 1 / np.sqrt(n_beta * h + gamma / 2)
        second = scipy.integrate.quad(lambda t: t**2 * weight(t), -20 * scale, 20 * scale)[0]
        total += n_beta * h * second / scipy.integrate.quad(weight, -20 * scale, 20 * scale)[0]
    assert localized_quadratic_llc(hs, n, gamma) == pytest.approx(total, rel=1e-8)


def numpy_forward(weights: list, x: np.ndarray) -> tuple[list, np.ndarray]:
    """Hidden activations and logits of the ReLU MLP, written out."""
    hidden, h = [], x
    for w, b in weights[:-1]:
        h = np.maximum(h @ w.T + b, 0.0)
        hidden.append(h)
    return hidden, h @ weights[-1][0].T + weights[-1][1]


@pytest.mark.parametrize("centre", [False, True])
def test_layer_features_are_the_network_activations(centre: bool) -> None:
    weights, x, _ = digits_like()
    feats, _ = layer_features(weights, x, centre)
    hidden, logits = numpy_forward(weights, x)
    for f, h in zip(feats[:-1], hidden):
        np.testing.assert_allclose(f[:, :-1], h - h.mean(0) if centre else h, atol=1e-12)
    np.testing.assert_allclose(feats[-1], logits - logits.mean(0) if centre else logits, atol=1e-12)


def test_neuron_basis_edges_are_the_attribution_sums() -> None:
    """Neuron basis, first hidden transition: E_ij = mean_x (1[p_i > 0] W_ij h_j)^2 (j < width) and the constant's
    edge mean_x (1[p_i > 0] b_i)^2, with p = W h + b the next layer's pre-activations (uncentred features)."""
    weights, x, _ = digits_like()
    feats, maps = layer_features(weights, x, centre=False)
    (first, *_rest) = edges(feats, maps, neuron_bases(feats))
    hidden, _ = numpy_forward(weights, x)
    w, b = weights[1]
    gate = (hidden[0] @ w.T + b > 0).astype(float)
    expected = np.mean((gate[:, :, None] * w[None] * hidden[0][:, None, :]) ** 2, axis=0)
    np.testing.assert_allclose(first[:-1, :-1], expected, atol=1e-12)
    np.testing.assert_allclose(first[:-1, -1], np.mean((gate * b) ** 2, axis=0), atol=1e-12)
