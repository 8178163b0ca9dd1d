"""log I_v, log K_v against independent oracles: mpmath, SciPy, closed forms, the Wronskian, the recurrence,
small-argument limits, finite-difference gradients; the vMF pieces against p = 3 closed forms."""

import functools
import hashlib
import json
import math
import time
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import mpmath
import numpy as np
import pytest
import torch
from scipy import special

from repro.core.context import Stopwatch
from repro.papers.log_bessel.bessel import V_DEBYE, debye_polynomials, log_bessel_i, log_bessel_k
from repro.papers.log_bessel.compiled import RECIPROCAL_GAMMA, log_bessel_i_compiled, log_bessel_k_compiled
from repro.papers.log_bessel.reference import (
    CacheError,
    ReferenceCache,
    mpmath_log_bessel,
    mpmath_log_bessel_status,
    scipy_log_bessel,
    seal_path,
)
from repro.papers.log_bessel.task import accuracy_rows, reference_cache, relative_error
from repro.papers.log_bessel.vmf import FitFailed, fit_kappa, log_i_pair, sample_vmf

# One point per region of each function (series, Debye, large x, recurrence / integral) and the known failure points.
POINTS = [(0, 1e-3), (0, 1.5), (0, 20), (0, 300), (0.5, 7), (2.5, 0.3), (10, 9), (10, 80), (30, 500), (49.5, 49.5),
          (50, 1e-3), (50, 50), (100, 0.01), (1000, 1), (5000, 3000), (200, 1e-3), (1e4, 5e3), (3, 1e4)]


def t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def _on_tensors(kernel):
    """The compiled kernel (numpy in, numpy out) with the torch routines' signature, for shared tests."""
    return lambda v, x: torch.from_numpy(kernel(torch.as_tensor(v, dtype=torch.float64).numpy(),
                                                torch.as_tensor(x, dtype=torch.float64).numpy()))


IMPLEMENTATIONS = {"torch": (log_bessel_i, log_bessel_k),
                   "compiled": (_on_tensors(log_bessel_i_compiled), _on_tensors(log_bessel_k_compiled))}
BOTH = pytest.mark.parametrize("implementation", list(IMPLEMENTATIONS))


def test_debye_polynomials_match_the_known_ones() -> None:
    u = debye_polynomials(3)
    assert u[1] == [0, Fraction(1, 8), 0, Fraction(-5, 24)]
    assert u[2] == [0, 0, Fraction(9, 128), 0, Fraction(-77, 192), 0, Fraction(385, 1152)]


# Wall-clock safety net of an mpmath reference in these tests: generous, so that a loaded machine cannot turn a slow
# reference (besselk(10^4, 5000) takes 1.4 s of CPU) into a missing one and fail a test for the wrong reason.
SAFETY_NET_S = 300.0


@functools.cache
def _points_reference(function: str) -> np.ndarray:
    """mpmath at POINTS, computed once for both implementations."""
    return np.array([mpmath_log_bessel(function, a, b, 25, SAFETY_NET_S) for a, b in POINTS])


@pytest.mark.parametrize("function", ["log_i", "log_k"])
@BOTH
def test_agrees_with_mpmath(function: str, implementation: str) -> None:
    v, x = map(np.array, zip(*POINTS))
    log_i, log_k = IMPLEMENTATIONS[implementation]
    ours = (log_i if function == "log_i" else log_k)(t(v), t(x)).numpy()
    reference = _points_reference(function)
    assert np.isfinite(reference).all()
    assert np.nanmax(relative_error(ours, reference)) < 1e-13


def test_agrees_with_scipy_where_scipy_is_finite() -> None:
    rng = np.random.default_rng(0)
    v, x = 10 ** rng.uniform(-2, 2.5, 2000), 10 ** rng.uniform(-2, 3, 2000)
    for function, ours in (("log_i", log_bessel_i), ("log_k", log_bessel_k)):
        theirs = scipy_log_bessel(function, v, x)
        values = ours(t(v), t(x)).numpy()
        ok = np.isfinite(theirs)
        assert ok.mean() > 0.8
        assert np.max(relative_error(values[ok], theirs[ok])) < 1e-11


