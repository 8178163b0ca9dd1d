"""DPP-based WLS against exact facts: the DPP sampler's marginals equal the kernel's diagonal and its subsets have
probability det(Q_S)^2, projection-DPP interpolation has E error ratio = m + 1 (by exact enumeration on a small
pool), volume-rescaled WLS is unbiased (exact expectation by enumeration), E[G] = I for i.i.d. rho_m, the basis is
orthonormal on the pool, a threshold the grid never reaches is censored (NaN), not the grid's end, and the paper's
two bounds: the quasi-optimality bound in expectation conditioned on stability (exact enumeration, with its lemma
E|b|^2 <= m ||g||^2 / n, equality for i.i.d. rho_m) and the almost-sure bound on stable draws with the weighted
sup-norm best approximation (a linear program; its m = 1 case is half the range of f)."""

import itertools
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from omegaconf import OmegaConf

from repro.papers.dpp_wls.sampling import (
    dpp_chunk_samples,
    orthonormal_basis,
    sample_iid,
    sample_projection_dpp,
    weighted_least_squares,
)
from repro.papers.dpp_wls.task import (
    abs_first_coordinate,
    best_weighted_sup_error,
    chernoff_repeats,
    draw_sample,
    error_statistics,
    growth_rows,
    quasi_optimality_bound,
    runge,
    space_data,
    threshold_rows,
)


def small_problem(size: int = 9, m: int = 3):
    pool = np.random.default_rng(0).uniform(-1, 1, size)
    return pool, orthonormal_basis(pool, m - 1), runge(pool)


def test_basis_is_orthonormal_and_spans_legendre() -> None:
    pool = np.random.default_rng(1).uniform(-1, 1, (500, 2))
    q = orthonormal_basis(pool, 5)
    assert q.shape == (500, 21)
    np.testing.assert_allclose(q.T @ q, np.eye(21), atol=1e-12)
    q1 = orthonormal_basis(pool[:, 0], 4)
    cubic = pool[:, 0] ** 3 - pool[:, 0]
    np.testing.assert_allclose(q1 @ (q1.T @ cubic), cubic, atol=1e-12)


def test_dpp_marginals_match_kernel_diagonal() -> None:
    """P(i in S) = K_ii = |Q_i|^2 for the projection DPP; Monte Carlo within 4 standard errors."""
    _, q, _ = small_problem(12, 4)
    rng = np.random.default_rng(2)
    draws = 3000
    counts = np.zeros(12)
    for sample in sample_projection_dpp(q, rng, draws):
        assert len(set(sample)) == 4
        counts[sample] += 1
    diagonal = np.sum(q**2, axis=1)
    error = np.sqrt(diagonal * (1 - diagonal) / draws)
    assert np.all(np.abs(counts / draws - diagonal) <= 4 * error + 1e-12)


def test_dpp_subset_frequencies_match_determinants() -> None:
    """P(S) = det(Q_S)^2 for every m-subset S (the projection DPP's joint law); Monte Carlo within 4.5 SE."""
    _, q, _ = small_problem(6, 2)
    draws = 40_000
    samples = np.sort(sample_projection_dpp(q, np.random.default_rng(5), draws), axis=1)
    for subset, probability in subsets_with_dpp_probabilities(q):
        frequency = np.mean(np.all(samples == subset, axis=1))
        assert abs(frequency - probability) <= 4.5 * math.sqrt(probability * (1 - probability) / draws) + 1e-12


def test_chunked_dpp_bank_keeps_the_law_and_one_chunk_is_the_unchunked_bank() -> None:
    """The paper-scale bank is drawn in chunks (memory); 40 chunks of 1000 samples still have P(S) = det(Q_S)^2, and
    a budget that holds the whole bank draws exactly the unchunked bank (the cpu scale's case)."""
    _, q, _ = small_problem(6, 2)
    chunk_mb = 8 * (3 * 6 + 2 * 2) * 1000 / 2**20
    assert dpp_chunk_samples(6, 2, chunk_mb) == 1000
    draws = 40_000
    samples = np.sort(sample_projection_dpp(q, np.random.default_rng(5), draws, chunk_mb=chunk_mb), axis=1)
    assert samples.shape == (draws, 2)
    for subset, probability in subsets_with_dpp_probabilities(q):
        frequency = np.mean(np.all(samples == subset, axis=1))
        assert abs(frequency - probability) <= 4.5 * math.sqrt(probability * (1 - probability) / draws) + 1e-12
    np.testing.assert_array_equal(sample_projection_dpp(q, np.random.default_rng(7), 500, chunk_mb=512),
                                  sample_projection_dpp(q, np.random.default_rng(7), 500))


