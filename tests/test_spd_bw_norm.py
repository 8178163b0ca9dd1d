"""spd_bw_norm: the Bures-Wasserstein and affine-invariant operations against pyriemann and scipy, closed
forms of the BW geometry, the GBWBN layer's centring, gradients of the eigen-functions, the data generators,
and the MAMEM loader on files written in the official MAT format."""

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from pyriemann.geometry.distance import distance_wasserstein
from pyriemann.geometry.mean import mean_riemann, mean_wasserstein
from scipy.io import savemat
from scipy.linalg import expm, solve_continuous_lyapunov, sqrtm

from repro.core.errors import DataUnavailableError
from repro.papers.spd_bw_norm import spd
from repro.papers.spd_bw_norm.data import (
    digits_covariances,
    ill_conditioned_classes,
    load_mamem_subject,
    region_covariance,
)
from repro.papers.spd_bw_norm.models import GBWBN, SPDNetBN, StiefelAdam, StiefelParameter
from tests.helpers import compose_config


def random_spd(rng: np.random.Generator, n: int, count: int, spread: float = 1.0) -> np.ndarray:
    a = rng.normal(size=(count, n, n))
    eigvals = np.exp(spread * rng.normal(size=(count, n)))
    q = np.linalg.qr(a)[0]
    return (q * eigvals[:, None, :]) @ q.transpose(0, 2, 1)


RNG = np.random.default_rng(0)
BATCH = random_spd(RNG, 5, 12)
T = torch.tensor(BATCH)


def test_distance_to_identity_from_eigenvalues_matches_pyriemann() -> None:
    eye = np.eye(5)
    oracle = np.array([distance_wasserstein(eye, b) ** 2 for b in BATCH])
    np.testing.assert_allclose(spd.bw_distance_sq_identity(T).numpy(), oracle, rtol=1e-8)


def test_fused_eigen_functions_equal_their_compositions() -> None:
    """ReEig then LogEig as one eigen-function, and P^1/2, P^-1/2 from one eigendecomposition: the same values
    (against scipy) and, for the fused ReEig-LogEig, the same gradient as the two separate layers."""
    x = torch.tensor(BATCH[:4] - 0.8 * np.eye(5), requires_grad=True)  # some eigenvalues below the threshold
    threshold = 0.3
    assert (torch.linalg.eigvalsh(x) < threshold).any() and (torch.linalg.eigvalsh(x) > threshold).any()
    weights = torch.tensor(RNG.normal(size=(4, 5, 5)))
    fused = spd.log_rectify(x, threshold)
    separate = spd.logm(spd.rectify(x, threshold))
    np.testing.assert_allclose(fused.detach().numpy(), separate.detach().numpy(), atol=1e-12)
    grad_fused = torch.autograd.grad((fused * weights).sum(), x)[0]
    grad_separate = torch.autograd.grad((separate * weights).sum(), x)[0]
    np.testing.assert_allclose(grad_fused.numpy(), grad_separate.numpy(), atol=1e-10)
    root, inv_root = spd.root_pair(T[0])
    np.testing.assert_allclose(root.numpy(), sqrtm(BATCH[0]).real, atol=1e-10)
    np.testing.assert_allclose(inv_root.numpy(), np.linalg.inv(sqrtm(BATCH[0]).real), atol=1e-10)


def test_bw_barycenter_fixed_point_matches_pyriemann_and_one_step_is_close() -> None:
    oracle = mean_wasserstein(BATCH, tol=1e-12, maxiter=500)
    converged = spd.bw_barycenter(T, 200).numpy()
    np.testing.assert_allclose(converged, oracle, atol=1e-8)
    # The layer's single iteration from the arithmetic mean: much nearer the barycenter than the start.
    one = spd.bw_barycenter(T, 1).numpy()
    start = BATCH.mean(0)
    assert distance_wasserstein(one, oracle) < 0.5 * distance_wasserstein(start, oracle)


def test_karcher_mean_matches_pyriemann_riemann_mean() -> None:
    np.testing.assert_allclose(spd.ai_karcher_mean(T, 100).numpy(), mean_riemann(BATCH, tol=1e-12, maxiter=500),
                               atol=1e-8)


