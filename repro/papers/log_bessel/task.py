"""log I_v, log K_v in log space vs mpmath (reference) and SciPy (baseline), and vMF fits in high dimension.

- accuracy: relative error |y_hat - y| / max(|y|, 1) of the log value against mpmath at `mpmath_dps` digits, and
  the fraction of non-finite outputs, on a (v, x) grid, the card's known SciPy failure points and random
  log-uniform pairs (one set per replicate seed);
- speed: evaluations per second of ours (torch, float64, ctx.device) and SciPy (ive/kve then log) on the same
  blocks of random pairs, timed side by side; speedup_x = SciPy time / our time per block;
- vmf: maximum-likelihood kappa of vMF samples in p dimensions with our log I, SciPy ive, mpmath besseli, and
  Banerjee's closed form.
"""

import math
import time

import numpy as np
import torch
from omegaconf import DictConfig

from repro.core.context import RunContext
from repro.papers.log_bessel.bessel import log_bessel_i, log_bessel_k
from repro.papers.log_bessel.reference import FUNCTIONS, ReferenceCache, scipy_log_bessel
from repro.papers.log_bessel.vmf import (
    BACKENDS,
    FitFailed,
    banerjee_kappa,
    fit_kappa,
    log_likelihood,
    sample_vmf,
)

OURS = {"log_i": log_bessel_i, "log_k": log_bessel_k}


def run(cfg: DictConfig, ctx: RunContext) -> list[dict]:
    torch.set_num_threads(int(cfg.threads))
    seeds = ctx.replicate_seeds()
    cache = ReferenceCache(ctx.data_dir / "log_bessel" / (f"mpmath_dps{cfg.accuracy.mpmath_dps}_"
                                                          f"limit{cfg.accuracy.seconds_per_point}s.csv"),
                           int(cfg.accuracy.mpmath_dps), float(cfg.accuracy.seconds_per_point))
    grid_v, grid_x = np.meshgrid(np.array(cfg.accuracy.orders, dtype=float),
                                 np.logspace(*cfg.accuracy.log10_x_range, int(cfg.accuracy.x_points)), indexing="ij")
    rows = ctx.unit("accuracy-grid", lambda: accuracy_rows(
        "grid", grid_v.ravel(), grid_x.ravel(), FUNCTIONS, cache, seeds[0], ctx))
    for function in FUNCTIONS:
        points = np.array(cfg.accuracy.known_failures[function], dtype=float)
        rows += ctx.unit(f"accuracy-failures-{function}", lambda f=function, c=points: accuracy_rows(
            "known_failures", c[:, 0], c[:, 1], (f,), cache, seeds[0], ctx))
    for seed in seeds:
        v, x = random_pairs(cfg.accuracy.random_pairs, cfg.accuracy, np.random.default_rng(seed))
        rows += ctx.unit(f"accuracy-random-{seed}", lambda s=seed, v=v, x=x: accuracy_rows(
            "random", v, x, FUNCTIONS, cache, s, ctx))
    rows += ctx.unit("speed", lambda: speed_rows(cfg.speed, ctx, seeds[0]))
    for seed in seeds:
        rows += ctx.unit(f"vmf-{seed}", lambda s=seed: vmf_rows(cfg.vmf, ctx, s))
    return rows


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