def test_compiled_small_order_route_agrees_with_mpmath() -> None:
    """Temme's series (x <= 2) and Steed's CF2 (x > 2) at mu = v - round(v), then the forward recurrence: the
    region the compiled kernel computes differently from the torch code, sampled with mu near 0 and +-1/2, and with
    fractional parts of v near 1 at x just below 2 (Temme's series loses digits for |mu| > 1/2 there: v = 0.98 must
    start from mu = -0.02, not 0.98)."""
    rng = np.random.default_rng(3)
    v = np.concatenate([rng.uniform(0, 49.9, 30), [0, 1e-9, 0.5, 0.4999999, 7.5, 12 + 1e-12, 49.49, 0.98, 5.99]])
    x = np.concatenate([10 ** rng.uniform(-4, np.log10(np.maximum(v[:30] ** 2, 30.0)) - 1e-3), [1e-4, 2.0, 2.000001,
                        1.999999, 29.0, 0.5, 2400.0, 1.99, 1.9]])
    reference = np.array([mpmath_log_bessel("log_k", a, b, 30, SAFETY_NET_S) for a, b in zip(v, x)])
    assert np.isfinite(reference).all()
    assert np.max(relative_error(log_bessel_k_compiled(v, x), reference)) < 1e-13


def test_reciprocal_gamma_taylor_coefficients() -> None:
    mu = np.linspace(-0.5, 0.5, 11)
    series = np.polynomial.polynomial.polyval(mu, RECIPROCAL_GAMMA)
    exact = np.array([float(1 / mpmath.gamma(1 + m)) for m in mu])
    np.testing.assert_allclose(series, exact, rtol=1e-15)


@BOTH
def test_half_integer_closed_forms(implementation: str) -> None:
    log_bessel_i, log_bessel_k = IMPLEMENTATIONS[implementation]
    x = t(np.logspace(-3, 3.5, 200))
    log_i_half = 0.5 * torch.log(2 / (math.pi * x)) + x + torch.log(-torch.expm1(-2 * x)) - math.log(2)
    log_k_half = 0.5 * torch.log(math.pi / (2 * x)) - x
    torch.testing.assert_close(log_bessel_i(0.5, x), log_i_half, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(log_bessel_k(0.5, x), log_k_half, rtol=1e-13, atol=1e-13)


@BOTH
def test_wronskian_in_log_space(implementation: str) -> None:
    """I_v K_(v+1) + I_(v+1) K_v = 1/x, over every region of both functions."""
    log_bessel_i, log_bessel_k = IMPLEMENTATIONS[implementation]
    rng = np.random.default_rng(1)
    v, x = t(10 ** rng.uniform(-2, 4, 3000)), t(10 ** rng.uniform(-3, 4, 3000))
    log_i, log_k = log_bessel_i(v, x), log_bessel_k(v, x)
    lhs = torch.logaddexp(log_i + log_bessel_k(v + 1, x), log_bessel_i(v + 1, x) + log_k)
    scale = torch.maximum(log_i.abs(), log_k.abs()).clamp(min=1)   # the two terms cancel down from this size
    assert torch.max(torch.abs(lhs + torch.log(x)) / scale) < 1e-13


@BOTH
def test_recurrence_for_i(implementation: str) -> None:
    """I_(v-1) = I_(v+1) + (2v/x) I_v, in log space."""
    log_bessel_i = IMPLEMENTATIONS[implementation][0]
    rng = np.random.default_rng(2)
    v, x = t(10 ** rng.uniform(0, 4, 2000)), t(10 ** rng.uniform(-3, 4, 2000))
    rhs = torch.logaddexp(log_bessel_i(v + 1, x), torch.log(2 * v / x) + log_bessel_i(v, x))
    lhs = log_bessel_i(v - 1, x)
    assert torch.max(torch.abs(lhs - rhs) / torch.clamp(lhs.abs(), min=1)) < 1e-12


@BOTH
def test_small_argument_limits(implementation: str) -> None:
    log_bessel_i, log_bessel_k = IMPLEMENTATIONS[implementation]
    x = 1e-12
    for v in (0.0, 0.5, 3.0, 70.0):
        limit = v * math.log(x / 2) - math.lgamma(v + 1)
        assert float(log_bessel_i(v, x)) == pytest.approx(limit, rel=1e-14, abs=1e-14)
    assert float(log_bessel_k(0.0, x)) == pytest.approx(math.log(-math.log(x / 2) - np.euler_gamma), rel=1e-12)


@BOTH
def test_continuous_across_region_switches(implementation: str) -> None:
    for v, x in ((V_DEBYE, 3.0), (V_DEBYE, 300.0), (4.0, 2 * math.sqrt(5.0)), (3.0, 30.0), (0.0, 30.0)):
        for function in IMPLEMENTATIONS[implementation]:
            below = function(t([v * (1 - 1e-12)]), t([x * (1 - 1e-12)]))
            above = function(t([v * (1 + 1e-12) + 1e-300]), t([x * (1 + 1e-12)]))
            assert torch.abs(below - above).item() < 1e-11 * max(1.0, abs(below.item()))


def test_gradient_matches_finite_differences_and_scipy() -> None:
    v, x = t([0.0, 2.5, 60.0, 1000.0, 20.0]), t([0.5, 40.0, 70.0, 5.0, 15.0]).requires_grad_()
    assert torch.autograd.gradcheck(lambda z: log_bessel_i(v, z), (x,), eps=1e-6, atol=1e-7)
    assert torch.autograd.gradcheck(lambda z: log_bessel_k(v, z), (x,), eps=1e-6, atol=1e-7)
    z = t([0.3, 2.0, 25.0]).requires_grad_()
    log_bessel_k(0.0, z).sum().backward()
    np.testing.assert_allclose(z.grad.numpy(), -special.k1(z.detach().numpy()) / special.k0(z.detach().numpy()),
                               rtol=1e-12)


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="v >= 0"):
        log_bessel_i(-1.0, 2.0)
    with pytest.raises(ValueError, match="x > 0"):
        log_bessel_k(1.0, 0.0)