def test_bw_exp_log_closed_forms_and_lyapunov() -> None:
    p, x = T[0], T[1]
    v = spd.bw_log(p, x)
    np.testing.assert_allclose(spd.bw_exp(p, v).numpy(), x.numpy(), atol=1e-9)
    np.testing.assert_allclose(spd.lyapunov(p, v).numpy(), solve_continuous_lyapunov(BATCH[0], v.numpy()),
                               atol=1e-10)
    eye = torch.eye(5, dtype=torch.float64)
    np.testing.assert_allclose(spd.bw_log(eye, x).numpy(), spd.bw_log_identity(x).numpy(), atol=1e-10)
    np.testing.assert_allclose(spd.bw_log_identity(x).numpy(), 2 * (sqrtm(BATCH[1]).real - np.eye(5)), atol=1e-10)
    np.testing.assert_allclose(spd.bw_exp(eye, v).numpy(), spd.bw_exp_identity(v).numpy(), atol=1e-10)
    # |Log_P X|_P = d(P, X): the log's BW norm is the pyriemann distance.
    assert float(spd.bw_inner(p, v, v)) == pytest.approx(distance_wasserstein(BATCH[0], BATCH[1]) ** 2, rel=1e-8)


def test_bw_geodesic_closed_form_midpoint_is_the_two_point_barycenter() -> None:
    a, b = BATCH[2], BATCH[3]
    mid = spd.bw_geodesic(T[2], T[3], 0.5).numpy()
    np.testing.assert_allclose(mid, mean_wasserstein(np.stack([a, b]), tol=1e-12, maxiter=500), atol=1e-8)
    for t in (0.1, 0.7):
        point = spd.bw_geodesic(T[2], T[3], t).numpy()
        assert distance_wasserstein(a, point) == pytest.approx(t * distance_wasserstein(a, b), rel=1e-7)
    ai_point = spd.ai_geodesic(T[2], T[3], 0.3).numpy()
    # The AI geodesic point satisfies the same distance ratio in the AI metric (pyriemann's riemann distance).
    from pyriemann.geometry.distance import distance_riemann
    assert distance_riemann(a, ai_point) == pytest.approx(0.3 * distance_riemann(a, b), rel=1e-7)


def test_transport_to_identity_is_an_isometry_and_invertible() -> None:
    p = T[4]
    v, w = spd.bw_log(p, T[5]), spd.bw_log(p, T[6])
    moved_v, moved_w = spd.bw_transport_to_identity(p, v), spd.bw_transport_to_identity(p, w)
    eye = torch.eye(5, dtype=torch.float64)
    assert float(spd.bw_inner(eye, moved_v, moved_w)) == pytest.approx(float(spd.bw_inner(p, v, w)), rel=1e-9)
    np.testing.assert_allclose(spd.bw_transport_from_identity(p, moved_v).numpy(), v.numpy(), atol=1e-10)


def test_eig_function_gradients_match_finite_differences_and_stay_finite_at_identity() -> None:
    x = torch.tensor(BATCH[7], requires_grad=True)
    for fn in (spd.sqrtm, spd.logm, spd.invsqrtm, lambda m: spd.powm(m, 1.5)):
        assert torch.autograd.gradcheck(lambda m, f=fn: f(spd.sym(m)), (x,), eps=1e-6, atol=1e-5)
    eye = torch.eye(4, dtype=torch.float64, requires_grad=True)
    v = torch.tensor(random_spd(RNG, 4, 1)[0])
    (spd.bw_exp(eye, spd.bw_transport_from_identity(eye, v)).sum() + spd.sqrtm(eye).sum()).backward()
    assert torch.isfinite(eye.grad).all()
    # At a generic point the stable eigh backward equals torch's.
    p, v = torch.tensor(BATCH[8], requires_grad=True), T[9]
    ours = torch.autograd.grad(spd.bw_transport_to_identity(p, v).pow(3).sum(), p)[0]
    s, u = torch.linalg.eigh(p)
    scale = torch.sqrt(2 / (s[:, None] + s[None, :]))
    theirs = torch.autograd.grad((u @ (scale * (u.T @ v @ u)) @ u.T).pow(3).sum(), p)[0]
    np.testing.assert_allclose(ours.numpy(), spd.sym(theirs).numpy(), atol=1e-9)


