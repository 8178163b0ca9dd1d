"""log I_v, log K_v in log space vs mpmath (reference) and SciPy (baseline), and vMF fits in high dimension.

Grid (every unit compares ours with the baselines on the same points, so methods are row columns):

- ``accuracy/set=grid|known_failures,function=f`` (deterministic) and ``accuracy/set=random,function=f``
  (per replicate; the same random pairs for log I and log K of a replicate): relative error
  |y_hat - y| / max(|y|, 1) of the log value against mpmath at ``mpmath_dps`` digits, and whether the output is
  non-finite, for ours (torch), ours_compiled (numba) and SciPy;
- ``speed/function=f`` (per replicate): evaluations per second of ours (torch, float64, ctx.device), ours_compiled
  (numba, CPU) and SciPy (ive/kve then log) on the same blocks of random pairs, timed side by side with
  ``ctx.stopwatch``; speedup_x = SciPy time / our time per block;
- ``vmf/p=p,kappa_factor=c`` (per replicate): maximum-likelihood kappa of n vMF samples (kappa = c p) with our
  log I, SciPy ive, mpmath besseli, and Banerjee's closed form.
"""

import math

import numpy as np
import torch
from omegaconf import DictConfig

from repro.core.context import RunContext
from repro.core.errors import ConfigError
from repro.core.units import Unit, unit
from repro.papers.log_bessel.bessel import log_bessel_i, log_bessel_k
from repro.papers.log_bessel.compiled import log_bessel_i_compiled, log_bessel_k_compiled
from repro.papers.log_bessel.reference import FUNCTIONS, ReferenceCache, references_sha256, scipy_log_bessel
from repro.papers.log_bessel.vmf import (
    BACKENDS,
    FitFailed,
    banerjee_kappa,
    fit_kappa,
    log_likelihood,
    sample_vmf,
)

OURS = {"log_i": log_bessel_i, "log_k": log_bessel_k}                       # torch, on ctx.device
COMPILED = {"log_i": log_bessel_i_compiled, "log_k": log_bessel_k_compiled}   # numba, on the CPU


def units(cfg: DictConfig) -> list[Unit]:
    if len(cfg.vmf.dimensions) != len(cfg.vmf.samples):
        raise ConfigError("paper.vmf.samples needs one sample count per entry of paper.vmf.dimensions")
    return [
        *(unit("accuracy", set="grid", function=f, stochastic=False) for f in FUNCTIONS),
        *(unit("accuracy", set="known_failures", function=f, stochastic=False) for f in FUNCTIONS),
        *(unit("accuracy", set="random", function=f) for f in FUNCTIONS),
        *(unit("speed", function=f) for f in FUNCTIONS),
        *(unit("vmf", p=int(p), kappa_factor=float(c)) for p in cfg.vmf.dimensions for c in cfg.vmf.kappa_factors),
    ]


def run_unit(cfg: DictConfig, ctx: RunContext, u: Unit) -> list[dict]:
    s = u.settings
    if u.experiment == "accuracy":
        v, x = accuracy_points(cfg.accuracy, ctx, s["set"], s["function"])
        return accuracy_rows(v, x, s["function"], reference_cache(cfg.accuracy, ctx), ctx)
    if u.experiment == "speed":
        return speed_rows(cfg.speed, ctx, s["function"])
    p = int(s["p"])
    n = int(dict(zip(cfg.vmf.dimensions, cfg.vmf.samples))[p])
    return vmf_rows(cfg.vmf, ctx, p, n, float(s["kappa_factor"]))


def reference_cache(cfg: DictConfig, ctx: RunContext) -> ReferenceCache:
    """mpmath values cached on disk across runs (keyed by the exact v, x; deterministic given the digits and
    besselk's caps, so those name the file; the wall-clock safety net does not, as a value that hits
    it is never cached). The file is sealed: an edited cache is refused (see reference.py)."""
    name = f"references_dps{cfg.mpmath_dps}_k{cfg.k_maxprec}bits{cfg.k_maxterms}terms.csv"
    return ReferenceCache(ctx.data_dir / "log_bessel" / name, int(cfg.mpmath_dps), float(cfg.seconds_per_point),
                          (int(cfg.k_maxprec), int(cfg.k_maxterms)))