def test_relative_error_is_absolute_near_zero() -> None:
    np.testing.assert_allclose(relative_error(np.array([0.1, 200.0, np.inf]), np.array([0.1 + 1e-3, 202.0, 1.0])),
                               [1e-3, 0.0099009901, np.nan], rtol=1e-6)


def test_vmf_ratio_and_sampler_for_p_3() -> None:
    """p = 3: A_3(kappa) = coth kappa - 1/kappa = I_(3/2)/I_(1/2), and E[mu^T y] = A_3(kappa) for the sampler."""
    kappa = 2.0
    a3 = 1 / math.tanh(kappa) - 1 / kappa
    assert math.exp(float(log_bessel_i(1.5, kappa) - log_bessel_i(0.5, kappa))) == pytest.approx(a3, rel=1e-14)
    samples = sample_vmf(3, kappa, 200_000, np.random.default_rng(0))
    np.testing.assert_allclose(np.linalg.norm(samples, axis=1), 1.0, rtol=1e-12)
    assert samples[:, 0].mean() == pytest.approx(a3, abs=4 * samples[:, 0].std() / math.sqrt(200_000))


def test_fit_recovers_kappa_from_its_mean_resultant() -> None:
    p, kappa = 8192, 3000.0
    r_bar = math.exp(float(log_bessel_i(p / 2, kappa) - log_bessel_i(p / 2 - 1, kappa)))
    assert fit_kappa("ours", r_bar, p, 60, 15) == pytest.approx(kappa, rel=1e-10)
    assert mpmath.mpf(r_bar) > 0


def test_series_keeps_relative_precision_where_log_i_is_near_zero() -> None:
    """v = 0, small x: log I_0(x) ~ x^2/4 is tiny, so log(1 + t) would lose its digits; log1p keeps them."""
    x = np.array([1e-3, 1e-2, 0.1])
    ours = log_bessel_i(t(np.zeros(3)), t(x)).numpy()
    exact = np.array([mpmath_log_bessel("log_i", 0.0, b, 50, SAFETY_NET_S) for b in x])
    np.testing.assert_allclose(ours, exact, rtol=1e-14, atol=0)


