"""Numerical checks of the paper's three results on periodic 1-D signals.

Grid:
- ``lipschitz/<bank>/nonlinearity=..``: max and mean of |||Phi(f) - Phi(g)||| / ||f - g|| over pairs of signals
  (independent pairs and nearby pairs), for each Bessel bound B and pooling; admissible when
  max(B, B L^2 R^2) <= 1.
- ``translation/morlet/pooling=..``: |||Phi^n(T_t f) - Phi^n(f)||| per depth n and shift t, and the bound
  2 pi |t| K / (S_1 ... S_n) ||f||.
- ``deformation/morlet/signal_class=..``: |||Phi(F_tau f) - Phi(f)||| against ||tau||_inf per signal class.
Signals (and the random "learned" filters) are drawn per replicate and shared by every unit of a replicate.
"""

import math

import numpy as np
import torch
from omegaconf import DictConfig

from repro.core.context import RunContext
from repro.core.units import Unit, grid
from repro.papers.dcnn_theory.extractor import distance, features, layer_norms, lipschitz_constant
from repro.papers.dcnn_theory.filters import (
    BANKS,
    Responses,
    chi_constant,
    frequencies,
    gabor,
    learned,
    morlet,
    real_part,
    rescaled,
)
from repro.papers.dcnn_theory.signals import CLASSES, SignalClass, deformed, sample, shifted

METHODS = BANKS


def units(cfg: DictConfig) -> list[Unit]:
    return [*grid("lipschitz", cfg.lipschitz.banks, nonlinearity=cfg.lipschitz.nonlinearities),
            *grid("translation", ["morlet"], pooling=cfg.translation.poolings),
            *grid("deformation", ["morlet"], signal_class=CLASSES)]


def run_unit(cfg: DictConfig, ctx: RunContext, u: Unit) -> list[dict]:
    if u.experiment == "lipschitz":
        return lipschitz_rows(cfg, ctx, u.method, u.settings["nonlinearity"])
    if u.experiment == "translation":
        return translation_rows(cfg, ctx, u.settings["pooling"])
    return deformation_rows(cfg, ctx, u.settings["signal_class"])


def spacing(cfg: DictConfig) -> float:
    return 1.0 / cfg.grid.samples


def make_bank(cfg: DictConfig, ctx: RunContext, name: str, nonlinearity: str, bound: float) -> Responses:
    """The bank ``name`` rescaled to Bessel bound ``bound``; real parts for real-valued non-linearities."""
    b, samples = cfg.banks, cfg.grid.samples
    if name == "morlet":
        base = morlet(samples / 2, b.morlet.scales)
    elif name == "gabor":
        base = gabor(samples / 2, b.gabor.modulations)
    elif name == "learned":
        rng = np.random.default_rng(ctx.data_seed("learned_filters"))
        taps = torch.tensor(rng.standard_normal((b.learned.filters, b.learned.taps)), device=ctx.device)
        base = learned(taps, spacing(cfg))
    else:
        raise ValueError(f"unknown filter bank {name!r}; choose one of {BANKS}")
    if nonlinearity != "modulus":
        base = real_part(base)
    return rescaled(base, frequencies(samples, spacing(cfg), ctx.device), bound)


def draw(cfg: DictConfig, ctx: RunContext, kind: str, count: int, name: str) -> tuple[SignalClass, np.ndarray,
                                                                                       np.ndarray]:
    s = cfg.signals
    signals = SignalClass(kind, count, np.random.default_rng(ctx.data_seed(name, kind)), s.bandlimit, s.knots,
                          s.max_slope)
    values, scale = sample(signals, cfg.grid.samples)
    return signals, values, scale


def batched_features(values: np.ndarray, bank: Responses, nonlinearity: str, pooling: str, factor: int,
                     depth: int, cfg: DictConfig, ctx: RunContext) -> list[torch.Tensor]:
    """Phi^n for a large batch, computed in chunks (the deepest layer holds (#filters)^depth paths)."""
    chunks = []
    for start in range(0, len(values), cfg.chunk):
        batch = torch.tensor(values[start:start + cfg.chunk], device=ctx.device)
        chunks.append(features(batch, bank, nonlinearity, pooling, factor, depth, spacing(cfg)))
    return [torch.cat(layer) for layer in zip(*chunks)]


