"""Coulomb-gas cumulants against independent oracles: the Gamma law for f = r^2, scipy.stats.kstat, numerical
integration against the Gamma(k) density (scipy.integrate.quad, mpmath.quad), our finite-N values and closed
forms, the large-deviation generating function (its derivatives are the cumulant limits), Ginibre eigenvalues vs
Kostlan, and the MALA force against autograd."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from repro.papers.coulomb_cumulants.cumulants import (
    exact_cumulants,
    gamma_law_cumulants,
    harmonic_gas_cumulants,
    jackknife_error,
    kstat,
    quadrature_cumulants,
)
from repro.papers.coulomb_cumulants.functions import boundary_limits, coulomb_limits, g_coefficients, g_function
from repro.papers.coulomb_cumulants.large_deviations import gamma_rate, scaled_cgf_exact, scaled_cgf_limit
from repro.papers.coulomb_cumulants.samplers import (
    coulomb_energy_and_gradient,
    ginibre_eigenvalues,
    kostlan_squared_radii,
    mala_power_sums,
    tamed_drift,
)
from repro.papers.coulomb_cumulants.task import chunk_rows, limit_rows


@pytest.mark.parametrize("n", [1, 7, 50, 1600])
def test_r2_has_the_exact_gamma_law(n: int) -> None:
    np.testing.assert_allclose(exact_cumulants(g_coefficients("r2"), n), gamma_law_cumulants(n), rtol=1e-13)
    law = stats.gamma(n * (n + 1) / 2, scale=1 / n)
    np.testing.assert_allclose(gamma_law_cumulants(n)[:2], [law.mean(), law.var()], rtol=1e-13)


def test_harmonic_gas_law_at_beta_2_is_ginibre_and_scales_with_beta() -> None:
    np.testing.assert_allclose(harmonic_gas_cumulants(30, 2.0), gamma_law_cumulants(30), rtol=1e-14)
    n = 10**6
    for beta in (1.0, 4.0):
        kappas = harmonic_gas_cumulants(n, beta)
        assert kappas[1] == pytest.approx(1 / beta, rel=1e-5)               # (1 / (2 pi beta)) int |grad r^2|^2
        assert n * kappas[2] == pytest.approx((2 / beta) ** 2 * 1.0, rel=1e-5)


def test_beta_scaling_of_the_harmonic_gas_at_finite_n() -> None:
    """(Was the claim beta_scaling: an identity of the closed forms.) N^(p-2) kappa_p(beta) of f = r^2 at N = 1600
    is (2/beta)^(p-1) times the beta = 2 boundary limit within 1%, p = 2, 3, 4."""
    n, limits = 1600, boundary_limits("r2", (2, 3, 4))
    for beta in (1.0, 2.0, 4.0):
        kappas = harmonic_gas_cumulants(n, beta)
        for p in (2, 3, 4):
            assert n ** (p - 2) * kappas[p - 1] == pytest.approx((2 / beta) ** (p - 1) * limits[p], rel=1e-2)


def test_exact_cumulants_match_numerical_integration() -> None:
    """kappa_p of sum_k g(Gamma_k / N) from scipy.integrate.quad against each Gamma(k) density."""
    g, n = g_coefficients("r2_bump"), 4
    total = np.zeros(4)
    for k in range(1, n + 1):
        density = stats.gamma(k).pdf
        moments = [integrate.quad(lambda s, j=j, density=density: np.polynomial.polynomial.polyval(s / n, g) ** j
                                  * density(s), 0, np.inf, epsabs=1e-14, epsrel=1e-13)[0] for j in (1, 2, 3, 4)]
        m1, m2, m3, m4 = moments
        total += [m1, m2 - m1**2, m3 - 3 * m2 * m1 + 2 * m1**3,
                  m4 - 4 * m3 * m1 - 3 * m2**2 + 12 * m2 * m1**2 - 6 * m1**4]
    np.testing.assert_allclose(exact_cumulants(g, n)[:4], total, rtol=1e-8)


def central_moment_cumulants(g, n: int) -> np.ndarray:
    """kappa_1..5 of sum_k g(Gamma_k / N) by scipy.integrate.quad (central moments) against each Gamma(k) density."""
    def moment(h, k: int) -> float:
        density = stats.gamma(k).pdf
        return integrate.quad(lambda x: h(g(np.array(x / n))) * density(x), 0, np.inf, epsabs=1e-15,
                              epsrel=1e-13, limit=200)[0]

    total = np.zeros(5)
    for k in range(1, n + 1):
        mean = moment(lambda v: v, k)
        mu2, mu3, mu4, mu5 = (moment(lambda v, j=j, c=mean: (v - c) ** j, k) for j in (2, 3, 4, 5))
        total += [mean, mu2, mu3, mu4 - 3 * mu2**2, mu5 - 10 * mu3 * mu2]
    return total


def test_quadrature_cumulants_of_cos_match_scipy_quad() -> None:
    g = g_function("f3")
    np.testing.assert_allclose(quadrature_cumulants(g, 3), central_moment_cumulants(g, 3), rtol=1e-7)


def test_quadrature_cumulants_match_exact_sums_at_large_n() -> None:
    for name in ("r4", "r2_bump"):
        exact = exact_cumulants(g_coefficients(name), 400)
        np.testing.assert_allclose(quadrature_cumulants(g_function(name), 400), exact, rtol=1e-9)


def test_kappa_5_of_r2_is_the_gamma_law() -> None:
    np.testing.assert_allclose(exact_cumulants(g_coefficients("r2"), 30)[4], gamma_law_cumulants(30)[4], rtol=1e-13)
    assert gamma_law_cumulants(30)[4] == pytest.approx(24 * 30 * 31 / 2 / 30**5, rel=1e-14)


def test_card_values_for_r4_at_n_800() -> None:
    k = exact_cumulants(g_coefficients("r4"), 800)
    assert k[1] == pytest.approx(1.0067, abs=1e-4)
    assert 800 * k[2] == pytest.approx(8.080, abs=1e-3)
    assert 800**2 * k[3] == pytest.approx(113.54, abs=1e-2)


def test_boundary_limits_match_the_card_closed_forms() -> None:
    """kappa_2 -> (1/2) int r f'^2, N kappa_3 -> g'(1)^3, N^2 kappa_4 -> 3 g'(1)^4 + 4 g'(1)^3 g''(1) with
    g'(1) = f'(1)/2, g''(1) = (f''(1) - f'(1))/4; N^3 kappa_5 of r^2 from the Gamma law: 4! / 2 = 12."""
    assert boundary_limits("r2") == pytest.approx({2: 0.5, 3: 1.0, 4: 3.0, 5: 12.0})
    assert boundary_limits("r4", (2, 3, 4)) == pytest.approx({2: 1.0, 3: 8.0, 4: 112.0})
    assert boundary_limits("r2_bump", (2, 3, 4)) == pytest.approx({2: 0.325, 3: 1.0, 4: 3.0})
    slope, curvature = -math.pi / 4, math.pi / 8            # f = cos(pi r / 2): f'(1) = -pi/2, f''(1) = 0
    assert boundary_limits("f3", (2, 3, 4)) == pytest.approx(
        {2: math.pi**2 / 32 + 1 / 8, 3: slope**3, 4: 3 * slope**4 + 4 * slope**3 * curvature}, rel=1e-12)


def test_large_deviation_cgf_of_r2_is_the_gamma_law() -> None:
    g, g1, g2 = (g_function("r2", j) for j in range(3))
    for s in (-0.5, -0.1, 0.3, 0.6):
        chi, m = scaled_cgf_limit(g, g1, g2, s)
        assert chi == pytest.approx(-0.5 * math.log(1 - s), rel=1e-12)
        assert m == pytest.approx(0.5 / (1 - s), rel=1e-12)
        assert s * m - chi == pytest.approx(float(gamma_rate(np.array(m))), abs=1e-14)
        assert scaled_cgf_exact(g, g1, g2, 60, s) == pytest.approx(-0.5 * (1 + 1 / 60) * math.log(1 - s), rel=1e-10)


def test_finite_n_cgf_of_cos_matches_scipy_quad() -> None:
    g, g1, g2 = (g_function("f3", j) for j in range(3))
    n, s = 6, 0.4
    total = sum(math.log(integrate.quad(lambda x, k=k: math.exp(n * s * float(g(np.array(x / n))))
                                        * stats.gamma(k).pdf(x), 0, np.inf, epsrel=1e-13)[0]) for k in range(1, n + 1))
    assert scaled_cgf_exact(g, g1, g2, n, s) == pytest.approx(total / n**2, rel=1e-9)


def test_derivatives_of_the_cgf_are_the_cumulant_limits() -> None:
    """chi^(p)(0) = lim N^(p-2) kappa_p: finite differences of m(s) = chi'(s) from the saddle point against the
    power-series evaluation of the general formula (two independent routes), f = cos(pi r / 2)."""
    g, g1, g2 = (g_function("f3", j) for j in range(3))
    h = 0.02
    m = {j: scaled_cgf_limit(g, g1, g2, j * h)[1] for j in range(-3, 4)}
    second = (m[1] - m[-1]) / (2 * h)                                                       # chi''(0)
    third = (m[1] - 2 * m[0] + m[-1]) / h**2
    fourth = (m[2] - 2 * m[1] + 2 * m[-1] - m[-2]) / (2 * h**3)
    fifth = (m[2] - 4 * m[1] + 6 * m[0] - 4 * m[-1] + m[-2]) / h**4
    limits = boundary_limits("f3")
    assert [second, third, fourth, fifth] == pytest.approx([limits[p] for p in (2, 3, 4, 5)], rel=2e-2)
    assert second == pytest.approx(limits[2], rel=1e-3)


@pytest.mark.parametrize("order", [2, 3, 4])
def test_kstat_agrees_with_scipy(order: int) -> None:
    data = np.random.default_rng(order).gamma(2.0, size=500)
    assert kstat(data, order) == pytest.approx(stats.kstat(data, order), rel=1e-10)
    with pytest.raises(ValueError, match="order"):
        kstat(data, 5)


def test_jackknife_error_matches_kstatvar() -> None:
    data = np.random.default_rng(0).normal(size=20_000)
    assert jackknife_error(data, 2) == pytest.approx(math.sqrt(stats.kstatvar(data, 2)), rel=0.4)


def test_ginibre_eigenvalues_follow_kostlan() -> None:
    """Moments of sum |z|^2 and sum |z|^4 from eigenvalues agree with Kostlan samples and the exact sums."""
    n, batch = 8, 4000
    radii2 = (ginibre_eigenvalues(n, batch, torch.Generator().manual_seed(0)).abs() ** 2).numpy()
    kostlan = kostlan_squared_radii(n, batch, np.random.default_rng(0))
    for name in ("r2", "r4"):
        g = g_coefficients(name)
        exact_mean, exact_var = exact_cumulants(g, n)[:2]
        for sample in (radii2, kostlan):
            statistic = np.polynomial.polynomial.polyval(sample, g).sum(axis=1)
            assert abs(statistic.mean() - exact_mean) < 4 * math.sqrt(exact_var / batch)
            assert statistic.var() == pytest.approx(exact_var, rel=0.15)


def test_chunked_samplers_hold_one_chunk_and_kostlan_draws_do_not_depend_on_chunking() -> None:
    """Paper scale: 10^5 Ginibre matrices of 1000 x 1000 are eigendecomposed in chunks of at most mc.batch_mb MB of
    complex128 entries (512 MB: 33 matrices, not 1000 = 16 GB), and Kostlan radii are drawn in chunks whose
    concatenation is the unchunked draw (numpy's Generator draws the gammas one after the other)."""
    assert chunk_rows(512, 16 * 1000 * 1000, 1000) == 33
    assert chunk_rows(512, 16 * 64 * 64, 500) == 500          # cpu scale: the configured batch, unchanged
    assert chunk_rows(0.001, 16 * 100 * 100) == 1
    assert chunk_rows(512, 8 * 200) >= 100_000             # cpu scale: Kostlan in one chunk, as before
    whole = kostlan_squared_radii(30, 1000, np.random.default_rng(3))
    rng = np.random.default_rng(3)
    parts = [kostlan_squared_radii(30, size, rng) for size in (300, 300, 400)]
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def write_dry_data(data_dir: Path) -> None:
    """Nothing: every sample of this paper is generated (exact sums, Ginibre matrices, Kostlan radii, MALA chains),
    so scale=dry reads no file; its dry.yaml runs the paper scale's samplers with fewer samples and steps."""


@pytest.mark.parametrize("d", [2, 3])
def test_coulomb_force_matches_autograd_and_the_pair_sum(d: int) -> None:
    x = torch.randn(3, 6, d, dtype=torch.float64, requires_grad=True)
    energy, gradient = coulomb_energy_and_gradient(x, 1.7)
    (autograd,) = torch.autograd.grad(energy.sum(), x)
    torch.testing.assert_close(gradient, autograd)
    points = x[0].detach().numpy()
    distances = [np.linalg.norm(points[i] - points[j]) for i in range(6) for j in range(i)]
    pair = sum(-math.log(r) if d == 2 else 1 / r for r in distances)
    trap = 3 * float((points**2).sum())
    assert energy[0].item() == pytest.approx(1.7 * (pair + trap), rel=1e-12)


def test_tamed_drift_is_the_langevin_drift_for_small_forces_and_shorter_than_one() -> None:
    grad = torch.tensor([[[1e-6, 0.0], [3e6, 4e6]]], dtype=torch.float64)
    drift = tamed_drift(grad, 0.01)
    assert drift[0, 0, 0].item() == pytest.approx(1e-8, rel=1e-6)
    assert drift[0, 1].norm().item() == pytest.approx(1.0, rel=1e-4)
    assert drift[0, 1].norm().item() < 1


def test_general_formula_at_d2_beta2_is_the_kostlan_formula() -> None:
    """Two derivations: the radial edge R(t) in r (any d, beta) and the Kostlan fixed point X(s) in u = r^2."""
    general, kostlan = coulomb_limits("r4", 2, 2.0, (2, 3, 4)), boundary_limits("r4", (2, 3, 4))
    for p in (2, 3, 4):
        assert general[p] == pytest.approx(kostlan[p], rel=1e-12)


def test_general_formula_matches_the_closed_forms_and_scales_as_2_over_beta() -> None:
    """N kappa_3 -> f'(1)^3 / (d beta^2), N^2 kappa_4 -> (2 (d-1) f'(1)^4 + 4 f'(1)^3 f''(1)) / (d^2 beta^3), kappa_2
    -> (1/beta) int_0^1 r^(d-1) f'^2 dr; f = r^4: f'(1) = 4, f''(1) = 12, int r^(d-1) 16 r^6 = 16 / (d + 6)."""
    d = 3
    at_2 = coulomb_limits("r4", d, 2.0, (2, 3, 4))
    for beta in (1.0, 4.0):
        limits = coulomb_limits("r4", d, beta, (2, 3, 4))
        assert limits[2] == pytest.approx(16 / (d + 6) / beta, rel=1e-12)
        assert limits[3] == pytest.approx(64 / (d * beta**2), rel=1e-12)
        assert limits[4] == pytest.approx((2 * (d - 1) * 256 + 4 * 64 * 12) / (d**2 * beta**3), rel=1e-12)
        for p in (2, 3, 4):
            assert limits[p] == pytest.approx((2 / beta) ** (p - 1) * at_2[p], rel=1e-12)


def test_general_formula_matches_the_exact_harmonic_gas_law_at_large_n() -> None:
    """d = 2, f = r^2, any beta: the exact Gamma law's N^(p-2) kappa_p tends to the formula ((4/beta-1)/N)."""
    n = 10**6
    for beta in (1.0, 4.0):
        limits, kappas = coulomb_limits("r2", 2, beta, (2, 3, 4)), harmonic_gas_cumulants(n, beta)
        for p in (2, 3, 4):
            assert n ** (p - 2) * kappas[p - 1] == pytest.approx(limits[p], rel=1e-5)


def test_mala_samples_the_exact_law_of_a_small_gas() -> None:
    """d = 2, N = 4, beta = 1: the MALA mean and variance of sum |z|^2 match the exact Gamma law (4 SE)."""
    generator = torch.Generator().manual_seed(7)
    sums = mala_power_sums(4, 2, 1.0, 1, chains=64, burn_in=60, steps=240, thin=3, generator=generator)
    statistic = sums[..., 0].T.reshape(-1)
    exact = harmonic_gas_cumulants(4, 1.0)
    assert abs(statistic.mean() - exact[0]) < 4 * statistic.reshape(64, -1).mean(axis=1).std() / math.sqrt(64)
    assert abs(kstat(statistic, 2) - exact[1]) < 4 * jackknife_error(statistic, 2)


def test_unknown_function_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown test function"):
        g_coefficients("r3")
    with pytest.raises(ValueError, match="not a polynomial"):
        g_coefficients("f3")


def test_richardson_limit_is_exact_for_a_one_over_n_correction() -> None:
    """f = r^2: N^(p-2) kappa_p = (p-1)! (N + 1) / (2 N) = c_p (1 + 1/N) exactly (Gamma law), so 2 a(2N) - a(N)
    is the limit c_p = (p-1)! / 2 with no error, while a(2N) alone is off by c_p / (2N)."""
    exact = [{"f": "r2", "N": n, "p": p, "scaled": n ** (p - 2) * gamma_law_cumulants(n)[p - 1],
              "prediction": math.factorial(p - 1) / 2} for n in (200, 400) for p in (2, 3, 4, 5)]
    for row in limit_rows(exact):
        assert row["limit"] == pytest.approx(math.factorial(row["p"] - 1) / 2, rel=1e-12)
        assert row["rel_dev"] < 1e-12
