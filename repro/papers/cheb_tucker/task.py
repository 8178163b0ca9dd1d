"""The ChebTuck experiment on particle potentials (long-range part of the Newton kernel):

- cloud: for each geometry (random ball cloud of N particles, cubic lattice), the grid tensor on an n^3
  cell-centred grid is compressed by HOSVD and HOOI (baselines) and the Chebyshev interpolant of degree m - 1 by
  Alg. 3 (full coefficients) and Alg. 4 (reduced HOSVD from the CP factors); ranks, errors on the grid, times;
- full kernel: the same with the short-range terms kept (error must stagnate);
- degree: 1-D interpolation error of every single Gaussian term vs degree.
"""

import time

import numpy as np
from omegaconf import DictConfig
from threadpoolctl import threadpool_limits

from repro.core.context import RunContext
from repro.core.errors import ConfigError
from repro.papers.cheb_tucker.chebtuck import (
    ChebTucker,
    chebtuck_from_cp,
    chebtuck_full,
    chebyshev_points,
    interpolation_error,
    reduce_cp,
)
from repro.papers.cheb_tucker.kernel import (
    GaussianSum,
    ball_particles,
    cp_to_full,
    lattice_particles,
    long_range_mask,
    newton_gaussian_sum,
    potential_cp,
)
from repro.papers.cheb_tucker.tucker import hooi, hosvd, tucker_to_full

GEOMETRIES = ("ball", "lattice")


def run(cfg: DictConfig, ctx: RunContext) -> list[dict]:
    # Multi-threaded OpenBLAS LAPACK (QR, SVD) runs up to 50x slower on a loaded 2-core host; one thread is
    # as fast for these sizes and makes the Alg. 3 / Alg. 4 timings comparable.
    with threadpool_limits(limits=1, user_api="blas"):
        return experiment(cfg, ctx)


def experiment(cfg: DictConfig, ctx: RunContext) -> list[dict]:
    unknown = sorted(set(cfg.geometries) - set(GEOMETRIES))
    if unknown:
        raise ConfigError(f"paper.geometries has unknown {unknown}; choose from {list(GEOMETRIES)}")
    kernel = newton_gaussian_sum(cfg.kernel.step, cfg.kernel.k_min, cfg.kernel.k_max)
    long_range = long_range_mask(kernel, cfg.kernel.split_radius)
    rows = ctx.unit("degree", lambda: degree_rows(cfg.degree, kernel, long_range, ctx.seed))
    full = cfg.full_kernel
    for seed in ctx.replicate_seeds():
        for geometry in cfg.geometries:
            counts = list(cfg.ball.counts) if geometry == "ball" else [cfg.lattice.side**3]
            for count in counts:
                rows += ctx.unit(f"{geometry}-{count}-{seed}", lambda g=geometry, c=count, s=seed: cloud_rows(
                    cfg, particles(cfg, g, c, s), kernel.subset(long_range), "long", list(cfg.ms), list(cfg.tols),
                    {"geometry": g, "N": c, "seed": s}, ctx))
        rows += ctx.unit(f"full-{seed}", lambda s=seed: cloud_rows(
            cfg, particles(cfg, "ball", full.count, s), kernel, "full", list(full.ms), [full.tol],
            {"geometry": "ball", "N": full.count, "seed": s}, ctx))
    return rows