def test_grid_pairs_accuracy_and_speed_units_by_function() -> None:
    from omegaconf import OmegaConf

    from repro.papers.log_bessel.task import units

    cfg = OmegaConf.create({"vmf": {"dimensions": [2048, 32768], "samples": [10, 5], "kappa_factors": [1.0]}})
    names = [(u.experiment, u.settings.get("set"), u.stochastic) for u in units(cfg)]
    assert names.count(("accuracy", "grid", False)) == 2 and names.count(("accuracy", "random", True)) == 2
    assert names.count(("speed", None, True)) == 2 and names.count(("vmf", None, True)) == 2


# --- the sealed reference cache (the paper scale's only file) -----------------------------------------------------

def write_dry_data(data_dir: Path) -> None:
    """A sealed reference cache in the real format where scale=dry reads it (the name and caps the task derives
    from the dry config; the log I values of the known SciPy failure points, computed and written by the suite's
    own cache), so the dry run reads and verifies an existing cache and adds its other values to it."""
    from tests.helpers import compose_config

    accuracy = compose_config(["paper=log_bessel", "scale=dry"]).paper.accuracy
    cache = reference_cache(accuracy, SimpleNamespace(data_dir=data_dir))
    points = np.array(accuracy.known_failures.log_i, dtype=float)
    cache.many("log_i", points[:, 0], points[:, 1])
    cache.save()


def _cache_with_values(path: Path) -> ReferenceCache:
    cache = ReferenceCache(path, 30, 60.0, (1024, 1000))
    cache.many("log_i", np.array([0.5, 10.0]), np.array([7.0, 9.0]))
    cache.save()
    return cache


