"""Cumulants and large deviations of radial linear statistics of the 2-D Coulomb gas:

- exact: kappa_2..5 of L_N for each test function and N (Kostlan: exact mpmath sums for polynomial g, Gauss-Legendre
  quadrature for f3 = cos(pi r / 2)), N^(p-2) kappa_p against the boundary limits of the general formula, extrapolated
  to N = inf by Richardson on the last pair (N, 2N) (corrections are O(1/N));
- bulk_bump: f = r^2 vs f = r^2 + 0.5 (1 - r^2)^3 (same g'(1), g''(1), different bulk): limits compared for
  p = 2, 3, 4 (p = 5 also needs g'''(1), which differs);
- ld_limit, ld_exact: the scaled cumulant generating function chi(s) of L_N / N at speed N^2 and its Legendre
  transform (rate function), against the Gamma-law closed form (f = r^2) and the exact finite-N chi_N(s);
- mc: k-statistics of L_N from Ginibre eigenvalues (and Kostlan radii) against the exact finite-N values, with
  jackknife standard errors; z_clt = kappa_3 / SE tests the Gaussian (CLT) baseline kappa_3 = 0;
- beta: MALA chains for beta in cfg.beta.betas, f = r^2, against the exact Gamma law of sum |z_i|^2 at that beta;
  beta_exact: that law at the largest N against the scaling kappa_p(beta) = (2/beta)^(p-1) kappa_p(2) (card).
"""

import numpy as np
import torch
from omegaconf import DictConfig

from repro.core.context import RunContext
from repro.papers.coulomb_cumulants.cumulants import (
    cumulants_of,
    gamma_law_cumulants,
    harmonic_gas_cumulants,
    jackknife_error,
    kstat,
)
from repro.papers.coulomb_cumulants.functions import boundary_limits, g_function
from repro.papers.coulomb_cumulants.large_deviations import gamma_rate, scaled_cgf_exact, scaled_cgf_limit
from repro.papers.coulomb_cumulants.samplers import ginibre_eigenvalues, kostlan_squared_radii, mala_linear_statistic

ORDERS = (2, 3, 4, 5)


def run(cfg: DictConfig, ctx: RunContext) -> list[dict]:
    torch.set_num_threads(int(cfg.threads))
    seeds = ctx.replicate_seeds()
    exact = ctx.unit("exact", lambda: exact_rows(cfg.exact, seeds[0], ctx))
    rows = exact + limit_rows(exact, seeds[0]) + beta_scaling_rows(cfg, seeds[0])
    rows += ctx.unit("large_deviations", lambda: large_deviation_rows(cfg.ld, seeds[0], ctx))
    for seed in seeds:
        rows += ctx.unit(f"mc-{seed}", lambda s=seed: mc_rows(cfg.mc, s, ctx))
        rows += ctx.unit(f"beta-{seed}", lambda s=seed: beta_rows(cfg.beta, s, ctx))
    return rows


def exact_rows(cfg: DictConfig, seed: int, ctx: RunContext) -> list[dict]:
    rows = []
    for name in cfg.functions:
        predicted = boundary_limits(name, ORDERS)
        for n in cfg.sizes:
            kappas = cumulants_of(name, n, int(cfg.dps))
            gamma = gamma_law_cumulants(n)
            for p in ORDERS:
                scaled = n ** (p - 2) * kappas[p - 1]
                row = {"experiment": "exact", "f": name, "N": n, "p": p, "seed": seed, "kappa": kappas[p - 1],
                       "abs_kappa": abs(kappas[p - 1]), "scaled": scaled, "prediction": predicted[p],
                       "rel_dev": abs(scaled - predicted[p]) / abs(predicted[p])}
                if name == "r2":
                    row["gamma_rel_err"] = abs(kappas[p - 1] - gamma[p - 1]) / gamma[p - 1]
                rows.append(row)
        ctx.log.info("exact cumulants of %s for N = %s", name, list(cfg.sizes))
    return rows


def limit_rows(exact: list[dict], seed: int) -> list[dict]:
    """Richardson extrapolation 2 a(2N) - a(N) of a(N) = N^(p-2) kappa_p on the two largest N, and the bulk-bump
    comparison of the limits of r2 and r2_bump (p = 2, 3, 4)."""
    rows, limits = [], {}
    for (name, p), group in _group(exact, ("f", "p")).items():
        group = sorted(group, key=lambda r: r["N"])
        small, large = group[-2], group[-1]
        if large["N"] != 2 * small["N"]:
            raise ValueError(f"exact.sizes must end with N and 2N for the extrapolation: {small['N']}, {large['N']}")
        limit = 2 * large["scaled"] - small["scaled"]
        limits[name, p] = limit
        predicted = large["prediction"]
        rows.append({"experiment": "limit", "f": name, "p": p, "seed": seed, "limit": limit,
                     "prediction": predicted, "rel_dev": abs(limit - predicted) / abs(predicted)})
    for p in (2, 3, 4):
        if ("r2", p) in limits and ("r2_bump", p) in limits:
            rows.append({"experiment": "bulk_bump", "p": p, "seed": seed, "limit": limits["r2", p],
                         "limit_bump": limits["r2_bump", p],
                         "rel_diff": abs(limits["r2", p] - limits["r2_bump", p]) / abs(limits["r2", p])})
    return rows