def test_paper_scale_bank_chunks_fit_the_budget() -> None:
    """At paper scale (pool 10^5, m = 200, 16000 samples) the unchunked residual alone would be 12.8 GB; a chunk's
    working arrays stay within dpp_chunk_mb."""
    pool, m, budget = 100_000, 200, 512
    per_chunk = dpp_chunk_samples(pool, m, budget)
    assert 8 * 16_000 * pool > 12e9 and 8 * per_chunk * (3 * pool + m * m) <= budget * 2**20


def write_dry_data(data_dir: Path) -> None:
    """Nothing: the paper's data are generated (uniform pools on [-1, 1]^d), so scale=dry reads no file; its
    dry.yaml runs the paper scale's pool of 10^5 points with the chunked DPP bank, fewer spaces and draws."""


def subsets_with_dpp_probabilities(q: np.ndarray):
    """All m-subsets S with P(S) = det(Q_S)^2 (projection DPP = volume sampling)."""
    m = q.shape[1]
    for subset in itertools.combinations(range(q.shape[0]), m):
        yield np.array(subset), np.linalg.det(q[list(subset)]) ** 2


def test_interpolation_identity_m_plus_1_exactly() -> None:
    """E||f - f_hat||^2 = (m + 1) ||f - P_m f||^2 for the projection DPP with n = m (exact enumeration)."""
    _, q, f = small_problem()
    best = np.mean((f - q @ (q.T @ f)) ** 2)
    total_probability, expected = 0.0, 0.0
    c_star = q.T @ f / math.sqrt(len(f))
    for subset, probability in subsets_with_dpp_probabilities(q):
        coefficients, _ = weighted_least_squares(q, f, subset)
        expected += probability * (best + np.sum((coefficients - c_star) ** 2))
        total_probability += probability
    assert total_probability == pytest.approx(1.0, rel=1e-12)
    assert expected / best == pytest.approx(q.shape[1] + 1, rel=1e-10)


def test_volume_rescaled_wls_is_unbiased_exactly() -> None:
    """E[c_hat] = c* for DPP(m) united with one i.i.d. rho_m point (n = m + 1), by exact enumeration."""
    _, q, f = small_problem(7, 3)
    rho = np.sum(q**2, axis=1) / q.shape[1]
    c_star = q.T @ f / math.sqrt(len(f))
    mean = np.zeros(q.shape[1])
    for subset, probability in subsets_with_dpp_probabilities(q):
        for extra in range(len(f)):
            coefficients, _ = weighted_least_squares(q, f, np.append(subset, extra))
            mean += probability * rho[extra] * coefficients
    np.testing.assert_allclose(mean, c_star, atol=1e-12)
    iid_mean = np.zeros(q.shape[1])           # i.i.d. WLS with n = m + 1 is biased on the same problem
    for sample in itertools.product(range(len(f)), repeat=q.shape[1] + 1):
        weight = np.prod(rho[list(sample)])
        if np.linalg.matrix_rank(q[list(sample)]) == q.shape[1]:
            iid_mean += weight * weighted_least_squares(q, f, np.array(sample))[0]
    assert np.linalg.norm(iid_mean - c_star) > 1e-3


def test_iid_sampler_follows_rho_and_gram_is_unbiased() -> None:
    _, q, f = small_problem(20, 4)
    rng = np.random.default_rng(3)
    sample = sample_iid(q, 200_000, rng)
    frequencies = np.bincount(sample, minlength=20) / sample.size
    np.testing.assert_allclose(frequencies, np.sum(q**2, axis=1) / 4, atol=4e-3)
    m, size = 4, 20
    phi = math.sqrt(size) * q
    weights = m / np.sum(phi**2, axis=1)
    rho = np.sum(q**2, axis=1) / m
    expected_gram = (phi * (rho * weights)[:, None]).T @ phi          # E_rho[w phi phi^T] = I
    np.testing.assert_allclose(expected_gram, np.eye(m), atol=1e-12)
    _, deviation = weighted_least_squares(q, f, sample)             # G = (1/n) sum w phi phi^T -> I
    assert deviation < 0.02
    g = (phi[sample] * weights[sample, None]).T @ phi[sample] / sample.size
    assert deviation == pytest.approx(np.linalg.norm(g - np.eye(m), 2), rel=1e-10)


