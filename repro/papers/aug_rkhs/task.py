"""The masked-token experiment, four sub-experiments (units):

- kappa: augmentation complexity kappa^2 = sup_x k(x, x), closed form vs a Monte Carlo estimate over masks;
- spectrum: brute-force eigendecomposition of the integral operator on all V^L inputs of a small instance vs the
  closed-form eigenvalues (1 - alpha)^s and multiplicities C(L, s)(V - 1)^s (deterministic; drawn in the figure,
  asserted in tests/test_aug_rkhs.py);
- krr/n_labels=n: RKHS regression (kernel ridge with k_alpha) on n labels, test MSE vs mask rate alpha (the U
  shape), and one ``summary=optimum`` row: the mask rate chosen on the validation split, over the whole grid
  and over the interior of the grid, and the test-MSE gains of the interior choice over both ends of the grid;
- encoder/m=m: Theorem 2's encoder (top-d eigenspace of k_alpha estimated on m unlabeled points, Nystrom-extended)
  with a ridge probe on n labels; excess MSE above the approximation floor vs kappa^2 / m.

Every unit of a replicate shares that replicate's target f* and test set (``ctx.data_seed``).
"""

import numpy as np
from omegaconf import DictConfig

from repro.core.context import RunContext
from repro.core.units import Unit, grid, unit
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

METHODS = ("krr", "nystrom_top_d")


def units(cfg: DictConfig) -> list[Unit]:
    return [unit("kappa"), unit("spectrum", stochastic=False),
            *grid("krr", ["krr"], n_labels=list(cfg.krr.ns)),
            *grid("encoder", ["nystrom_top_d"], m=list(cfg.encoder.ms))]


def run_unit(cfg: DictConfig, ctx: RunContext, u: Unit) -> list[dict]:
    if u.experiment == "kappa":
        return kappa_rows(cfg, np.random.default_rng(ctx.child_seed("masks")))
    if u.experiment == "spectrum":
        return spectrum_rows(cfg.spectrum)
    target, x_test = ctx.shared("target", lambda: draw_target(cfg, ctx))
    if u.experiment == "krr":
        n = int(u.settings["n_labels"])
        return krr_rows(cfg, target, x_test, n, np.random.default_rng(ctx.data_seed("krr_labels", n)))
    m = int(u.settings["m"])
    return encoder_rows(cfg, target, x_test, m, np.random.default_rng(ctx.data_seed("encoder_data", m)))


def draw_target(cfg: DictConfig, ctx: RunContext) -> tuple["AnovaTarget", np.ndarray]:
    """The replicate's target f* and test inputs."""
    toy = cfg.toy
    rng = np.random.default_rng(ctx.data_seed("target"))
    counts = {int(k): int(v) for k, v in toy.target_counts.items()}
    energy = {int(k): float(v) for k, v in toy.target_energy.items()}
    target = AnovaTarget(counts, energy, toy.vocab, toy.length, rng)
    return target, rng.integers(0, toy.vocab, (cfg.test_size, toy.length))


