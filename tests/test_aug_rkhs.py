"""aug_rkhs: the masking kernel, its spectrum and the regressors against independent oracles: enumeration of the
views, brute-force eigendecomposition, sklearn's KernelRidge (also for the validation choice of lam and its refit),
the closed-form ANOVA moments, and the rows' normalisations (Var f*, the approximation floor, the label noise)."""

from itertools import product
from pathlib import Path

import numpy as np
import pytest
from omegaconf import DictConfig, OmegaConf
from scipy.special import comb
from sklearn.kernel_ridge import KernelRidge

from repro.papers.aug_rkhs import task
from repro.papers.aug_rkhs.kernel import (
    AnovaTarget,
    all_inputs,
    kappa_squared,
    kappa_squared_monte_carlo,
    kernel_from_matches,
    kernel_ridge_fit,
    matches,
    multiplicity,
    nystrom_features,
    operator_spectrum,
    ridge_path,
)


def write_dry_data(data_dir: Path) -> None:
    """Nothing to write: the paper scale generates its data (the masked-token toy: uniform tokens, a random ANOVA
    target) and reads no file; scale=dry runs that generator and the whole pipeline with lengths shrunk
    (conf/paper_scale/aug_rkhs/dry.yaml)."""


def kernel_by_enumeration(x: tuple, xp: tuple, alpha: float, vocab: int) -> float:
    """k(x, x') = sum_a A(a|x) A(a|x') / p(a), summing over every view a in {0..V}^L (V = mask)."""
    inputs = list(product(range(vocab), repeat=len(x)))

    def augment(a: tuple, source: tuple) -> float:
        return float(np.prod([alpha if s == vocab else (1 - alpha) * (s == t) for s, t in zip(a, source)]))

    total = 0.0
    for a in product(range(vocab + 1), repeat=len(x)):
        p = np.mean([augment(a, z) for z in inputs])
        if p > 0:
            total += augment(a, x) * augment(a, xp) / p
    return total


@pytest.mark.parametrize("alpha", [0.1, 0.6])
def test_kernel_matches_definition(alpha: float) -> None:
    vocab, length = 2, 3
    x = all_inputs(vocab, length)
    k = kernel_from_matches(matches(x, x), alpha, vocab, length)
    for i, j in [(0, 0), (0, 5), (3, 6), (7, 7)]:
        assert k[i, j] == pytest.approx(kernel_by_enumeration(tuple(x[i]), tuple(x[j]), alpha, vocab), rel=1e-12)


@pytest.mark.parametrize("alpha", [0.2, 0.7])
def test_spectrum_closed_form(alpha: float) -> None:
    vocab, length = 3, 5
    evals = operator_spectrum(alpha, vocab, length)
    predicted = np.concatenate([np.full(multiplicity(s, vocab, length), (1 - alpha) ** s) for s in range(length + 1)])
    np.testing.assert_allclose(evals, np.sort(predicted)[::-1], rtol=1e-9, atol=1e-12)
    trace = sum(comb(length, s) * (vocab - 1) ** s * (1 - alpha) ** s for s in range(length + 1))
    assert evals.sum() == pytest.approx(kappa_squared(alpha, vocab, length), rel=1e-10)
    assert trace == pytest.approx(kappa_squared(alpha, vocab, length), rel=1e-12)


def test_empirical_kernel_diagonal_and_mean() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, (400, 8))
    k = kernel_from_matches(matches(x, x), 0.7, 4, 8)
    np.testing.assert_allclose(np.diag(k), kappa_squared(0.7, 4, 8), rtol=1e-12)
    off = k[~np.eye(len(x), dtype=bool)]
    assert off.mean() == pytest.approx(1.0, abs=0.05)          # E k(x, x') = 1 for independent x, x'
    mc = kappa_squared_monte_carlo(0.7, 4, 8, 200_000, rng)
    assert mc == pytest.approx(kappa_squared(0.7, 4, 8), rel=0.03)