def test_runge_target_in_two_dimensions() -> None:
    x = np.array([[0.0, 0.0], [1.0, 1.0], [1.0, -1.0], [0.6, 0.0]])
    np.testing.assert_allclose(runge(x), [1.0, 1 / 26, 1 / 26, 1 / (1 + 25 * 0.18)])


def test_unreached_threshold_is_censored_not_the_grid_end() -> None:
    cells = [{"strategy": s, "n_over_m": r, "stable_prob": p, "ratio_mean": 1 + 1 / r}
             for s, probabilities in (("iid", (0.1, 0.5, 0.8)), ("dpp_rep", (0.2, 0.95, 1.0)))
             for r, p in zip((2.0, 4.0, 8.0), probabilities)]
    rows = {r["strategy"]: r for r in threshold_rows(cells, 10, 0.9)}
    assert rows["dpp_rep"]["n_stable"] == 4.0 and rows["dpp_rep"]["censored"] == 0
    assert rows["dpp_rep"]["ratio_at_stable"] == 1.25
    assert math.isnan(rows["iid"]["n_stable"]) and rows["iid"]["censored"] == 1
    assert math.isnan(rows["iid"]["ratio_at_stable"])
    assert rows["iid"]["ratio_at_dpp_stable"] == 1.25          # i.i.d. ratio at the DPP threshold n/m = 4
    growth = growth_rows([r | {"m": 10} for r in rows.values()]
                         + [r | {"m": 40, "n_stable": 2 * r["n_stable"]} for r in rows.values()])
    by_strategy = {r["strategy"]: r["threshold_growth"] for r in growth}
    assert by_strategy["dpp_rep"] == 2.0 and math.isnan(by_strategy["iid"])


def test_several_targets_fit_as_separate_fits() -> None:
    pool, q, f = small_problem(30, 5)
    both = np.stack([f, abs_first_coordinate(pool)], axis=1)
    sample = sample_iid(q, 12, np.random.default_rng(4))
    coefficients, deviation = weighted_least_squares(q, both, sample)
    for t in range(2):
        alone, deviation_alone = weighted_least_squares(q, both[:, t], sample)
        np.testing.assert_allclose(coefficients[:, t], alone, atol=1e-12)
        assert deviation == deviation_alone
    np.testing.assert_allclose(abs_first_coordinate(np.array([[-0.5, 0.2], [0.3, -1.0]])), [0.5, 0.3])