def test_gbwbn_training_output_has_identity_barycenter() -> None:
    """With G = I, M = I, s = 1, theta = 1 and a converged barycenter, the outputs' BW barycenter is I
    (for a batch near I: far from it, I + V/2 of Exp_I can lose definiteness and Exp_I, Log_I stop being inverse)."""
    near = random_spd(np.random.default_rng(3), 5, 12, spread=0.3)
    layer = GBWBN(5, learn_metric=False, power=1.0, momentum=0.1, mean_iterations=200, eps=1e-5)
    layer.train()
    with torch.no_grad():
        out = layer(torch.tensor(near)).numpy()
    np.testing.assert_allclose(mean_wasserstein(out, tol=1e-12, maxiter=500), np.eye(5), atol=1e-6)
    # With a learned metric and a power, the output is still SPD and the running statistics move.
    layer = GBWBN(5, learn_metric=True, power=0.5, momentum=0.1, mean_iterations=1, eps=1e-5)
    with torch.no_grad():
        layer.metric.log.copy_(torch.tensor(np.diag(np.linspace(-0.5, 0.5, 5))))
        out = layer(T)
    assert torch.linalg.eigvalsh(out).min() > 0
    assert not torch.allclose(layer.running_mean, torch.eye(5, dtype=torch.float64))


def np_power(a: np.ndarray, t: float) -> np.ndarray:
    """A^t of SPD matrices (batched) by numpy's eigh."""
    s, u = np.linalg.eigh(a)
    return (u * s[..., None, :] ** t) @ np.swapaxes(u, -1, -2)


def symmetric(rng: np.random.Generator, n: int, scale: float) -> np.ndarray:
    a = rng.normal(0.0, scale, (n, n))
    return (a + a.T) / 2


def test_gbwbn_scales_the_dispersion_by_shift_squared_over_the_variance() -> None:
    """With G = M = I, theta = 1: d(I, out_i) = s / sqrt(v + eps) d(mu, X_i), because Log at mu, the transport to I
    and Exp_I, Log_I at I all preserve BW distances from the base point; v = mean_i d^2(X_i, I) (the official layer's
    variance). The batch is X_i = P^1/2 E_i P^1/2, E_i near I, P far from I (so every Exp_I stays valid)."""
    rng = np.random.default_rng(4)
    p_half = np_power(random_spd(rng, 5, 1, spread=0.8)[0], 0.5)
    batch = p_half @ random_spd(rng, 5, 10, spread=0.15) @ p_half
    layer = GBWBN(5, learn_metric=False, power=1.0, momentum=0.1, mean_iterations=200, eps=1e-5)
    with torch.no_grad():
        layer.shift.fill_(1.5)
        out = layer(torch.tensor(batch)).numpy()
    mu = mean_wasserstein(batch, tol=1e-12, maxiter=500)
    eye = np.eye(5)
    v = np.mean([distance_wasserstein(x, eye) ** 2 for x in batch])
    expected = 1.5 ** 2 / (v + 1e-5) * np.array([distance_wasserstein(x, mu) ** 2 for x in batch])
    np.testing.assert_allclose([distance_wasserstein(o, eye) ** 2 for o in out], expected, rtol=1e-6)


def test_gbwbn_running_statistics_with_a_metric_and_a_power() -> None:
    """One training pass from running mean I and variance 1 (momentum 0.1): the variance moves to 0.9 + 0.1 v with
    v = mean_i d^2(Y_i, I) / theta^2, Y_i = M^-1/2 X_i^theta M^-1/2; the mean moves 0.1 of the BW geodesic from I
    to the batch barycenter mu of the Y_i."""
    rng = np.random.default_rng(5)
    s_metric = symmetric(rng, 5, 0.3)
    layer = GBWBN(5, learn_metric=True, power=0.5, momentum=0.1, mean_iterations=200, eps=1e-5)
    with torch.no_grad():
        layer.metric.log.copy_(torch.tensor(s_metric))
        layer(T)
    inv_root = expm(-s_metric / 2)
    y = inv_root @ np_power(BATCH, 0.5) @ inv_root
    eye = np.eye(5)
    v = np.mean([distance_wasserstein(x, eye) ** 2 for x in y]) / 0.5 ** 2
    assert float(layer.running_var) == pytest.approx(0.9 + 0.1 * v, rel=1e-8)
    mu, running = mean_wasserstein(y, tol=1e-12, maxiter=500), layer.running_mean.numpy()
    assert distance_wasserstein(eye, running) == pytest.approx(0.1 * distance_wasserstein(eye, mu), rel=1e-6)
    assert distance_wasserstein(running, mu) == pytest.approx(0.9 * distance_wasserstein(eye, mu), rel=1e-6)