def test_cache_round_trip_and_merge_of_two_writers(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    first, second = _cache_with_values(path), ReferenceCache(path, 30, 60.0, (1024, 1000))
    other = ReferenceCache(tmp_path / "c.csv", 30, 60.0, (1024, 1000))
    second.many("log_k", np.array([2.5]), np.array([0.3]))
    other.many("log_i", np.array([1.0]), np.array([2.0]))
    second.save()
    other.save()   # loaded before second saved: its save merges, it does not overwrite
    again = ReferenceCache(path, 30, 60.0, (1024, 1000))
    assert set(again.values) == set(first.values) | set(second.values) | set(other.values)
    assert len(again.values) == 4
    assert again.get("log_i", 0.5, 7.0) == first.get("log_i", 0.5, 7.0)


def test_edited_cache_is_refused_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    _cache_with_values(path)
    text = path.read_text().splitlines()
    head, value = text[1].rsplit(",", 2)[0], float(text[1].rsplit(",", 2)[1])
    text[1] = f"{head},{value + 1.0},ok"
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(CacheError, match=f"{path}.*does not match the SHA-256.*delete"):
        ReferenceCache(path, 30, 60.0)


def test_cache_without_seal_or_with_bad_entries_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    _cache_with_values(path)
    seal = seal_path(path)
    seal.unlink()
    with pytest.raises(CacheError, match="has no seal"):
        ReferenceCache(path, 30, 60.0)
    seal.write_text("{}")
    path.unlink()
    with pytest.raises(CacheError, match="is missing but its seal"):
        ReferenceCache(path, 30, 60.0)
    # a resealed file with a negative order, or a non-finite "ok" value, is refused entry by entry
    for bad in ("log_i,-0x1.0p+0,0x1.0p+1,1.5,ok", "log_i,0x1.0p+0,0x1.0p+1,inf,ok", "log_x,0x1.0p+0,0x1.0p+1,1,ok"):
        blob = f"function,v,x,value,status\n{bad}\n".encode()
        path.write_bytes(blob)
        seal.write_text(json.dumps({"sha256": hashlib.sha256(blob).hexdigest(), "rows": 1}))
        with pytest.raises(CacheError, match="line 2: bad entry"):
            ReferenceCache(path, 30, 60.0)


def test_timeouts_are_not_cached_but_deterministic_failures_are(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    assert mpmath_log_bessel_status("log_k", 1e4, 1e4, 50, 60.0, (1024, 1000)) == (pytest.approx(math.nan, nan_ok=True),
                                                                                    "failed")
    slow = ReferenceCache(path, 50, 1e-6)          # every value hits the safety net
    assert math.isnan(slow.get("log_i", 3.0, 2.0)) and slow.timed_out("log_i", 3.0, 2.0)
    capped = ReferenceCache(path, 50, 60.0, (1024, 1000))
    assert math.isnan(capped.get("log_k", 1e4, 1e4))   # besselk gives up within its caps: cached as failed
    slow.save()
    capped.save()
    again = ReferenceCache(path, 50, 60.0)
    assert ReferenceCache.key("log_i", 3.0, 2.0) not in again.values
    assert math.isnan(again.values[ReferenceCache.key("log_k", 1e4, 1e4)])


def _ctx() -> SimpleNamespace:
    import logging
    return SimpleNamespace(device="cpu", stopwatch=lambda: Stopwatch("cpu"), log=logging.getLogger("test"))


def test_rows_carry_the_hash_of_their_references_and_quad_replaces_failed_besselk(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    v, x = np.array([2.5, 1e4]), np.array([0.3, 1e4])
    rows = accuracy_rows(v, x, "log_k", ReferenceCache(path, 50, 60.0, (1024, 1000)), _ctx())
    assert [r["ref_source"] for r in rows[:2]] == ["bessel", "quad"] and all(r["has_ref"] for r in rows)
    assert rows[0]["ref_agreement"] < 1e-12 and math.isnan(rows[1]["ref_agreement"])   # quad at every point
    assert max(r["rel_err"] for r in rows if r["method"] in ("ours", "ours_compiled")) < 1e-12
    again = accuracy_rows(v, x, "log_k", ReferenceCache(path, 50, 60.0, (1024, 1000)), _ctx())
    assert {r["ref_sha256"] for r in again} == {rows[0]["ref_sha256"]}     # the same references: the same hash
    cache = ReferenceCache(path, 50, 60.0, (1024, 1000))
    key = ReferenceCache.key("log_k", 2.5, 0.3)
    cache.pending[key] = cache.values[key] * (1 + 1e-9)                  # a changed (and resealed) reference
    cache.save()
    changed = accuracy_rows(v, x, "log_k", ReferenceCache(path, 50, 60.0, (1024, 1000)), _ctx())
    assert changed[0]["ref_sha256"] != rows[0]["ref_sha256"]


# --- the vMF baseline, likelihood and fit unit, and the speed ratio -------------------------------------------------

def _mean_resultant_exact(p: int, kappa: float) -> float:
    """A_p(kappa) = I_(p/2)(kappa) / I_(p/2-1)(kappa) by SciPy (small p, moderate kappa: no under/overflow)."""
    return float(special.iv(p / 2, kappa) / special.iv(p / 2 - 1, kappa))


def test_mpmath_vmf_backend_fails_by_its_work_bounds_never_by_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """At p = 32768, kappa = p besseli's series needs more terms than mpmath's default cap (100 per working
    bit): NoConvergence, a fit failure. Lifting only that cap gives our value, so the cap is what fails. At
    kappa = p/4 the back end gives our values, also when each call is slowed past the old 2 s wall-clock
    limit (a loaded machine)."""
    p = 32768
    with pytest.raises(FitFailed, match="NoConvergence"):
        log_i_pair("mpmath", p, float(p), 15)
    with mpmath.workdps(15):
        lifted = float(mpmath.log(mpmath.besseli(p / 2 - 1, p, maxterms=10**6)))
    assert lifted == pytest.approx(float(log_bessel_i(p / 2 - 1, float(p))), rel=1e-13)

    besseli = mpmath.besseli

    def slow_besseli(order: float, kappa: float) -> mpmath.mpf:
        if order == p / 2 - 1:
            time.sleep(2.5)
        return besseli(order, kappa)

    monkeypatch.setattr(mpmath, "besseli", slow_besseli)
    low, high = log_i_pair("mpmath", p, p / 4, 15)
    assert low == pytest.approx(float(log_bessel_i(p / 2 - 1, p / 4)), rel=1e-13)
    assert high == pytest.approx(float(log_bessel_i(p / 2, p / 4)), rel=1e-13)


@pytest.mark.parametrize("p", [3, 5, 10])
def test_banerjee_estimate_matches_the_small_concentration_expansion(p: int) -> None:
    """Inverting A_p(kappa) = kappa/p - kappa^3/(p^2 (p+2)) + O(kappa^5) gives kappa = p r + p^2 r^3/(p+2) + O(r^5);
    Banerjee's r (p - r^2)/(1 - r^2) = p r + (p-1) r^3 + O(r^5), so the two differ by (p-2)/(p+2) r^3 + O(r^5)."""
    from repro.papers.log_bessel.vmf import banerjee_kappa

    for kappa in (0.05 * p, 0.1 * p, 0.2 * p):
        r = _mean_resultant_exact(p, kappa)
        gap = banerjee_kappa(r, p) - kappa
        assert gap == pytest.approx((p - 2) / (p + 2) * r**3, abs=3 * p * r**5)


def test_vmf_unit_on_the_sphere_in_three_dimensions() -> None:
    """p = 3 closed forms: A_3(kappa) = coth kappa - 1/kappa (the sampler's E[mu^T y] and the MLE equation) and
    log C_3(kappa) = log kappa - log(4 pi sinh kappa) (the likelihood of the fitted kappa)."""
    from scipy.optimize import brentq

    from repro.papers.log_bessel.task import vmf_rows

    def a3(k: float) -> float:
        return 1 / math.tanh(k) - 1 / k

    p, n, kappa = 3, 4000, 1.5        # kappa = p / 2: our log I stays in its cheap power-series region
    ctx = SimpleNamespace(child_seed=lambda *names: 7, stopwatch=lambda: Stopwatch("cpu"), log=_ctx().log)
    rows = {r["method"]: r for r in vmf_rows(SimpleNamespace(iterations=32, mpmath_dps=15), ctx, p, n, 0.5)}
    r_bar = rows["ours"]["r_bar"]
    assert r_bar == pytest.approx(a3(kappa), abs=4 * math.sqrt((1 - a3(kappa) ** 2) / n))   # sampling error bound
    exact = brentq(lambda k: a3(k) - r_bar, 1e-3, 100.0, xtol=1e-14)
    for method in ("ours", "scipy", "mpmath"):
        assert rows[method]["success"] == 1 and rows[method]["kappa_hat"] == pytest.approx(exact, rel=1e-8)
        k = rows[method]["kappa_hat"]
        log_c3 = math.log(k) - math.log(4 * math.pi * math.sinh(k))
        assert rows[method]["loglik"] == pytest.approx(n * (log_c3 + k * r_bar), rel=1e-9)
    assert rows["ours"]["kappa_rel_err"] == pytest.approx(abs(exact - kappa) / kappa, rel=1e-6)


def test_speedup_is_scipy_time_over_ours() -> None:
    """speedup_x = (SciPy seconds) / (our seconds) on the same block = our throughput / SciPy's throughput."""
    from repro.papers.log_bessel.task import speed_rows

    cfg = SimpleNamespace(points=400, block=200, log10_v_range=[-2, 4], log10_x_range=[-4, 4])
    ctx = SimpleNamespace(child_seed=lambda *names: 3, device="cpu", stopwatch=lambda: Stopwatch("cpu"),
                          progress=lambda iterable, desc: iterable, log=_ctx().log)
    rows = speed_rows(cfg, ctx, "log_i")
    assert len(rows) == 4
    for row in rows:
        assert row["speedup_x"] == pytest.approx(row["ours_per_s"] / row["scipy_per_s"], rel=1e-12)
