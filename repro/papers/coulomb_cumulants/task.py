"""Cumulants and large deviations of radial linear statistics of the 2-D Coulomb gas.

Grid (experiment / setting):

- ``exact/f=<f>`` (deterministic): kappa_2..5 of L_N for each N (Kostlan: exact mpmath sums for polynomial g,
  Gauss-Legendre quadrature for f3 = cos(pi r / 2)), N^(p-2) kappa_p against the boundary limits of the general formula;
- ``limit/f=<f>`` (deterministic): N^(p-2) kappa_p extrapolated to N = inf by Richardson on the last pair (N, 2N)
  (corrections are O(1/N));
- ``bulk_bump`` (deterministic): f = r^2 vs f = r^2 + 0.5 (1 - r^2)^3 (same g'(1), g''(1), different bulk): limits
  compared for p = 2, 3, 4 (p = 5 also needs g'''(1), which differs);
- ``ld_limit/f=<f>``, ``ld_exact/f=<f>`` (deterministic): the scaled cumulant generating function chi(s) of L_N / N at
  speed N^2 and its Legendre transform (rate function), and the exact finite-N chi_N(s) against it;
- ``mc/sampler=<ginibre|kostlan>,N=<n>`` (per replicate): k-statistics of L_N from Ginibre eigenvalues (on
  ctx.device) or Kostlan radii against the exact finite-N values, with jackknife standard errors;
  z_clt = kappa_3 / SE tests the Gaussian (CLT) baseline kappa_3 = 0;
- ``gas/d=<d>,beta=<b>`` (per replicate): the main result at general d and beta. MALA chains (exact in law, on
  ctx.device) of N particles in R^d; k-statistics kappa_2..4 of L_N for each function against the leading
  prediction N^(2-p) beta^(1-p) c_p(f, d) (coulomb_limits: only f'(1), f''(1) enter for p >= 3), and in d = 2 for
  f = r^2 against the exact finite-N Gamma law of sum |z_i|^2 at that beta (the sampler's exactness).
"""

from collections.abc import Iterator

import numpy as np
import torch
from omegaconf import DictConfig

from repro.core.context import RunContext
from repro.core.units import Unit, grid, unit
from repro.papers.coulomb_cumulants.cumulants import (
    cumulants_of,
    gamma_law_cumulants,
    harmonic_gas_cumulants,
    jackknife_error,
    kstat,
)
from repro.papers.coulomb_cumulants.functions import boundary_limits, coulomb_limits, g_coefficients, g_function
from repro.papers.coulomb_cumulants.large_deviations import gamma_rate, scaled_cgf_exact, scaled_cgf_limit
from repro.papers.coulomb_cumulants.samplers import ginibre_eigenvalues, kostlan_squared_radii, mala_power_sums

ORDERS = (2, 3, 4, 5)
BUMP_PAIR = ("r2", "r2_bump")


def units(cfg: DictConfig) -> list[Unit]:
    functions = list(cfg.exact.functions)
    mc = [unit("mc", sampler="ginibre", N=int(n)) for n in cfg.mc.ginibre_sizes]
    mc.append(unit("mc", sampler="kostlan", N=int(cfg.mc.kostlan_size)))
    return [*grid("exact", f=functions, stochastic=False),
            *grid("limit", f=functions, stochastic=False),
            *([unit("bulk_bump", stochastic=False)] if set(BUMP_PAIR) <= set(functions) else []),
            *grid("ld_limit", f=cfg.ld.functions, stochastic=False),
            *grid("ld_exact", f=cfg.ld.functions, stochastic=False),
            *mc,
            *grid("gas", d=[int(d) for d in cfg.gas.dims], beta=[float(b) for b in cfg.gas.betas])]


def run_unit(cfg: DictConfig, ctx: RunContext, u: Unit) -> list[dict]:
    s = u.settings
    if u.experiment == "exact":
        return exact_rows(cfg.exact, ctx, s["f"])
    if u.experiment == "limit":
        return limit_rows(exact_rows(cfg.exact, ctx, s["f"]))
    if u.experiment == "bulk_bump":
        return bulk_bump_rows({name: limit_rows(exact_rows(cfg.exact, ctx, name)) for name in BUMP_PAIR})
    if u.experiment == "ld_limit":
        return ld_limit_rows(cfg.ld, s["f"])
    if u.experiment == "ld_exact":
        return ld_exact_rows(cfg.ld, s["f"])
    if u.experiment == "mc":
        return mc_rows(cfg.mc, ctx, s["sampler"], int(s["N"]))
    if u.experiment == "gas":
        return gas_rows(cfg.gas, ctx, int(s["d"]), float(s["beta"]))
    raise ValueError(f"unknown experiment {u.experiment!r}")