def test_gbwbn_is_the_identity_when_its_bias_is_the_running_mean() -> None:
    """Eval mode, s = 1, running variance 1 - eps and running mean G' = M^-1/2 G^theta M^-1/2: centring at G' and
    re-biasing at G' cancel (the transports to and from I are inverse), so the layer must return its input; every
    step of the GBW map (power theta, M^-1/2 congruence, their inverses) has to match for that."""
    rng = np.random.default_rng(6)
    s_metric, s_bias, theta = symmetric(rng, 5, 0.3), symmetric(rng, 5, 0.4), 1.5
    g = expm(s_bias)
    batch = np_power(g, 0.5) @ random_spd(rng, 5, 6, spread=0.05) @ np_power(g, 0.5)
    layer = GBWBN(5, learn_metric=True, power=theta, momentum=0.1, mean_iterations=1, eps=1e-5)
    inv_root = expm(-s_metric / 2)
    with torch.no_grad():
        layer.metric.log.copy_(torch.tensor(s_metric))
        layer.bias.log.copy_(torch.tensor(s_bias))
        layer.running_mean.copy_(torch.tensor(inv_root @ expm(theta * s_bias) @ inv_root))
        layer.running_var.fill_(1 - 1e-5)
        layer.eval()
        out = layer(torch.tensor(batch)).numpy()
    np.testing.assert_allclose(out, batch, atol=1e-8)


def test_spdnetbn_output_has_the_bias_as_its_karcher_mean() -> None:
    """Brooks et al.: B^-1/2 X_i B^-1/2 has affine-invariant mean I when B is the batch's Karcher mean, and the
    congruence by G^1/2 carries it to G (pyriemann's Riemannian mean as the oracle)."""
    s_bias = symmetric(np.random.default_rng(7), 5, 0.4)
    layer = SPDNetBN(5, momentum=0.1, mean_iterations=100)
    with torch.no_grad():
        layer.bias.log.copy_(torch.tensor(s_bias))
        out = layer(T).numpy()
    np.testing.assert_allclose(mean_riemann(out, tol=1e-12, maxiter=500), expm(s_bias), atol=1e-7)


def test_stiefel_gradient_is_the_frobenius_projection_onto_the_tangent_space() -> None:
    """Edelman, Arias & Smith (1998): at W on the Stiefel manifold the tangent space is {xi: W^T xi skew} and its
    Frobenius-orthogonal complement is {W S: S symmetric}; the projected gradient splits G along the two."""
    generator = torch.Generator().manual_seed(0)
    start = torch.linalg.qr(torch.randn(6, 3, dtype=torch.float64, generator=generator))[0]
    w = StiefelParameter(start.clone())
    gradient = torch.randn(6, 3, dtype=torch.float64, generator=generator)
    w.grad = gradient.clone()
    StiefelAdam([w], lr=0.01).step()
    xi = w.grad.detach()
    normal = gradient - xi
    np.testing.assert_allclose((start.T @ xi + xi.T @ start).numpy(), 0.0, atol=1e-12)
    np.testing.assert_allclose((start.T @ normal - normal.T @ start).numpy(), 0.0, atol=1e-12)
    np.testing.assert_allclose((normal - start @ start.T @ normal).numpy(), 0.0, atol=1e-12)