def accuracy_points(cfg: DictConfig, ctx: RunContext, point_set: str, function: str) -> tuple[np.ndarray, np.ndarray]:
    if point_set == "grid":
        v, x = np.meshgrid(np.array(cfg.orders, dtype=float), np.logspace(*cfg.log10_x_range, int(cfg.x_points)),
                           indexing="ij")
        return v.ravel(), x.ravel()
    if point_set == "known_failures":
        points = np.array(cfg.known_failures[function], dtype=float)
        return points[:, 0], points[:, 1]
    # The same pairs for log I and log K within a replicate.
    return random_pairs(cfg.random_pairs, cfg, np.random.default_rng(ctx.data_seed("random_pairs")))


def random_pairs(count: int, cfg: DictConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """v and x log-uniform on cfg.log10_v_range and cfg.log10_x_range."""
    v = 10 ** rng.uniform(*cfg.log10_v_range, size=int(count))
    x = 10 ** rng.uniform(*cfg.log10_x_range, size=int(count))
    return v, x


def relative_error(estimate: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """|y_hat - y| / max(|y|, 1): relative error, absolute where |log F| < 1; NaN without a finite pair."""
    with np.errstate(invalid="ignore"):
        error = np.abs(estimate - reference) / np.maximum(np.abs(reference), 1.0)
    return np.where(np.isfinite(estimate) & np.isfinite(reference), error, np.nan)


def accuracy_rows(v: np.ndarray, x: np.ndarray, function: str, cache: ReferenceCache,
                  ctx: RunContext) -> list[dict]:
    """Ours (torch and compiled) and SciPy against the mpmath reference at every point.

    For log K two independent references are computed at every point: mpmath.besselk and mpmath.quad of the
    integral representation. ``ref_agreement`` is their relative difference. The reference is besselk where the
    two agree to 1e-12 or quad is missing, quad where besselk fails or where they disagree (besselk is itself
    wrong at some (v, x), e.g. +162.9 for log K_565.39(474.38), whose value is -169.65). A point with neither
    keeps ``has_ref = 0`` and ``ref_source = none`` and is listed in the report, never dropped."""
    with ctx.stopwatch() as clock:
        reference = cache.many(function, v, x)
        cache.save()
    source = np.where(np.isfinite(reference), "bessel", "none").astype(object)
    keys = [cache.key(function, a, b) for a, b in zip(v, x)]
    agreement = np.full(len(v), np.nan)
    if function == "log_k":
        quad = np.array([cache.log_k_quad(a, b) for a, b in zip(v, x)])
        cache.save()
        keys += [cache.key("log_k_quad", a, b) for a, b in zip(v, x)]
        agreement = relative_error(reference, quad)
        use_quad = np.isfinite(quad) & ~(agreement <= 1e-12)
        reference = np.where(use_quad, quad, reference)
        source[use_quad] = "quad"
        ctx.log.info("accuracy log_k: quad and besselk both at %d points, max relative difference %.2e; quad used "
                     "at %d points", int(np.isfinite(agreement).sum()), np.nanmax(agreement, initial=0.0),
                     int(use_quad.sum()))
    for i in range(len(v)):
        missing = not np.isfinite(reference[i])
        if missing and (cache.timed_out(function, v[i], x[i]) or cache.timed_out("log_k_quad", v[i], x[i])):
            source[i] = "timeout"
    timeouts = int((source == "timeout").sum())
    if timeouts:
        ctx.log.warning("accuracy %s: %d references hit the %g s safety net (not cached; no reference here)",
                        function, timeouts, cache.seconds)
    ctx.log.info("accuracy %s: %d mpmath references (%d missing) in %.1f s", function, len(v),
                 int(np.isnan(reference).sum()), clock.seconds)
    fingerprint = references_sha256(cache, keys)
    outputs = {"ours": OURS[function](torch.tensor(v, device=ctx.device), torch.tensor(x, device=ctx.device))
               .cpu().numpy(), "ours_compiled": COMPILED[function](v, x), "scipy": scipy_log_bessel(function, v, x)}
    rows = []
    for method, estimate in outputs.items():
        error = relative_error(estimate, reference)
        rows += [{"method": method, "v": a, "x": b, "has_ref": int(np.isfinite(r)),
                  "nonfinite": int(not np.isfinite(e)), "rel_err": err, "ref_source": src,
                  "ref_agreement": agree, "ref_sha256": fingerprint}
                 for a, b, r, e, err, src, agree in zip(v, x, reference, estimate, error, source, agreement)]
    return rows


def speed_rows(cfg: DictConfig, ctx: RunContext, function: str) -> list[dict]:
    """Side by side on each block of `block` random pairs: SciPy's time and each of ours, the torch code on
    ctx.device (inputs already there) and the compiled kernel on the CPU; speedup_x = SciPy time / our time."""
    rng = np.random.default_rng(ctx.child_seed("pairs"))
    v, x = random_pairs(1000, cfg, rng)
    OURS[function](torch.tensor(v, device=ctx.device), torch.tensor(x, device=ctx.device))  # warm-up
    COMPILED[function](v, x)   # compiles on first use
    rows = []
    for block in ctx.progress(range(int(cfg.points) // int(cfg.block)), desc=f"speed {function}"):
        v, x = random_pairs(cfg.block, cfg, rng)
        v_t, x_t = torch.tensor(v, device=ctx.device), torch.tensor(x, device=ctx.device)
        with ctx.stopwatch() as torch_clock:
            OURS[function](v_t, x_t)
        with ctx.stopwatch() as compiled_clock:
            COMPILED[function](v, x)
        with ctx.stopwatch() as scipy_clock:
            scipy_log_bessel(function, v, x)
        for method, device, clock in (("ours", ctx.device, torch_clock), ("ours_compiled", "cpu", compiled_clock)):
            rows.append({"method": method, "block": block, "device": device, "ours_per_s": len(v) / clock.seconds,
                         "scipy_per_s": len(v) / scipy_clock.seconds, "speedup_x": scipy_clock.seconds / clock.seconds})
    for method in ("ours", "ours_compiled"):
        ctx.log.info("speed %s %s: median speedup vs SciPy %.3g", function, method,
                     float(np.median([r["speedup_x"] for r in rows if r["method"] == method])))
    return rows


def vmf_rows(cfg: DictConfig, ctx: RunContext, p: int, n: int, factor: float) -> list[dict]:
    """R_bar of n samples at kappa = factor * p, then kappa_hat per method. A fit succeeds when the bisection
    converges with finite Bessel ratios and the log-likelihood at kappa_hat is finite; mpmath fails only where
    it gives up within its own work bounds (vmf.py), so success never depends on machine load. Its time is
    reported apart: wall seconds (fit_time_s) and this process's CPU seconds (fit_cpu_time_s)."""
    kappa = factor * p
    samples = sample_vmf(p, kappa, n, np.random.default_rng(ctx.child_seed("samples")))
    r_bar = float(np.linalg.norm(samples.mean(axis=0)))
    rows = []
    dps = int(cfg.mpmath_dps)
    for method in (*BACKENDS, "banerjee"):
        with ctx.stopwatch() as clock:
            if method == "banerjee":
                kappa_hat, converged = banerjee_kappa(r_bar, p), True
            else:
                try:
                    kappa_hat, converged = fit_kappa(method, r_bar, p, cfg.iterations, dps), True
                except FitFailed as error:
                    kappa_hat, converged = math.nan, False
                    ctx.log.info("vmf p=%d kappa=%g %s failed: %s", p, kappa, method, error)
        likelihood_backend = "ours" if method == "banerjee" else method
        loglik = log_likelihood(likelihood_backend, r_bar, n, p, kappa_hat, dps) if converged else math.nan
        rows.append({"kappa": kappa, "n": n, "method": method, "r_bar": r_bar, "kappa_hat": kappa_hat,
                     "kappa_rel_err": abs(kappa_hat - kappa) / kappa, "loglik": loglik,
                     "success": int(converged and math.isfinite(loglik)), "fit_time_s": clock.seconds,
                     "fit_cpu_time_s": clock.cpu_seconds})
    return rows