def enumerate_samples(q: np.ndarray, strategy: str, n: int):
    """Every sample (pool indices) with its probability: n i.i.d. rho_m points, n / m repetitions of the projection
    DPP, or one DPP united with n - m i.i.d. rho_m points."""
    size, m = q.shape
    rho = np.sum(q**2, axis=1) / m
    dpp = list(subsets_with_dpp_probabilities(q))
    if strategy == "iid":
        for sample in itertools.product(range(size), repeat=n):
            yield np.array(sample), float(np.prod(rho[list(sample)]))
    elif strategy == "dpp_rep":
        for parts in itertools.product(dpp, repeat=n // m):
            yield np.concatenate([s for s, _ in parts]), float(np.prod([p for _, p in parts]))
    else:
        for (subset, probability), extra in itertools.product(dpp, itertools.product(range(size), repeat=n - m)):
            yield np.append(subset, extra), probability * float(np.prod(rho[list(extra)]))


@pytest.mark.parametrize("strategy", ["iid", "dpp_rep", "volume"])
def test_quasi_optimality_bound_in_expectation_exactly(strategy: str) -> None:
    """E|b|^2 <= m ||g||^2 / n (equality for i.i.d.), b = (1/n) sum w phi g(x_i), g = f - P_m f, and
    E[ratio | ||G - I|| <= delta] <= 1 + m / ((1 - delta)^2 n P(stable)), by exact enumeration on a 6-point pool."""
    pool, q, f = small_problem(6, 2)
    size, m = q.shape
    n = 4
    phi = math.sqrt(size) * q
    weights = m / np.sum(phi**2, axis=1)
    residual = f - q @ (q.T @ f)
    best = np.mean(residual**2)
    c_star = q.T @ f / math.sqrt(size)
    second_moment, total = 0.0, 0.0
    stable = {0.5: [0.0, 0.0], 0.9: [0.0, 0.0]}          # delta: [P(stable), E[ratio; stable]]
    for sample, probability in enumerate_samples(q, strategy, n):
        total += probability
        b = (weights[sample, None] * phi[sample] * residual[sample, None]).sum(axis=0) / n
        second_moment += probability * b @ b
        if np.linalg.matrix_rank(q[sample]) < m:
            continue
        coefficients, deviation = weighted_least_squares(q, f, sample)
        for delta, sums in stable.items():
            if deviation <= delta:
                sums[0] += probability
                sums[1] += probability * (best + np.sum((coefficients - c_star) ** 2)) / best
    assert total == pytest.approx(1.0, rel=1e-10)
    if strategy == "iid":
        assert second_moment == pytest.approx(m * best / n, rel=1e-10)
    else:
        assert second_moment <= m * best / n * (1 + 1e-10)
    assert stable[0.9][0] > 0.05
    for delta, (probability, moment) in stable.items():
        if probability > 0:
            assert moment / probability <= quasi_optimality_bound(m, n, delta, probability)


def test_weighted_sup_best_approximation() -> None:
    """m = 1 (constants, w = 1): the best sup-norm constant is the mid-range, error (max f - min f) / 2; m = 5: the
    optimum lies between ||f - P_m f||_L2 and the weighted sup norm of f - P_m f."""
    pool = np.random.default_rng(6).uniform(-1, 1, 300)
    f = abs_first_coordinate(pool) + runge(pool)
    assert best_weighted_sup_error(orthonormal_basis(pool, 0), f) == pytest.approx((f.max() - f.min()) / 2, rel=1e-6)
    q = orthonormal_basis(pool, 4)
    residual = f - q @ (q.T @ f)
    weights = q.shape[1] / (len(pool) * np.sum(q**2, axis=1))
    optimum = best_weighted_sup_error(q, f)
    assert math.sqrt(np.mean(residual**2)) <= optimum < np.max(np.sqrt(weights) * np.abs(residual))


def test_almost_sure_bound_on_every_stable_draw() -> None:
    """On ||G - I|| <= delta: ||f - f_hat||_L2 <= (1 + (1 - delta)^(-1/2)) min_v ||f - v||_H for every draw, with
    delta the draw's own deviation, for i.i.d., DPP-repetition and volume-rescaled samples."""
    pool = np.random.default_rng(8).uniform(-1, 1, 400)
    q = orthonormal_basis(pool, 4)
    m = q.shape[1]
    f = abs_first_coordinate(pool)
    optimum = best_weighted_sup_error(q, f)
    rng = np.random.default_rng(9)
    bank = sample_projection_dpp(q, rng, 600)
    samples = ([sample_iid(q, 6 * m, rng) for _ in range(100)] + [bank[6 * i:6 * i + 6].reshape(-1) for i in range(100)]
               + [np.concatenate([bank[i], sample_iid(q, 5 * m, rng)]) for i in range(100)])
    checked = 0
    for sample in samples:
        coefficients, deviation = weighted_least_squares(q, f, sample)
        if deviation < 1:
            error = math.sqrt(np.mean((f - math.sqrt(len(pool)) * q @ coefficients) ** 2))
            assert error <= (1 + (1 - deviation) ** -0.5) * optimum * (1 + 1e-9)
            checked += 1
    assert checked >= 200


def test_chernoff_sample_size() -> None:
    """ceil(ln(2m / eta) / c_delta) with c_delta = (1 + ln(1/2)) / 2 at delta = 1/2: 35, 40, 44 at m = 10, 20, 40."""
    assert [chernoff_repeats(m, 0.5, 0.1) for m in (10, 20, 40)] == [35, 40, 44]
    assert chernoff_repeats(10, 0.5, 0.1, 0.25) == math.ceil(math.log(200) / (0.5 - 0.5 * math.log(2)) / 4)


def test_space_best_approximation_is_the_pool_least_squares_fit() -> None:
    """c* and ||f - P_m f||^2 of a space against numpy's least squares of f on phi = sqrt(N_c) Q over the whole pool
    (the pool's empirical measure is mu)."""
    cfg = OmegaConf.create({"pool_size": 64, "targets": ["runge", "abs_x1"], "n_over_m": [1, 2], "max_repeats": 2,
                            "draws": 2, "draws_n_equals_m": 2, "dpp_chunk_mb": 512})
    ctx = SimpleNamespace(data_seed=lambda *names: 11, shared=lambda name, build: build(),
                          log=SimpleNamespace(info=lambda *args: None))
    space = space_data(cfg, ctx, 1, 3)
    phi = math.sqrt(64) * space["q"]
    coefficients, residuals, *_ = np.linalg.lstsq(phi, space["values"], rcond=None)
    np.testing.assert_allclose(space["c_star"], coefficients, atol=1e-12)
    np.testing.assert_allclose(space["best_error"], residuals / 64, rtol=1e-10)


def test_error_statistics_against_errors_on_the_pool() -> None:
    """ratio = ||f - f_hat||^2 / ||f - P_m f||^2 and the almost-sure ratio ||f - f_hat|| / min_v ||f - v||_H, with
    f_hat evaluated on the whole pool (not through Pythagoras), for i.i.d. samples of a small space."""
    pool = np.random.default_rng(12).uniform(-1, 1, 200)
    q = orthonormal_basis(pool, 3)
    f = runge(pool)
    phi = math.sqrt(200) * q
    c_star, *_ = np.linalg.lstsq(phi, f, rcond=None)
    best = np.mean((f - phi @ c_star) ** 2)
    rng = np.random.default_rng(13)
    fits = [weighted_least_squares(q, f, sample_iid(q, 12, rng)) for _ in range(40)]
    coefficients = np.array([c for c, _ in fits])
    stable = np.array([deviation for _, deviation in fits]) <= 0.5
    assert 0 < stable.sum() < 40
    sup = best_weighted_sup_error(q, f)
    row = error_statistics(coefficients, c_star, best, stable, sup, 0.5)
    errors = np.array([np.mean((f - phi @ c) ** 2) for c in coefficients])
    assert row["ratio_mean"] == pytest.approx(np.mean(errors) / best, rel=1e-9)
    assert row["ratio_median"] == pytest.approx(np.median(errors) / best, rel=1e-9)
    assert row["ratio_mean_stable"] == pytest.approx(np.mean(errors[stable]) / best, rel=1e-9)
    assert row["as_ratio_max"] == pytest.approx(np.sqrt(errors[stable].max()) / sup, rel=1e-9)
    assert row["stable_prob"] == stable.mean()


def test_bias_ratio_is_about_one_for_an_unbiased_estimator() -> None:
    """bias_ratio = |mean - c*|^2 / (trace Cov / draws): E|mean - c*|^2 = trace Cov / draws for unbiased coefficients,
    so about 1 for Gaussian draws with any covariance (averaged over 100 repetitions), and >> 1 for biased ones."""
    rng = np.random.default_rng(14)
    m, draws = 5, 200
    scales = np.array([0.1, 0.5, 1.0, 2.0, 4.0])
    c_star = np.arange(m, dtype=float)
    flags = np.ones(draws, dtype=bool)
    ratios = [error_statistics(c_star + scales * rng.standard_normal((draws, m)), c_star, 1.0, flags, 1.0,
                               0.5)["bias_ratio"] for _ in range(100)]
    assert 0.85 < np.mean(ratios) < 1.15
    biased = error_statistics(c_star + 0.5 + scales * rng.standard_normal((draws, m)), c_star, 1.0, flags, 1.0, 0.5)
    assert biased["bias_ratio"] > 5


def test_volume_sample_adds_rho_m_points_and_dpp_repetitions_are_independent() -> None:
    """Volume-rescaled sampling: the n - m extra points are i.i.d. from rho_m = K_m / m (frequency check); DPP
    repetitions: draw d takes its own l bank samples, so no DPP sample serves two draws."""
    _, q, _ = small_problem(10, 3)
    bank = np.arange(60 * 3).reshape(60, 3)
    extra = draw_sample("volume", q, 3 + 40_000, 3, 5, bank, np.random.default_rng(15))
    np.testing.assert_array_equal(extra[:3], bank[5])
    np.testing.assert_allclose(np.bincount(extra[3:], minlength=10) / 40_000, np.sum(q**2, axis=1) / 3, atol=1e-2)
    used = np.concatenate([draw_sample("dpp_rep", q, 4 * 3, 3, draw, bank, np.random.default_rng(0))
                           for draw in range(15)])
    assert len(used) == len(set(used)) == 60 * 3


def test_quasi_optimality_bound_value() -> None:
    """1 + m / ((1 - delta)^2 n P(stable)): m = 10, n = 40, delta = 1/2, P = 0.8 gives 1 + 10 / 8 = 2.25."""
    assert quasi_optimality_bound(10, 40, 0.5, 0.8) == pytest.approx(2.25)
    assert math.isnan(quasi_optimality_bound(10, 40, 0.5, 0.0))


def test_threshold_reached_at_exactly_the_level() -> None:
    """P(stable) >= level: a cell whose stability probability equals the level is the threshold."""
    cells = [{"strategy": "iid", "n_over_m": r, "stable_prob": p, "ratio_mean": 2.0}
             for r, p in ((1.0, 0.5), (2.0, 0.9), (3.0, 1.0))]
    assert threshold_rows(cells, 10, 0.9)[0]["n_stable"] == 2.0