def lipschitz_rows(cfg: DictConfig, ctx: RunContext, bank_name: str, nonlinearity: str) -> list[dict]:
    lp = cfg.lipschitz
    firsts, seconds = [], []
    for kind in CLASSES:
        _, f, _ = draw(cfg, ctx, kind, lp.pairs_per_class, "first")
        _, g, _ = draw(cfg, ctx, kind, lp.pairs_per_class, "second")
        # Independent pairs (f, g) and nearby pairs (f, f + eps g): the ratio is probed at both distances.
        firsts += [f, f]
        seconds += [g, f + lp.near * g]
    f, g = np.concatenate(firsts), np.concatenate(seconds)
    near = np.repeat(np.tile([False, True], len(CLASSES)), lp.pairs_per_class)
    h = spacing(cfg)
    signal_distance = np.sqrt(h * ((f - g) ** 2).sum(1))
    rows = []
    for bound in lp.bounds:
        bank = make_bank(cfg, ctx, bank_name, nonlinearity, bound)
        for pooling in lp.poolings:
            factor = 1 if pooling == "none" else lp.factor
            phi_f = batched_features(f, bank, nonlinearity, pooling, factor, lp.depth, cfg, ctx)
            phi_g = batched_features(g, bank, nonlinearity, pooling, factor, lp.depth, cfg, ctx)
            ratio = distance(phi_f, phi_g, h).cpu().numpy() / signal_distance
            # Admissibility: max(B, B L^2 R^2) <= 1 (R = 1 for sub-sampling and averaging).
            admissible = max(bound, bound * lipschitz_constant(nonlinearity) ** 2) <= 1
            rows.append({"bound": float(bound), "pooling": pooling, "admissible": int(admissible),
                         "max_ratio": float(ratio.max()), "mean_ratio": float(ratio.mean()),
                         "max_ratio_near": float(ratio[near].max()), "max_ratio_far": float(ratio[~near].max())})
    return rows


def translation_rows(cfg: DictConfig, ctx: RunContext, pooling: str) -> list[dict]:
    tr = cfg.translation
    factor = 1 if pooling == "none" else tr.factor
    bank = make_bank(cfg, ctx, "morlet", "modulus", tr.bound)
    h = spacing(cfg)
    k_chi = chi_constant(bank, frequencies(cfg.grid.samples, h, ctx.device))
    _, f, _ = draw(cfg, ctx, "bandlimited", tr.signals, "translation")
    phi_f = batched_features(f, bank, "modulus", pooling, factor, tr.depth, cfg, ctx)
    energies = layer_norms(phi_f, h).cpu().numpy()  # |||Phi^n(f)|||, (signals, depth + 1)
    rows = []
    for shift in tr.shifts:
        phi_t = batched_features(shifted(f, shift), bank, "modulus", pooling, factor, tr.depth, cfg, ctx)
        errors = layer_norms([a - b for a, b in zip(phi_t, phi_f)], h).cpu().numpy()  # ||f|| = 1 per signal
        for depth in range(errors.shape[1]):
            bound = 2 * math.pi * shift * h * k_chi / factor ** depth
            error = float(errors[:, depth].mean())
            # The theorem bounds every signal: the worst signal's ratio decides the inequality; the error relative
            # to the layer's own feature norm separates invariance from the energy that deeper layers lose.
            rows.append({"depth": depth, "shift": int(shift), "error": error, "bound": bound,
                         "ratio_to_bound": error / bound, "worst_ratio_to_bound": float(errors[:, depth].max()) / bound,
                         "relative_error": float((errors[:, depth] / energies[:, depth]).mean()),
                         "log2_error": math.log2(error)})
    return rows


def deformation_rows(cfg: DictConfig, ctx: RunContext, kind: str) -> list[dict]:
    de = cfg.deformation
    bank = make_bank(cfg, ctx, "morlet", "modulus", de.bound)
    h = spacing(cfg)
    signals, f, scale = draw(cfg, ctx, kind, de.signals, "deformation")
    phi_f = batched_features(f, bank, "modulus", de.pooling, de.factor, de.depth, cfg, ctx)
    rows = []
    for amplitude in np.geomspace(de.amplitude_min, de.amplitude_max, de.amplitudes):
        moved = deformed(signals, scale, cfg.grid.samples, float(amplitude), de.period)
        phi_moved = batched_features(moved, bank, "modulus", de.pooling, de.factor, de.depth, cfg, ctx)
        feature_error = distance(phi_moved, phi_f, h).cpu().numpy()
        signal_error = np.sqrt(h * ((moved - f) ** 2).sum(1))
        rows.append({"amplitude": float(amplitude), "tau_inf": float(amplitude) / (2 * math.pi * de.period),
                     "feature_error": float(feature_error.mean()), "signal_error": float(signal_error.mean()),
                     "max_feature_to_signal": float((feature_error / signal_error).max())})
    return rows
