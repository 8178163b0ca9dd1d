"""The ChebTuck experiment on particle potentials (long-range part of the Newton kernel).

Grid:
- ``cloud/geometry=ball,N=n,kernel=long`` (per replicate: a random ball cloud; the clouds of one replicate
  are shared by every unit with that N) and ``cloud/geometry=lattice,...`` (the fixed lattice, in every
  replicate so that a replicate's max over clouds includes it): the grid tensor on an
  n^3 cell-centred grid compressed by HOSVD and HOOI (baselines), and the Chebyshev interpolant of degree
  m - 1 by Alg. 3 (full coefficients) and Alg. 4 (reduced HOSVD from the CP factors); ranks, errors on the
  grid, and times measured side by side in one process;
- ``cloud/...,kernel=full`` (per replicate): the same with the short-range terms kept (the error must stagnate);
- ``degree`` (deterministic): 1-D interpolation error of every single Gaussian term vs degree.
"""

import numpy as np
from omegaconf import DictConfig

from repro.core.context import RunContext
from repro.core.errors import ConfigError
from repro.core.units import Unit, unit
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


def units(cfg: DictConfig) -> list[Unit]:
    unknown = sorted(set(cfg.geometries) - set(GEOMETRIES))
    if unknown:
        raise ConfigError(f"paper.geometries has unknown {unknown}; choose from {list(GEOMETRIES)}")
    grid = [unit("degree", stochastic=False)]
    for geometry in cfg.geometries:
        if geometry == "ball":
            grid += [unit("cloud", geometry="ball", N=int(n), kernel="long") for n in cfg.ball.counts]
        else:
            # The lattice is fixed, but it stays one of every replicate's clouds (as in the seed loop before the
            # port): claims take the max over a replicate's clouds, and a lattice in replicate 0 only would make
            # that max differ between replicates by construction.
            grid.append(unit("cloud", geometry="lattice", N=int(cfg.lattice.side) ** 3, kernel="long"))
    grid.append(unit("cloud", geometry="ball", N=int(cfg.full_kernel.count), kernel="full"))
    return grid


def run_unit(cfg: DictConfig, ctx: RunContext, u: Unit) -> list[dict]:
    kernel = newton_gaussian_sum(cfg.kernel.step, cfg.kernel.k_min, cfg.kernel.k_max)
    long_range = long_range_mask(kernel, cfg.kernel.split_radius)
    if u.experiment == "degree":
        return degree_rows(cfg.degree, kernel, long_range)
    s = u.settings
    cloud = particles(cfg, ctx, s["geometry"], int(s["N"]))
    if s["kernel"] == "long":
        return cloud_rows(cfg, cloud, kernel.subset(long_range), "long", list(cfg.ms), list(cfg.tols), ctx)
    return cloud_rows(cfg, cloud, kernel, "full", list(cfg.full_kernel.ms), [cfg.full_kernel.tol], ctx)


def particles(cfg: DictConfig, ctx: RunContext, geometry: str, count: int) -> tuple[np.ndarray, np.ndarray]:
    if geometry == "lattice":
        return lattice_particles(cfg.lattice.side, cfg.lattice.spacing)
    # The same cloud of N particles for every unit of this replicate (long-range and full kernel alike).
    rng = np.random.default_rng(ctx.data_seed("ball", count))
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
               ms: list[int], tols: list[float], ctx: RunContext) -> list[dict]:
    positions, charges = cloud
    grid = cell_centred_grid(cfg.grid_n)
    with ctx.stopwatch() as clock:
        exact = cp_to_full(potential_cp(grid, positions, charges, kernel))
    grid_seconds = clock.seconds
    rank_cp = charges.size * kernel.weights.size
    rows = [{"method": "cp", "params": 3 * cfg.grid_n * rank_cp, "rank": rank_cp}]
    grid_rank = {}
    for tol in tols:
        with ctx.stopwatch() as clock:
            core, factors = hosvd(exact, tol)
        seconds = clock.seconds
        grid_rank[tol] = max(core.shape)
        params = core.size + sum(f.size for f in factors)
        rows.append({"method": "grid_hosvd", "tol": tol, **tucker_row(
            core.shape, params, grid_errors(tucker_to_full(core, factors), exact, tol), seconds + grid_seconds)})
        with ctx.stopwatch() as clock:
            core, factors = hooi(exact, factors, cfg.hooi_iterations)
        rows.append({"method": "grid_hooi", "tol": tol, **tucker_row(
            core.shape, params, grid_errors(tucker_to_full(core, factors), exact, tol),
            clock.seconds + seconds + grid_seconds)})
    previous_rank: dict = {}
    for m in ms:
        with ctx.stopwatch() as clock:
            cp = potential_cp(chebyshev_points(m), positions, charges, kernel)
        sampled = clock.seconds
        with ctx.stopwatch() as clock:
            reduced = reduce_cp(cp, cfg.side_tol)
        reduced_seconds = sampled + clock.seconds
        values = None
        if m in cfg.alg3_ms and kernel_name == "long":
            with ctx.stopwatch() as clock:
                values = cp_to_full(cp)
            values_seconds = sampled + clock.seconds
        for tol in tols:
            with ctx.stopwatch() as clock:
                alg4 = chebtuck_from_cp(reduced, tol)
            alg4_seconds = clock.seconds + reduced_seconds
            row = chebtuck_row("alg4", m, tol, alg4, alg4_seconds, grid, exact, grid_rank[tol])
            row["params_vs_cp"] = row["params"] / rows[0]["params"]
            row["rank_step"] = abs(row["rank"] - previous_rank[tol]) if tol in previous_rank else np.nan
            previous_rank[tol] = row["rank"]
            if values is not None:
                with ctx.stopwatch() as clock:
                    alg3 = chebtuck_full(values, tol)
                alg3_seconds = clock.seconds + values_seconds
                rows.append(chebtuck_row("alg3", m, tol, alg3, alg3_seconds, grid, exact, grid_rank[tol]))
                row["speedup_vs_alg3_x"] = alg3_seconds / alg4_seconds   # measured side by side, same process
            rows.append(row)
        ctx.log.info("%s kernel, N = %d: m = %d done", kernel_name, charges.size, m)
    return rows


def chebtuck_row(method: str, m: int, tol: float, approx: ChebTucker, seconds: float,
                 grid: np.ndarray, exact: np.ndarray, grid_rank: int) -> dict:
    row = {"method": method, "m": m, "tol": tol,
           **tucker_row(approx.ranks, approx.parameters, grid_errors(approx.on_grid(grid), exact, tol), seconds)}
    row["rank_gap_abs"] = abs(row["rank"] - grid_rank)
    row["rank_ratio"] = row["rank"] / grid_rank
    return row


def degree_rows(cfg: DictConfig, kernel: GaussianSum, long_range: np.ndarray) -> list[dict]:
    """max |g_k - p_d| on a fine grid for each term g_k(x) = exp(-p_k (x - x0)^2) (peak 1) and degree d."""
    x_fine = np.linspace(-1, 1, cfg.fine_points)
    rows = []
    for term, (exponent, is_long) in enumerate(zip(kernel.exponents, long_range)):
        def gaussian(x: np.ndarray, p: float = exponent) -> np.ndarray:
            return np.exp(-p * (x - cfg.center) ** 2)
        rows += [{"term": term, "exponent": float(exponent), "range": "long" if is_long else "short",
                  "degree": degree, "err": interpolation_error(gaussian, degree, x_fine)} for degree in cfg.degrees]
    return rows