def particles(cfg: DictConfig, geometry: str, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if geometry == "lattice":
        return lattice_particles(cfg.lattice.side, cfg.lattice.spacing)
    rng = np.random.default_rng(seed + count)
    return ball_particles(count, cfg.ball.radius, cfg.ball.min_distance, rng)


def cell_centred_grid(n: int) -> np.ndarray:
    """x_i = -1 + (i + 1/2) h, h = 2 / n (the authors' grid)."""
    return -1 + (np.arange(n) + 0.5) * 2 / n


def grid_errors(approx: np.ndarray, exact: np.ndarray, tol: float) -> dict:
    """Relative max-norm error on the middle z-slice (index n // 2) and relative Frobenius error on the grid."""
    middle = exact.shape[2] // 2
    max_err = np.abs(approx - exact)[:, :, middle].max() / np.abs(exact[:, :, middle]).max()
    return {"max_err": float(max_err), "fro_err": float(np.linalg.norm(approx - exact) / np.linalg.norm(exact)),
            "err_over_tol": float(max_err / tol)}


def tucker_row(ranks: tuple[int, ...], parameters: int, errors: dict, seconds: float) -> dict:
    return {"rank": max(ranks), "r1": ranks[0], "r2": ranks[1], "r3": ranks[2], "params": parameters,
            "time_s": seconds, **errors}


def cloud_rows(cfg: DictConfig, cloud: tuple[np.ndarray, np.ndarray], kernel: GaussianSum, kernel_name: str,
               ms: list[int], tols: list[float], keys: dict, ctx: RunContext) -> list[dict]:
    positions, charges = cloud
    grid = cell_centred_grid(cfg.grid_n)
    start = time.perf_counter()
    exact = cp_to_full(potential_cp(grid, positions, charges, kernel))
    grid_seconds = time.perf_counter() - start
    base = {"experiment": "cloud", "kernel": kernel_name, **keys}
    rank_cp = charges.size * kernel.weights.size
    rows = [{**base, "method": "cp", "params": 3 * cfg.grid_n * rank_cp, "rank": rank_cp}]
    grid_rank = {}
    for tol in tols:
        start = time.perf_counter()
        core, factors = hosvd(exact, tol)
        seconds = time.perf_counter() - start
        grid_rank[tol] = max(core.shape)
        params = core.size + sum(f.size for f in factors)
        rows.append({**base, "method": "grid_hosvd", "tol": tol, **tucker_row(
            core.shape, params, grid_errors(tucker_to_full(core, factors), exact, tol), seconds + grid_seconds)})
        start = time.perf_counter()
        core, factors = hooi(exact, factors, cfg.hooi_iterations)
        rows.append({**base, "method": "grid_hooi", "tol": tol, **tucker_row(
            core.shape, params, grid_errors(tucker_to_full(core, factors), exact, tol),
            time.perf_counter() - start + seconds + grid_seconds)})
    previous_rank: dict = {}
    for m in ms:
        start = time.perf_counter()
        cp = potential_cp(chebyshev_points(m), positions, charges, kernel)
        sampled = time.perf_counter() - start
        reduced = reduce_cp(cp, cfg.side_tol)
        reduced_seconds = time.perf_counter() - start
        values = None
        if m in cfg.alg3_ms and kernel_name == "long":
            start = time.perf_counter()
            values = cp_to_full(cp)
            values_seconds = time.perf_counter() - start + sampled
        for tol in tols:
            start = time.perf_counter()
            alg4 = chebtuck_from_cp(reduced, tol)
            alg4_seconds = time.perf_counter() - start + reduced_seconds
            row = chebtuck_row(base, "alg4", m, tol, alg4, alg4_seconds, grid, exact, grid_rank[tol])
            row["params_vs_cp"] = row["params"] / rows[0]["params"]
            row["rank_step"] = abs(row["rank"] - previous_rank[tol]) if tol in previous_rank else np.nan
            previous_rank[tol] = row["rank"]
            if values is not None:
                start = time.perf_counter()
                alg3 = chebtuck_full(values, tol)
                alg3_seconds = time.perf_counter() - start + values_seconds
                rows.append(chebtuck_row(base, "alg3", m, tol, alg3, alg3_seconds, grid, exact, grid_rank[tol]))
                row["speedup_vs_alg3_x"] = alg3_seconds / alg4_seconds   # measured side by side, same process
            rows.append(row)
        ctx.log.info("%s kernel, %s: m = %d done", kernel_name, keys, m)
    return rows


def chebtuck_row(base: dict, method: str, m: int, tol: float, approx: ChebTucker, seconds: float,
                 grid: np.ndarray, exact: np.ndarray, grid_rank: int) -> dict:
    row = {**base, "method": method, "m": m, "tol": tol,
           **tucker_row(approx.ranks, approx.parameters, grid_errors(approx.on_grid(grid), exact, tol), seconds)}
    row["rank_gap_abs"] = abs(row["rank"] - grid_rank)
    row["rank_ratio"] = row["rank"] / grid_rank
    return row


def degree_rows(cfg: DictConfig, kernel: GaussianSum, long_range: np.ndarray, seed: int) -> list[dict]:
    """max |g_k - p_d| on a fine grid for each term g_k(x) = exp(-p_k (x - x0)^2) (peak 1) and degree d."""
    x_fine = np.linspace(-1, 1, cfg.fine_points)
    rows = []
    for term, (exponent, is_long) in enumerate(zip(kernel.exponents, long_range)):
        def gaussian(x: np.ndarray, p: float = exponent) -> np.ndarray:
            return np.exp(-p * (x - cfg.center) ** 2)
        rows += [{"experiment": "degree", "term": term, "exponent": float(exponent),
                  "range": "long" if is_long else "short", "degree": degree, "seed": seed,
                  "err": interpolation_error(gaussian, degree, x_fine)} for degree in cfg.degrees]
    return rows
