"""lie_decomp (partial): the polar-decomposition chart of GL+(2) and SL(2) against scipy's polar, expm and
logm, and the elements of SL(2) that the chart reaches but the exponential does not."""

from pathlib import Path

import numpy as np
import torch
from scipy.linalg import expm, logm, polar

from repro.papers.lie_decomp.groups import compose, decompose, sample_sl2, traceless
from repro.papers.lie_decomp.groups import polar as our_polar


def write_dry_data(data_dir: Path) -> None:
    """Nothing yet: the paper's data loaders are not written."""


def random_gl2_plus(count: int, seed: int) -> np.ndarray:
    a = np.random.default_rng(seed).standard_normal((count, 2, 2))
    a[np.linalg.det(a) < 0, :, 0] *= -1  # flip a column: positive determinant
    return a


def test_polar_factors_match_scipy() -> None:
    for a in random_gl2_plus(20, 0):
        rotation_ref, spd_ref = polar(a, side="left")[0], polar(a, side="left")[1]
        p, r = our_polar(torch.tensor(a, dtype=torch.float64))
        assert np.allclose(p.numpy(), spd_ref, atol=1e-10) and np.allclose(r.numpy(), rotation_ref, atol=1e-10)
        assert np.allclose((p @ r).numpy(), a, atol=1e-10)


def test_chart_round_trips_and_its_spd_factor_is_expm_of_a_symmetric_matrix() -> None:
    g = torch.tensor(random_gl2_plus(20, 1), dtype=torch.float64)
    x, theta = decompose(g)
    assert torch.allclose(x, x.transpose(-1, -2)) and torch.allclose(compose(x, theta), g, atol=1e-10)
    for xi, gi in zip(x.numpy(), g.numpy()):
        spd = expm(xi)
        assert np.allclose(spd @ spd.T, gi @ gi.T, atol=1e-10)  # (exp X)^2 = g g^T
        assert np.allclose(logm(spd).real, xi, atol=1e-8)


def test_sl2_chart_keeps_determinant_one() -> None:
    x = traceless(torch.randn(30, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2)))
    x = 0.5 * (x + x.transpose(-1, -2))
    g = compose(x, torch.linspace(-3, 3, 30, dtype=torch.float64))
    assert torch.allclose(torch.linalg.det(g), torch.ones(30, dtype=torch.float64))
    samples = sample_sl2(50, 0.1, 1.0, torch.Generator().manual_seed(3), torch.float64)
    assert torch.allclose(torch.linalg.det(samples), torch.ones(50, dtype=torch.float64))


def test_the_chart_reaches_an_element_outside_the_image_of_exp() -> None:
    g = np.diag([-2.0, -0.5])
    # no real logarithm: scipy's principal logm is complex, and a real X in sl(2) has exp(X) with positive
    # eigenvalues or eigenvalues on the unit circle or trace >= -2 (trace(g) = -2.5 < -2)
    assert np.abs(logm(g).imag).max() > 1.0
    x, theta = decompose(torch.tensor(g))
    assert np.allclose(x.numpy(), np.diag([np.log(2.0), -np.log(2.0)]), atol=1e-12)
    assert np.isclose(abs(float(theta)), np.pi)
    assert np.allclose(compose(x, theta).numpy(), g, atol=1e-12)
    # the traces of exp(X) over a dense set of X in sl(2) never go below -2
    grid = np.linspace(-3, 3, 13)
    traces = [np.trace(expm(np.array([[a, b + c], [b - c, -a]]))) for a in grid for b in grid for c in grid]
    assert min(traces) >= -2 - 1e-9