def test_stiefel_adam_keeps_orthonormal_columns() -> None:
    w = StiefelParameter(torch.linalg.qr(torch.randn(6, 3, dtype=torch.float64))[0])
    optimizer = StiefelAdam([w], lr=0.1)
    for _ in range(5):
        optimizer.zero_grad()
        (w ** 3).sum().backward()
        optimizer.step()
    np.testing.assert_allclose((w.T @ w).detach().numpy(), np.eye(3), atol=1e-12)


@pytest.mark.parametrize("kappa", [1.0, 3.0, 5.0])
def test_generator_has_the_requested_condition_number(kappa: float) -> None:
    x, y = ill_conditioned_classes(16, 4, kappa, 10, 0.5, 0.0, 0.0, 20000, 0.0, np.random.default_rng(1),
                                   np.random.default_rng(2))
    # Without rotation or jitter, and many draws, the sample covariance approaches the template.
    assert x.shape == (40, 16, 16) and sorted(np.bincount(y)) == [10] * 4
    cond = np.linalg.cond(x)
    assert np.all(np.abs(np.log10(cond) - kappa) < 0.1)


def test_region_covariance_of_digits() -> None:
    image = np.zeros((8, 8))
    image[2:6, 3] = 1.0
    cov = region_covariance(image, 0.0)
    # Features x, y over the 64 pixels of an 8 x 8 grid: 8 * sum_k (k - 3.5)^2 / 63 = 16 / 3.
    assert cov[0, 0] == pytest.approx(16 / 3) and cov[1, 1] == pytest.approx(16 / 3)
    x, y = digits_covariances(1e-4)
    assert x.shape == (1797, 7, 7) and set(y) == set(range(10))
    assert np.linalg.eigvalsh(x).min() >= 1e-4 - 1e-12


def test_region_covariance_of_a_transposed_image_swaps_the_x_and_y_features() -> None:
    """Transposing the image exchanges x with y, |dI/dx| with |dI/dy| and |d2I/dx2| with |d2I/dy2|."""
    image = np.random.default_rng(8).random((8, 8))
    swap = [1, 0, 2, 4, 3, 6, 5]
    np.testing.assert_allclose(region_covariance(image.T, 0.0), region_covariance(image, 0.0)[np.ix_(swap, swap)],
                               atol=1e-12)


def write_mamem_subject(path: Path, trials: int, samples: int, seed: int, labels: np.ndarray | None = None) -> None:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    y = rng.integers(0, 5, trials) if labels is None else labels
    savemat(path, {"x_test": rng.normal(size=(trials, 8, samples)), "y_test": y.reshape(-1, 1)})


def write_dry_data(data_dir: Path) -> None:
    """One MAMEM subject (U001.mat, keys x_test (N, 8, T) and y_test) as the official repository ships it."""
    write_mamem_subject(Path(data_dir) / "mamem" / "U001.mat", trials=60, samples=128, seed=0)


def test_mamem_loader_reads_and_validates(tmp_path: Path) -> None:
    write_dry_data(tmp_path)
    trials, labels = load_mamem_subject(tmp_path, 1)
    assert trials.shape == (60, 8, 128) and labels.min() >= 0 and labels.max() < 5
    write_mamem_subject(tmp_path / "mamem" / "U002.mat", 10, 64, 1, labels=np.full(10, 7))
    with pytest.raises(DataUnavailableError, match="labels outside"):
        load_mamem_subject(tmp_path, 2)


def test_mamem_files_are_pinned_and_a_matching_copy_loads_offline(tmp_path: Path) -> None:
    """scale=paper pins one SHA-256 per subject of its grid; a cached copy with the pinned checksum is used as is
    (no download), so the pin reaches fetch."""
    cfg = compose_config(["paper=spd_bw_norm", "scale=paper"])
    subjects = {s for block in cfg.paper.grid if block.experiment == "mamem" for s in block.subject}
    pins = cfg.paper.data.mamem.sha256
    assert subjects == set(pins) and all(len(pin) == 64 and int(pin, 16) >= 0 for pin in pins.values())
    write_dry_data(tmp_path)
    pin = hashlib.sha256((tmp_path / "mamem" / "U001.mat").read_bytes()).hexdigest()
    trials, _ = load_mamem_subject(tmp_path, 1, pin)
    assert trials.shape == (60, 8, 128)