def accuracy_rows(point_set: str, v: np.ndarray, x: np.ndarray, functions: tuple, cache: ReferenceCache, seed: int,
                  ctx: RunContext) -> list[dict]:
    rows = []
    for function in functions:
        start = time.perf_counter()
        reference = cache.many(function, v, x)
        cache.save()
        ctx.log.info("accuracy %s %s: %d mpmath references (%d missing) in %.1f s", point_set, function, len(v),
                     int(np.isnan(reference).sum()), time.perf_counter() - start)
        outputs = {"ours": OURS[function](torch.tensor(v, device=ctx.device), torch.tensor(x, device=ctx.device))
                   .cpu().numpy(), "scipy": scipy_log_bessel(function, v, x)}
        # mpmath.besselk is itself wrong at some (v, x) (e.g. +162.9 for log K_565.39(474.38), true -169.65):
        # where it and ours disagree, mpmath.quad of the integral representation decides the reference.
        disputed = np.flatnonzero(relative_error(outputs["ours"], reference) > 1e-12) if function == "log_k" else []
        for i in disputed:
            reference[i] = cache.log_k_quad(v[i], x[i])
        cache.save()
        if len(disputed):
            ctx.log.info("accuracy %s log_k: %d references re-derived by mpmath.quad", point_set, len(disputed))
        source = np.where(np.isin(np.arange(len(v)), disputed), "quad", "bessel")
        for method, estimate in outputs.items():
            error = relative_error(estimate, reference)
            rows += [{"experiment": "accuracy", "set": point_set, "function": function, "method": method,
                      "seed": seed, "v": a, "x": b, "has_ref": int(np.isfinite(r)),
                      "nonfinite": int(not np.isfinite(e)), "rel_err": err, "ref_source": src}
                     for a, b, r, e, err, src in zip(v, x, reference, estimate, error, source)]
    return rows


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def speed_rows(cfg: DictConfig, ctx: RunContext, seed: int) -> list[dict]:
    """Side by side on each block of `block` random pairs: our time (inputs already on the device) and SciPy's."""
    rng = np.random.default_rng(seed)
    rows = []
    for function in FUNCTIONS:
        v, x = random_pairs(cfg.block, cfg, rng)
        OURS[function](torch.tensor(v[:1000], device=ctx.device), torch.tensor(x[:1000], device=ctx.device))  # warm-up
        for block in ctx.progress(range(int(cfg.points) // int(cfg.block)), desc=f"speed {function}"):
            v, x = random_pairs(cfg.block, cfg, rng)
            v_t, x_t = torch.tensor(v, device=ctx.device), torch.tensor(x, device=ctx.device)
            _synchronize(ctx.device)
            start = time.perf_counter()
            OURS[function](v_t, x_t)
            _synchronize(ctx.device)
            ours_s = time.perf_counter() - start
            start = time.perf_counter()
            scipy_log_bessel(function, v, x)
            scipy_s = time.perf_counter() - start
            rows.append({"experiment": "speed", "function": function, "block": block, "device": ctx.device,
                         "seed": seed, "ours_per_s": len(v) / ours_s, "scipy_per_s": len(v) / scipy_s,
                         "speedup_x": scipy_s / ours_s})
        ctx.log.info("speed %s: median speedup vs SciPy %.3g", function,
                     float(np.median([r["speedup_x"] for r in rows if r["function"] == function])))
    return rows


def vmf_rows(cfg: DictConfig, ctx: RunContext, seed: int) -> list[dict]:
    """For each p and kappa = factor * p: R_bar of n samples, then kappa_hat per method. A fit succeeds when the
    bisection converges with finite Bessel ratios and the log-likelihood at kappa_hat is finite."""
    rows = []
    for p, n in zip(cfg.dimensions, cfg.samples):
        for factor in cfg.kappa_factors:
            kappa = factor * p
            rng = np.random.default_rng([seed, p, int(factor * 1000)])
            samples = sample_vmf(p, kappa, n, rng)
            r_bar = float(np.linalg.norm(samples.mean(axis=0)))
            for method in (*BACKENDS, "banerjee"):
                start = time.perf_counter()
                if method == "banerjee":
                    kappa_hat, converged = banerjee_kappa(r_bar, p), True
                else:
                    try:
                        kappa_hat, converged = fit_kappa(method, r_bar, p, cfg.iterations, cfg.seconds_per_call), True
                    except FitFailed as error:
                        kappa_hat, converged = math.nan, False
                        ctx.log.info("vmf p=%d kappa=%g %s failed: %s", p, kappa, method, error)
                seconds = time.perf_counter() - start
                likelihood_backend = "ours" if method == "banerjee" else method
                loglik = (log_likelihood(likelihood_backend, r_bar, n, p, kappa_hat, cfg.seconds_per_call)
                          if converged else math.nan)
                rows.append({"experiment": "vmf", "p": p, "kappa": kappa, "n": n, "seed": seed, "method": method,
                             "r_bar": r_bar, "kappa_hat": kappa_hat, "kappa_rel_err": abs(kappa_hat - kappa) / kappa,
                             "loglik": loglik, "success": int(converged and math.isfinite(loglik)),
                             "fit_time_s": seconds})
    return rows
