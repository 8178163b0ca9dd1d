"""The masked-token experiment (card: shared/papers/aug_rkhs.md), four parts:

- kappa: augmentation complexity kappa^2 = sup_x k(x, x), closed form vs a Monte Carlo estimate over masks;
- spectrum: brute-force eigendecomposition of the integral operator on all V^L inputs of a small instance vs the
  closed-form eigenvalues (1 - alpha)^s and multiplicities C(L, s)(V - 1)^s;
- krr: RKHS regression (kernel ridge with k_alpha) on n labels, test MSE vs mask rate alpha (the U shape);
- encoder: Theorem 2's encoder (top-d eigenspace of k_alpha estimated on m unlabeled points, Nystrom-extended) with
  a ridge probe on n labels; excess MSE above the approximation floor vs kappa^2 / m.
"""

import numpy as np
from omegaconf import DictConfig
from threadpoolctl import threadpool_limits

from repro.core.context import RunContext
from repro.papers.aug_rkhs.kernel import (
    AnovaTarget,
    kappa_squared,
    kappa_squared_monte_carlo,
    kernel_from_matches,
    kernel_ridge_fit,
    matches,
    multiplicity,
    nystrom_features,
    operator_spectrum,
    ridge_path,
)


def run(cfg: DictConfig, ctx: RunContext) -> list[dict]:
    # Multi-threaded OpenBLAS eigh runs ~30x slower on a loaded 2-core host; one thread is fastest here.
    with threadpool_limits(limits=1, user_api="blas"):
        return experiment(cfg, ctx)


def experiment(cfg: DictConfig, ctx: RunContext) -> list[dict]:
    rows = ctx.unit("kappa", lambda: kappa_rows(cfg, np.random.default_rng(ctx.child_seed("kappa"))))
    rows += ctx.unit("spectrum", lambda: spectrum_rows(cfg.spectrum))
    for seed in ctx.replicate_seeds():
        rows += replicate_rows(cfg, ctx, seed)
        ctx.log.info("replicate %d done", seed)
    return rows


def replicate_rows(cfg: DictConfig, ctx: RunContext, seed: int) -> list[dict]:
    """One replicate: a fresh target f* and test set; KRR for every n, the top-d encoder for every m."""
    toy = cfg.toy
    rng = np.random.default_rng(seed)
    counts = {int(k): int(v) for k, v in toy.target_counts.items()}
    energy = {int(k): float(v) for k, v in toy.target_energy.items()}
    target = AnovaTarget(counts, energy, toy.vocab, toy.length, rng)
    floor = sum(e for s, e in energy.items() if s > cfg.encoder.max_order) / target.variance
    x_test = rng.integers(0, toy.vocab, (cfg.test_size, toy.length))
    rows = []
    for n in cfg.krr.ns:
        rows += ctx.unit(f"krr-n{n}-{seed}", lambda n=n: krr_rows(cfg, target, x_test, n, seed))
    for m in cfg.encoder.ms:
        rows += ctx.unit(f"encoder-m{m}-{seed}", lambda m=m: encoder_rows(cfg, target, x_test, m, floor, seed))
    return rows


def kappa_rows(cfg: DictConfig, rng: np.random.Generator) -> list[dict]:
    toy = cfg.toy
    return [{"part": "kappa", "alpha": a, "kappa2": kappa_squared(a, toy.vocab, toy.length),
             "kappa2_mc": kappa_squared_monte_carlo(a, toy.vocab, toy.length, cfg.kappa_samples, rng),
             "per_position": 1 + (toy.vocab - 1) * (1 - a)} for a in cfg.krr.alphas]


def spectrum_rows(spec: DictConfig) -> list[dict]:
    """Sorted spectrum split into blocks of the predicted multiplicities, order s = 0..L (eigenvalues descend in s)."""
    rows = []
    for alpha in spec.alphas:
        evals = operator_spectrum(alpha, spec.vocab, spec.length)
        start = 0
        for order in range(spec.length + 1):
            predicted = (1 - alpha) ** order
            size = multiplicity(order, spec.vocab, spec.length)
            block = evals[start:start + size]
            start += size
            measured = int(np.sum(np.abs(evals - predicted) <= 1e-8 * predicted))
            rows.append({"part": "spectrum", "alpha": alpha, "order": order, "eig_predicted": predicted,
                         "eig_measured": float(block.mean()), "eig_max_rel_error": float(
                             np.max(np.abs(block - predicted)) / predicted),
                         "mult_predicted": size,
                         "mult_measured": measured, "mult_error": abs(measured - size),
                         "trace_minus_kappa2": float(evals.sum() - kappa_squared(alpha, spec.vocab, spec.length))})
    return rows