def exact_rows(cfg: DictConfig, ctx: RunContext, name: str) -> list[dict]:
    """N^(p-2) kappa_p for every N of cfg.sizes (built once per process and shared by exact, limit, bulk_bump)."""
    return [dict(r) for r in ctx.shared(f"exact-{name}", lambda: _exact_rows(cfg, name))]


def _exact_rows(cfg: DictConfig, name: str) -> list[dict]:
    rows = []
    predicted = boundary_limits(name, ORDERS)
    for n in cfg.sizes:
        kappas = cumulants_of(name, int(n), int(cfg.dps))
        gamma = gamma_law_cumulants(int(n))
        for p in ORDERS:
            scaled = n ** (p - 2) * kappas[p - 1]
            row = {"f": name, "N": int(n), "p": p, "kappa": kappas[p - 1], "abs_kappa": abs(kappas[p - 1]),
                   "scaled": scaled, "prediction": predicted[p],
                   "rel_dev": abs(scaled - predicted[p]) / abs(predicted[p])}
            if name == "r2":
                row["gamma_rel_err"] = abs(kappas[p - 1] - gamma[p - 1]) / gamma[p - 1]
            rows.append(row)
    return rows


def limit_rows(exact: list[dict]) -> list[dict]:
    """Richardson extrapolation 2 a(2N) - a(N) of a(N) = N^(p-2) kappa_p on the two largest N."""
    rows = []
    for p in ORDERS:
        group = sorted((r for r in exact if r["p"] == p), key=lambda r: r["N"])
        small, large = group[-2], group[-1]
        if large["N"] != 2 * small["N"]:
            raise ValueError(f"exact.sizes must end with N and 2N for the extrapolation: {small['N']}, {large['N']}")
        limit = 2 * large["scaled"] - small["scaled"]
        predicted = large["prediction"]
        rows.append({"f": large["f"], "p": p, "limit": limit, "prediction": predicted,
                     "rel_dev": abs(limit - predicted) / abs(predicted)})
    return rows


def bulk_bump_rows(limits: dict[str, list[dict]]) -> list[dict]:
    """The limits of r2 and r2_bump (same edge data, different bulk) for p = 2, 3, 4."""
    plain, bump = ({r["p"]: r["limit"] for r in limits[name]} for name in BUMP_PAIR)
    return [{"p": p, "limit": plain[p], "limit_bump": bump[p], "rel_diff": abs(plain[p] - bump[p]) / abs(plain[p])}
            for p in (2, 3, 4)]


def _limit_cgf(cfg: DictConfig, name: str) -> tuple[tuple, dict]:
    functions = tuple(g_function(name, j) for j in range(3))
    return functions, {float(s): scaled_cgf_limit(*functions, float(s)) for s in cfg.s}


def ld_limit_rows(cfg: DictConfig, name: str) -> list[dict]:
    """chi(s), m(s) = chi'(s), Phi(m(s)) (and the Gamma closed form for r2)."""
    _, limit = _limit_cgf(cfg, name)
    rows = []
    for s, (chi, m) in limit.items():
        row = {"f": name, "s": s, "chi": chi, "m": m, "rate": s * m - chi}
        if name == "r2":
            row["rate_closed"] = float(gamma_rate(np.array(m)))
            row["rate_abs_err"] = abs(row["rate"] - row["rate_closed"])
        rows.append(row)
    return rows


def ld_exact_rows(cfg: DictConfig, name: str) -> list[dict]:
    """Per N, max over the s grid of |chi_N(s) - chi(s)| and its ratio to max |chi(s)|."""
    functions, limit = _limit_cgf(cfg, name)
    scale = max(abs(chi) for chi, _ in limit.values())
    rows = []
    for n in cfg.sizes:
        deviation = max(abs(scaled_cgf_exact(*functions, int(n), s) - chi) for s, (chi, _) in limit.items())
        rows.append({"f": name, "N": int(n), "cgf_dev": deviation, "rel_cgf_dev": deviation / scale})
    return rows


def mc_rows(cfg: DictConfig, ctx: RunContext, sampler: str, n: int) -> list[dict]:
    """k-statistics of L_N from Ginibre eigenvalues or from Kostlan radii vs exact finite-N cumulants."""
    chunks = list(_linear_statistics(cfg, ctx, sampler, n))                  # per chunk, L_N of every function
    statistics = {name: np.concatenate([chunk[k] for chunk in chunks]) for k, name in enumerate(cfg.functions)}
    ctx.log.info("%s N = %d: %d samples", sampler, n, len(statistics[cfg.functions[0]]))
    rows = []
    for name in cfg.functions:
        statistic = statistics[name]
        reference = cumulants_of(name, n, 40)
        for p in (2, 3):
            estimate, error = kstat(statistic, p), jackknife_error(statistic, p)
            z = (estimate - reference[p - 1]) / error
            rows.append({"f": name, "p": p, "replicas": len(statistic), "kstat": estimate, "se": error,
                         "exact": reference[p - 1], "z": z, "abs_z": abs(z),
                         "z_clt": estimate / error if p == 3 else np.nan})
    return rows


