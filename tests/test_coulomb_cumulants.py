"""Coulomb-gas cumulants against independent oracles: the Gamma law for f = r^2, scipy.stats.kstat, numerical
integration against the Gamma(k) density, the card's finite-N values, Ginibre eigenvalues vs Kostlan, and the
MALA force against autograd."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from repro.papers.coulomb_cumulants.cumulants import (
    exact_cumulants,
    g_coefficients,
    gamma_law_cumulants,
    harmonic_gas_cumulants,
    jackknife_error,
    kstat,
    predictions,
)
from repro.papers.coulomb_cumulants.samplers import (
    coulomb_energy_and_gradient,
    ginibre_eigenvalues,
    kostlan_squared_radii,
)


@pytest.mark.parametrize("n", [1, 7, 50])
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
    np.testing.assert_allclose(exact_cumulants(g, n), total, rtol=1e-8)


def test_card_values_for_r4_at_n_800() -> None:
    k = exact_cumulants(g_coefficients("r4"), 800)
    assert k[1] == pytest.approx(1.0067, abs=1e-4)
    assert 800 * k[2] == pytest.approx(8.080, abs=1e-3)
    assert 800**2 * k[3] == pytest.approx(113.54, abs=1e-2)


def test_predictions() -> None:
    assert predictions(g_coefficients("r2")) == pytest.approx({2: 0.5, 3: 1.0, 4: 3.0})
    assert predictions(g_coefficients("r4")) == pytest.approx({2: 1.0, 3: 8.0, 4: 112.0})
    assert predictions(g_coefficients("r2_bump")) == pytest.approx({2: 0.325, 3: 1.0, 4: 3.0})


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


def test_coulomb_force_matches_autograd() -> None:
    z = torch.complex(torch.randn(3, 6, dtype=torch.float64), torch.randn(3, 6, dtype=torch.float64))
    parts = torch.stack([z.real, z.imag]).requires_grad_()
    energy, gradient = coulomb_energy_and_gradient(torch.complex(parts[0], parts[1]), 1.7)
    (grad_parts,) = torch.autograd.grad(energy.sum(), parts)
    torch.testing.assert_close(gradient, torch.complex(grad_parts[0], grad_parts[1]))
    pair = -sum(math.log(abs(complex(z[0, i]) - complex(z[0, j]))) for i in range(6) for j in range(i))
    trap = 3 * float((z[0].abs() ** 2).sum())
    assert energy[0].item() == pytest.approx(1.7 * (pair + trap), rel=1e-12)


def test_unknown_function_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown test function"):
        g_coefficients("r3")