def ridge_predict(k_train: np.ndarray, y: np.ndarray, k_test: np.ndarray, grid: list[float],
                  val_fraction: float) -> tuple[np.ndarray, float]:
    """Kernel ridge with lam = lam' * mean diag(K), lam' chosen on a held-out split, refit on all labels."""
    n_val = int(round(val_fraction * len(y)))
    fit, val = slice(n_val, None), slice(0, n_val)
    scale = float(np.mean(np.diag(k_train)))
    lams = np.asarray(grid) * scale
    val_pred = ridge_path(k_train[fit, fit], y[fit], k_train[val, fit], lams)
    best = int(np.argmin(((val_pred - y[val]) ** 2).mean(1)))
    coef = kernel_ridge_fit(k_train, y, lams[best] * len(y) / (len(y) - n_val))
    return k_test @ coef, float(grid[best])


def labelled(cfg: DictConfig, target: AnovaTarget, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.integers(0, cfg.toy.vocab, (n, cfg.toy.length))
    return x, target(x) + cfg.toy.noise * rng.standard_normal(n)


def krr_rows(cfg: DictConfig, target: AnovaTarget, x_test: np.ndarray, n: int, seed: int) -> list[dict]:
    toy = cfg.toy
    x, y = labelled(cfg, target, n, np.random.default_rng([seed, n]))
    m_train, m_test, f_test = matches(x, x), matches(x_test, x), target(x_test)
    rows = []
    for alpha in cfg.krr.alphas:
        pred, lam = ridge_predict(kernel_from_matches(m_train, alpha, toy.vocab, toy.length), y,
                                  kernel_from_matches(m_test, alpha, toy.vocab, toy.length),
                                  list(cfg.ridge_grid), cfg.val_fraction)
        rows.append({"part": "krr", "method": "krr", "n_labels": n, "alpha": alpha, "seed": seed, "lam": lam,
                     "kappa2": kappa_squared(alpha, toy.vocab, toy.length),
                     "mse": float(np.mean((pred - f_test) ** 2)) / target.variance})
    best = min(rows, key=lambda r: r["mse"])
    interior = cfg.krr.alphas[0] < best["alpha"] < cfg.krr.alphas[-1]
    rows.append({"part": "krr_optimum", "method": "krr", "n_labels": n, "seed": seed, "alpha_opt": best["alpha"],
                 "mse_opt": best["mse"], "interior": float(interior)})
    return rows


def encoder_rows(cfg: DictConfig, target: AnovaTarget, x_test: np.ndarray, m: int, floor: float,
                 seed: int) -> list[dict]:
    toy, enc = cfg.toy, cfg.encoder
    rng = np.random.default_rng([seed, m, 1])
    x_unlabeled = rng.integers(0, toy.vocab, (m, toy.length))
    x, y = labelled(cfg, target, enc.n, rng)
    m_unl, m_lab, m_test = matches(x_unlabeled, x_unlabeled), matches(x, x_unlabeled), matches(x_test, x_unlabeled)
    f_test = target(x_test)
    rows = []
    for alpha in enc.alphas:
        k = lambda mm, a=alpha: kernel_from_matches(mm, a, toy.vocab, toy.length)  # noqa: E731
        weights, _ = nystrom_features(k(m_unl), enc.d)
        phi, phi_test = k(m_lab) @ weights, k(m_test) @ weights   # (n, d), (n_test, d)
        pred, lam = ridge_predict(phi @ phi.T, y, phi_test @ phi.T, list(cfg.ridge_grid), cfg.val_fraction)
        mse = float(np.mean((pred - f_test) ** 2)) / target.variance
        kappa2 = kappa_squared(alpha, toy.vocab, toy.length)
        rows.append({"part": "encoder", "method": "nystrom_top_d", "m": m, "n_labels": enc.n, "d": enc.d,
                     "alpha": alpha, "seed": seed, "lam": lam, "kappa2": kappa2, "kappa2_over_m": kappa2 / m,
                     "mse": mse, "floor": floor, "excess_mse": mse - floor})
    return rows