def kappa_rows(cfg: DictConfig, rng: np.random.Generator) -> list[dict]:
    toy = cfg.toy
    return [{"alpha": a, "kappa2": kappa_squared(a, toy.vocab, toy.length),
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
            rows.append({"alpha": alpha, "order": order, "eig_predicted": predicted,
                         "eig_measured": float(block.mean()), "eig_max_rel_error": float(
                             np.max(np.abs(block - predicted)) / predicted),
                         "mult_predicted": size,
                         "mult_measured": measured, "mult_error": abs(measured - size),
                         "trace_minus_kappa2": float(evals.sum() - kappa_squared(alpha, spec.vocab, spec.length))})
    return rows


def ridge_predict(k_train: np.ndarray, y: np.ndarray, k_test: np.ndarray, grid: list[float],
                  val_fraction: float) -> tuple[np.ndarray, float, float]:
    """Kernel ridge with lam = lam' * mean diag(K), lam' chosen on a held-out split, refit on all labels.

    Returns the test predictions, the chosen lam' and the held-out MSE at that lam' (for choosing alpha)."""
    n_val = int(round(val_fraction * len(y)))
    fit, val = slice(n_val, None), slice(0, n_val)
    scale = float(np.mean(np.diag(k_train)))
    lams = np.asarray(grid) * scale
    val_pred = ridge_path(k_train[fit, fit], y[fit], k_train[val, fit], lams)
    val_mse = ((val_pred - y[val]) ** 2).mean(1)
    best = int(np.argmin(val_mse))
    coef = kernel_ridge_fit(k_train, y, lams[best] * len(y) / (len(y) - n_val))
    return k_test @ coef, float(grid[best]), float(val_mse[best])


def labelled(cfg: DictConfig, target: AnovaTarget, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.integers(0, cfg.toy.vocab, (n, cfg.toy.length))
    return x, target(x) + cfg.toy.noise * rng.standard_normal(n)


def krr_rows(cfg: DictConfig, target: AnovaTarget, x_test: np.ndarray, n: int, rng: np.random.Generator) -> list[dict]:
    """Test MSE per mask rate, then the ``summary=optimum`` row: alpha chosen on the validation split (never on
    the test set), over the grid (alpha_opt, interior) and over its interior (alpha_interior); the gains are
    test MSE at an end of the grid minus test MSE at alpha_interior (positive: the interior choice is better)."""
    toy = cfg.toy
    x, y = labelled(cfg, target, n, rng)
    m_train, m_test, f_test = matches(x, x), matches(x_test, x), target(x_test)
    rows = []
    for alpha in cfg.krr.alphas:
        pred, lam, val_mse = ridge_predict(kernel_from_matches(m_train, alpha, toy.vocab, toy.length), y,
                                           kernel_from_matches(m_test, alpha, toy.vocab, toy.length),
                                           list(cfg.ridge_grid), cfg.val_fraction)
        rows.append({"alpha": alpha, "lam": lam, "kappa2": kappa_squared(alpha, toy.vocab, toy.length),
                     "val_mse": val_mse / target.variance,
                     "mse": float(np.mean((pred - f_test) ** 2)) / target.variance})
    chosen = min(rows, key=lambda r: r["val_mse"])
    interior = min(rows[1:-1], key=lambda r: r["val_mse"])
    rows.append({"summary": "optimum", "alpha_opt": chosen["alpha"], "mse_opt": chosen["mse"],
                 "interior": float(rows[0]["alpha"] < chosen["alpha"] < rows[-1]["alpha"]),
                 "alpha_interior": interior["alpha"], "mse_interior": interior["mse"],
                 "gain_over_weak_end": rows[0]["mse"] - interior["mse"],
                 "gain_over_strong_end": rows[-1]["mse"] - interior["mse"]})
    return rows


def encoder_rows(cfg: DictConfig, target: AnovaTarget, x_test: np.ndarray, m: int,
                 rng: np.random.Generator) -> list[dict]:
    toy, enc = cfg.toy, cfg.encoder
    energy = {int(k): float(v) for k, v in toy.target_energy.items()}
    floor = sum(e for s, e in energy.items() if s > enc.max_order) / target.variance
    x_unlabeled = rng.integers(0, toy.vocab, (m, toy.length))
    x, y = labelled(cfg, target, enc.n, rng)
    m_unl, m_lab, m_test = matches(x_unlabeled, x_unlabeled), matches(x, x_unlabeled), matches(x_test, x_unlabeled)
    f_test = target(x_test)
    rows = []
    for alpha in enc.alphas:
        k = lambda mm, a=alpha: kernel_from_matches(mm, a, toy.vocab, toy.length)  # noqa: E731
        weights, _ = nystrom_features(k(m_unl), enc.d)
        phi, phi_test = k(m_lab) @ weights, k(m_test) @ weights   # (n, d), (n_test, d)
        pred, lam, _ = ridge_predict(phi @ phi.T, y, phi_test @ phi.T, list(cfg.ridge_grid), cfg.val_fraction)
        mse = float(np.mean((pred - f_test) ** 2)) / target.variance
        kappa2 = kappa_squared(alpha, toy.vocab, toy.length)
        rows.append({"n_labels": enc.n, "d": enc.d, "alpha": alpha, "lam": lam, "kappa2": kappa2,
                     "kappa2_over_m": kappa2 / m, "mse": mse, "floor": floor, "excess_mse": mse - floor})
    return rows