def test_kernel_ridge_matches_sklearn() -> None:
    rng = np.random.default_rng(1)
    x, xt = rng.integers(0, 4, (120, 8)), rng.integers(0, 4, (30, 8))
    y = rng.standard_normal(120)
    k, kt = kernel_from_matches(matches(x, x), 0.8, 4, 8), kernel_from_matches(matches(xt, x), 0.8, 4, 8)
    reference = KernelRidge(alpha=0.3, kernel="precomputed").fit(k, y).predict(kt)
    np.testing.assert_allclose(kt @ kernel_ridge_fit(k, y, 0.3), reference, rtol=1e-8)
    np.testing.assert_allclose(ridge_path(k, y, kt, np.array([0.3, 1.0]))[0], reference, rtol=1e-6)


def test_nystrom_features_are_top_eigenvectors() -> None:
    rng = np.random.default_rng(2)
    x = rng.integers(0, 4, (200, 8))
    k = kernel_from_matches(matches(x, x), 0.6, 4, 8)
    weights, sigma = nystrom_features(k, 20)
    phi = k @ weights
    np.testing.assert_allclose(phi.T @ phi, np.eye(20), atol=1e-8)   # phi(X_m) = U_d, orthonormal
    np.testing.assert_allclose(sigma, np.sort(np.linalg.eigvalsh(k))[::-1][:20], rtol=1e-8)


def test_target_anova_energy() -> None:
    """Exact moments over all 4^8 inputs: mean 0, variance 1, energy 0.25 per order."""
    x = all_inputs(4, 8)
    target = AnovaTarget({1: 4, 2: 6, 3: 6, 4: 4}, {s: 0.25 for s in (1, 2, 3, 4)}, 4, 8, np.random.default_rng(3))
    f = target(x)
    assert f.mean() == pytest.approx(0.0, abs=1e-12)
    assert f.var() == pytest.approx(1.0, rel=1e-10)
    assert target.variance == pytest.approx(1.0)
    order3 = sum(w * np.prod(u[np.arange(len(p)), x[:, p]], axis=1) for p, w, u in target.terms if len(p) == 3)
    assert np.mean(order3**2) == pytest.approx(0.25, rel=1e-10)
    assert np.mean(order3 * (f - order3)) == pytest.approx(0.0, abs=1e-12)


def test_krr_summary_row_chooses_on_validation_only() -> None:
    """The optimum row picks alpha by held-out validation MSE (never test MSE); gains are end minus interior."""
    krr_rows = task.krr_rows
    cfg = OmegaConf.create({"toy": {"vocab": 4, "length": 8, "noise": 0.1}, "krr": {"alphas": [0.05, 0.5, 0.8, 0.995]},
                            "ridge_grid": [1e-3, 1e-1, 1.0], "val_fraction": 0.2})
    target = AnovaTarget({1: 4, 2: 6}, {1: 0.5, 2: 0.5}, 4, 8, np.random.default_rng(4))
    x_test = np.random.default_rng(5).integers(0, 4, (300, 8))
    rows = krr_rows(cfg, target, x_test, 150, np.random.default_rng(6))
    per_alpha, (summary,) = rows[:-1], rows[-1:]
    assert [r["alpha"] for r in per_alpha] == [0.05, 0.5, 0.8, 0.995]
    assert summary["alpha_opt"] == min(per_alpha, key=lambda r: r["val_mse"])["alpha"]
    interior = min(per_alpha[1:-1], key=lambda r: r["val_mse"])
    assert summary["alpha_interior"] == interior["alpha"]
    assert summary["gain_over_weak_end"] == per_alpha[0]["mse"] - interior["mse"]
    assert summary["gain_over_strong_end"] == per_alpha[-1]["mse"] - interior["mse"]
    assert summary["interior"] == float(0.05 < summary["alpha_opt"] < 0.995)