def chunk_rows(budget_mb: float, bytes_per_row: int, cap: int | None = None) -> int:
    """Rows (matrices, samples) per chunk so that one chunk holds at most budget_mb of its largest array."""
    rows = max(1, int(float(budget_mb) * 2**20) // bytes_per_row)
    return min(rows, cap) if cap is not None else rows


def _linear_statistics(cfg: DictConfig, ctx: RunContext, sampler: str, n: int) -> Iterator[tuple[np.ndarray, ...]]:
    """Per chunk, L_N = sum_i g(|z_i|^2) of every function (a tuple of (chunk,) arrays): only one chunk of
    eigenvalues or radii is ever held. Ginibre: at most mc.batch matrices and mc.batch_mb MB of complex128 matrix
    entries per chunk (eigenvalues on ctx.device, batched torch.linalg.eigvals); Kostlan: mc.batch_mb MB of float64
    radii per chunk (numpy's Generator draws the same numbers whatever the chunking)."""
    functions = [g_function(name) for name in cfg.functions]
    if sampler == "ginibre":
        replicas = int(dict(zip(cfg.ginibre_sizes, cfg.ginibre_replicas))[n])
        batch = chunk_rows(cfg.batch_mb, 16 * n * n, int(cfg.batch))
        generator = torch.Generator(device=ctx.device).manual_seed(ctx.child_seed("ginibre"))
        for start in range(0, replicas, batch):
            eigenvalues = ginibre_eigenvalues(n, min(batch, replicas - start), generator, ctx.device)
            radii2 = (eigenvalues.abs() ** 2).cpu().numpy()
            yield tuple(g(radii2).sum(axis=1) for g in functions)
    else:
        replicas = int(cfg.kostlan_replicas)
        batch = chunk_rows(cfg.batch_mb, 8 * n)
        rng = np.random.default_rng(ctx.child_seed("kostlan"))
        for start in range(0, replicas, batch):
            radii2 = kostlan_squared_radii(n, min(batch, replicas - start), rng)
            yield tuple(g(radii2).sum(axis=1) for g in functions)


def gas_rows(cfg: DictConfig, ctx: RunContext, d: int, beta: float) -> list[dict]:
    """kappa_2..4 of L_N = sum_i f(|x_i|) under exp(-beta E) in R^d by MALA, against the leading large-N prediction
    (and, d = 2 and f = r^2, the exact finite-N Gamma law). Chains are independent, so the jackknife runs over
    blocks of chains (this accounts for the autocorrelation within a chain)."""
    n = int(cfg.size)
    coefficients = {name: g_coefficients(name) for name in cfg.functions}     # g(u) = sum_k c_k u^k, u = |x|^2
    powers = max(len(c) for c in coefficients.values()) - 1
    generator = torch.Generator(device=ctx.device).manual_seed(ctx.child_seed("mala"))
    sums = mala_power_sums(n, d, beta, powers, int(cfg.chains), int(cfg.burn_in), int(cfg.steps), int(cfg.thin),
                           generator, ctx.device)                            # (records, chains, powers)
    rows = []
    for name, c in coefficients.items():
        statistic = (c[0] * n + sums[..., : len(c) - 1] @ c[1:]).T.reshape(-1)   # chain-major
        limits = coulomb_limits(name, d, beta, (2, 3, 4))
        exact = harmonic_gas_cumulants(n, beta) if (d, name) == (2, "r2") else None
        for p in (2, 3, 4):
            estimate, error = kstat(statistic, p), jackknife_error(statistic, p)
            prediction = limits[p] * n ** (2.0 - p)
            row = {"f": name, "N": n, "p": p, "kstat": estimate, "se": error, "prediction": prediction,
                   "ratio": estimate / prediction, "rel_dev": abs(estimate / prediction - 1),
                   "z_zero": estimate / error}
            if exact is not None:
                z = (estimate - exact[p - 1]) / error
                row.update(exact=exact[p - 1], z=z, abs_z=abs(z))
            rows.append(row)
        ctx.log.info("MALA d = %d, beta = %g, %s: kappa_2..4 / prediction = %s", d, beta, name,
                     ", ".join(f"{row['ratio']:.3f}" for row in rows[-3:]))
    return rows