def _group(rows: list[dict], keys: tuple) -> dict:
    groups: dict = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in keys), []).append(row)
    return groups


def large_deviation_rows(cfg: DictConfig, seed: int, ctx: RunContext) -> list[dict]:
    """ld_limit: chi(s), m(s) = chi'(s), Phi(m(s)) per test function (and the Gamma closed form for r2);
    ld_exact: per N, max over the s grid of |chi_N(s) - chi(s)| and its ratio to max |chi(s)|."""
    rows = []
    for name in cfg.functions:
        g, g1, g2 = (g_function(name, j) for j in range(3))
        limit = {float(s): scaled_cgf_limit(g, g1, g2, float(s)) for s in cfg.s}
        for s, (chi, m) in limit.items():
            row = {"experiment": "ld_limit", "f": name, "s": s, "seed": seed, "chi": chi, "m": m, "rate": s * m - chi}
            if name == "r2":
                row["rate_closed"] = float(gamma_rate(np.array(m)))
                row["rate_abs_err"] = abs(row["rate"] - row["rate_closed"])
            rows.append(row)
        scale = max(abs(chi) for chi, _ in limit.values())
        for n in cfg.sizes:
            deviation = max(abs(scaled_cgf_exact(g, g1, g2, int(n), s) - chi) for s, (chi, _) in limit.items())
            rows.append({"experiment": "ld_exact", "f": name, "N": int(n), "seed": seed, "cgf_dev": deviation,
                         "rel_cgf_dev": deviation / scale})
        ctx.log.info("large deviations of %s: chi on %d values of s, chi_N for N = %s", name, len(limit),
                     list(cfg.sizes))
    return rows


def mc_rows(cfg: DictConfig, seed: int, ctx: RunContext) -> list[dict]:
    """k-statistics of L_N from Ginibre eigenvalues and from Kostlan radii vs exact finite-N cumulants."""
    rows = []
    generator = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    samples = {}
    for n, replicas in zip(cfg.ginibre_sizes, cfg.ginibre_replicas):
        radii2 = []
        for start in range(0, replicas, int(cfg.batch)):
            eigenvalues = ginibre_eigenvalues(n, min(int(cfg.batch), replicas - start), generator)
            radii2.append((eigenvalues.abs() ** 2).numpy())
        samples["ginibre", n] = np.concatenate(radii2)
        ctx.log.info("ginibre N = %d: %d matrices", n, replicas)
    n = int(cfg.kostlan_size)
    samples["kostlan", n] = kostlan_squared_radii(n, int(cfg.kostlan_replicas), rng)
    for (sampler, n), radii2 in samples.items():
        for name in cfg.functions:
            statistic = g_function(name)(radii2).sum(axis=1)                    # L_N = sum_i g(|z_i|^2)
            reference = cumulants_of(name, n, 40)
            for p in (2, 3):
                estimate, error = kstat(statistic, p), jackknife_error(statistic, p)
                z = (estimate - reference[p - 1]) / error
                rows.append({"experiment": "mc", "sampler": sampler, "f": name, "N": n, "p": p, "seed": seed,
                             "replicas": len(statistic), "kstat": estimate, "se": error, "exact": reference[p - 1],
                             "z": z, "abs_z": abs(z), "z_clt": estimate / error if p == 3 else np.nan})
    return rows


def beta_rows(cfg: DictConfig, seed: int, ctx: RunContext) -> list[dict]:
    """kappa_2 of sum |z_i|^2 under exp(-beta E) by MALA; chains are independent, so the jackknife runs over chains."""
    generator = torch.Generator().manual_seed(seed)
    n = int(cfg.size)
    rows = []
    for beta in cfg.betas:
        records = mala_linear_statistic(n, float(beta), int(cfg.chains), int(cfg.burn_in), int(cfg.steps),
                                        int(cfg.thin), generator)
        statistic = records.T.reshape(-1)                   # chain-major, so jackknife blocks are groups of chains
        estimate, error = kstat(statistic, 2), jackknife_error(statistic, 2)
        exact = harmonic_gas_cumulants(n, float(beta))[1]
        rows.append({"experiment": "beta", "beta": float(beta), "N": n, "p": 2, "seed": seed, "kstat": estimate,
                     "se": error, "exact": exact, "abs_z": abs(estimate - exact) / error})
        ctx.log.info("MALA beta = %g: kappa_2 = %.4f +- %.4f (exact %.4f)", beta, estimate, error, exact)
    return rows


def beta_scaling_rows(cfg: DictConfig, seed: int) -> list[dict]:
    """N^(p-2) kappa_p(beta) of f = r^2 at the largest N vs (2/beta)^(p-1) times the beta = 2 limit."""
    n = int(max(cfg.exact.sizes))
    limit_beta2 = boundary_limits("r2", (2, 3, 4))
    rows = []
    for beta in cfg.beta.betas:
        kappas = harmonic_gas_cumulants(n, float(beta))
        for p in (2, 3, 4):
            scaled = n ** (p - 2) * kappas[p - 1]
            predicted = (2 / float(beta)) ** (p - 1) * limit_beta2[p]
            rows.append({"experiment": "beta_exact", "beta": float(beta), "N": n, "p": p, "seed": seed,
                         "scaled": scaled, "prediction": predicted, "scaling_dev": abs(scaled / predicted - 1)})
    return rows