def test_ridge_predict_against_sklearn_on_the_split() -> None:
    """lam' minimises the held-out MSE of sklearn's KernelRidge(alpha = lam' mean diag K) fitted on the rest; the
    refit on all n labels keeps the per-sample penalty, alpha = lam' mean diag K * n / n_fit."""
    rng = np.random.default_rng(7)
    x, xt = rng.integers(0, 4, (100, 8)), rng.integers(0, 4, (20, 8))
    y = np.sin(x[:, 0] + x[:, 1]) + 0.1 * rng.standard_normal(100)
    k, kt = kernel_from_matches(matches(x, x), 0.8, 4, 8), kernel_from_matches(matches(xt, x), 0.8, 4, 8)
    grid, scale = [1e-4, 1e-2, 1.0, 100.0], float(np.mean(np.diag(k)))
    held = [np.mean((KernelRidge(alpha=g * scale, kernel="precomputed").fit(k[25:, 25:], y[25:])
                     .predict(k[:25, 25:]) - y[:25]) ** 2) for g in grid]
    best = int(np.argmin(held))
    pred, lam, val_mse = task.ridge_predict(k, y, kt, grid, 0.25)
    assert lam == grid[best] and val_mse == pytest.approx(held[best], rel=1e-6)
    reference = KernelRidge(alpha=grid[best] * scale * 100 / 75, kernel="precomputed").fit(k, y).predict(kt)
    np.testing.assert_allclose(pred, reference, rtol=1e-6)


def toy_config(**extra: object) -> DictConfig:
    return OmegaConf.create({"toy": {"vocab": 4, "length": 5, "noise": 0.3}, "ridge_grid": [1e-3, 1e-1],
                             "val_fraction": 0.2, **extra})


def test_krr_mse_is_normalised_by_the_target_variance(monkeypatch: pytest.MonkeyPatch) -> None:
    """Predicting 0 on every input of {0..3}^5 has MSE E f*^2 = Var f* (mean 0 over all inputs): normalised, 1."""
    target = AnovaTarget({1: 2, 2: 2}, {1: 1.5, 2: 0.5}, 4, 5, np.random.default_rng(8))   # Var f* = 2
    monkeypatch.setattr(task, "ridge_predict", lambda k, y, kt, grid, v: (np.zeros(len(kt)), grid[0], 1.0))
    rows = task.krr_rows(toy_config(krr={"alphas": [0.3, 0.5, 0.7]}), target, all_inputs(4, 5), 40,
                         np.random.default_rng(9))
    assert [r["mse"] for r in rows[:-1]] == pytest.approx([1.0, 1.0, 1.0], rel=1e-12)


def test_encoder_floor_is_the_energy_above_the_learnt_orders() -> None:
    """floor = (energy of orders > max_order) / Var f*; excess = mse - floor."""
    target = AnovaTarget({1: 2, 2: 2, 3: 2}, {1: 0.5, 2: 0.5, 3: 1.0}, 4, 5, np.random.default_rng(10))
    cfg = toy_config(encoder={"max_order": 2, "n": 40, "d": 5, "alphas": [0.5]}, toy={
        "vocab": 4, "length": 5, "noise": 0.3, "target_energy": {1: 0.5, 2: 0.5, 3: 1.0}})
    (row,) = task.encoder_rows(cfg, target, all_inputs(4, 5)[:50], 30, np.random.default_rng(11))
    assert row["floor"] == pytest.approx(0.5)
    assert row["excess_mse"] == pytest.approx(row["mse"] - 0.5)


def test_spectrum_rows_find_the_closed_form() -> None:
    """The rows of the brute-force spectrum agree with (1 - alpha)^s and C(L, s)(V - 1)^s at every order."""
    rows = task.spectrum_rows(OmegaConf.create({"alphas": [0.3], "vocab": 2, "length": 4}))
    assert [r["order"] for r in rows] == [0, 1, 2, 3, 4]
    assert all(r["mult_error"] == 0 and r["eig_max_rel_error"] < 1e-8 for r in rows)
    assert [r["eig_predicted"] for r in rows] == pytest.approx([0.7**s for s in range(5)])
    assert abs(rows[0]["trace_minus_kappa2"]) < 1e-9


def test_labels_carry_noise_of_the_stated_std() -> None:
    target = AnovaTarget({1: 2}, {1: 1.0}, 4, 5, np.random.default_rng(12))
    x, y = task.labelled(toy_config(), target, 20_000, np.random.default_rng(13))
    assert np.std(y - target(x)) == pytest.approx(0.3, rel=0.03)
