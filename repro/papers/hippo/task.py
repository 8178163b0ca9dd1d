"""HiPPO experiment: kernels vs closed forms, online reconstruction (Part A), S4 on the delay task (Part B),
and at scale=paper S4 on Long Range Arena (`lra`)."""

import time
from collections.abc import Callable

import numpy as np
import scipy.linalg
import torch
from omegaconf import DictConfig
from threadpoolctl import threadpool_limits

from repro.core.context import RunContext
from repro.core.errors import ConfigError
from repro.papers.hippo import hippo, lra
from repro.papers.hippo.s4 import INITS, DelayModel


def run(cfg: DictConfig, ctx: RunContext) -> list[dict]:
    for variant in cfg.delay.variants:
        if variant.init not in INITS:
            raise ConfigError(f"paper.delay.variants: init {variant.init!r} unknown; choose from {list(INITS)}")
    for name in cfg.lra.tasks:
        if name not in lra.TASKS or name not in cfg.lra.settings:
            raise ConfigError(f"paper.lra.tasks: {name!r} unknown; choose from {list(lra.TASKS)}")
    start = time.perf_counter()
    with threadpool_limits(1):     # small dense matrices: BLAS threads only contend on a shared machine
        rows = kernel_rows(cfg.kernels) + kernel_convergence_rows(cfg.kernels) + nplr_rows(cfg.kernels.n_values)
        rows += reconstruction_rows(cfg.reconstruction, ctx)
    ctx.log.info("kernels, NPLR and reconstruction: %d rows in %.1f s", len(rows), time.perf_counter() - start)
    for seed in ctx.replicate_seeds():
        for variant in cfg.delay.variants:
            rows += ctx.unit(f"delay-{variant.name}-{seed}", lambda v=variant, s=seed: delay_run(cfg.delay, v, s, ctx))
    for seed in ctx.replicate_seeds():
        for name in cfg.lra.tasks:
            rows += ctx.unit(f"lra-{name}-{seed}",
                             lambda t=name, s=seed: lra.lra_run(t, cfg.lra.settings[t], cfg.lra, s, ctx))
    return rows


def kernel_rows(k: DictConfig) -> list[dict]:
    """max_n |exp(tA) B - K_n(t)| (n < n_compare) per measure, N and t: the paper's closed-form kernels."""
    rows = []
    for measure in hippo.MEASURES:
        for n in k.n_values:
            a, b = hippo.transition(measure, n)
            for t in k.times:
                numeric = scipy.linalg.expm(t * a) @ b
                exact = hippo.closed_form_kernel(measure, n, np.array([t]))[:, 0]
                rows.append({"part": "kernel", "measure": measure, "N": n, "t": t,
                             "kernel_err": float(np.abs(numeric - exact)[: k.n_compare].max())})
    return rows


def kernel_convergence_rows(k: DictConfig, grid: int = 400) -> list[dict]:
    """LegT / FouT: RMS of exp(tA)B - K_n(t) over t in [0, 2] and n < n_compare, per N (-> 0 as N grows).

    exp(tA)B on the midpoints t_i = (i + 1/2) h, h = 2 / grid (never exactly on the jump at t = 1, where
    the closed form is undefined), by repeated multiplication with expm(h A).
    """
    rows = []
    h = 2 / grid
    t = h * (np.arange(grid) + 0.5)
    for measure in ("legt", "fout"):
        for n in k.n_values:
            a, b = hippo.transition(measure, n)
            step, kernel, numeric = scipy.linalg.expm(h * a), scipy.linalg.expm(h / 2 * a) @ b, []
            for _ in t:
                numeric.append(kernel[: k.n_compare])
                kernel = step @ kernel
            error = np.array(numeric).T - hippo.closed_form_kernel(measure, n, t)[: k.n_compare]
            rows.append({"part": "kernel_convergence", "measure": measure, "N": n,
                         "kernel_rms": float(np.sqrt(np.mean(error**2)))})
    return rows


def nplr_rows(n_values: list[int]) -> list[dict]:
    """Spread of Re eig(A + P^T P) around its mean, and the NPLR reconstruction error of A."""
    rows = []
    for measure in hippo.MEASURES:
        for n in n_values:
            a, _ = hippo.transition(measure, n)
            p = hippo.rank_correction(measure, n)
            eigenvalues = np.linalg.eigvals(a + p.T @ p)
            lam, pt, _, v = hippo.nplr(measure, n)
            rebuilt = v @ (np.diag(lam) - pt.T @ pt.conj()) @ v.conj().T
            rows.append({"part": "nplr", "measure": measure, "N": n,
                         "eig_real_mean": float(eigenvalues.real.mean()),
                         "eig_real_spread": float(np.ptp(eigenvalues.real)),
                         "nplr_err": float(np.abs(rebuilt - a).max())})
    return rows


def signal_terms(terms: int, max_freq: float, rng: np.random.Generator) -> np.ndarray:
    """(3, J) rows c_j ~ N(0, 1), w_j ~ U(0, max_freq), p_j ~ U(0, 2 pi) of the card's test signal."""
    return np.stack([rng.standard_normal(terms), rng.uniform(0, max_freq, terms), rng.uniform(0, 2 * np.pi, terms)])


def signal(coefficients: np.ndarray, t: np.ndarray) -> np.ndarray:
    """u(t) = sum_j c_j sin(2 pi w_j t + p_j) / sqrt(J), at any t (continuous, for the exact projection)."""
    c, w, p = coefficients
    return (c[:, None] * np.sin(2 * np.pi * w[:, None] * np.asarray(t) + p[:, None])).sum(0) / np.sqrt(len(c))


def reconstruction_rows(r: DictConfig, ctx: RunContext) -> list[dict]:
    """Part A: run each bilinear-discretised HiPPO LTI over u, read the history back from the final state.

    u is sampled at t_k = k / (L - 1), k < L; in the SSM's time one sample is Delta, so j samples back is
    tau_j = j Delta, and the history is h(tau) = u(1 - tau / (Delta (L - 1))) (zero before the signal
    started). LegT/FouT: MSE over the last window tau <= 1 (theta = 1/Delta samples). LegS: MSE over the
    whole history weighted by e^{-tau}. Both are divided by the same-weighted signal power (nMSE).
    recon_nmse uses the online state; proj_nmse the exact projection of the continuous history onto the
    same N basis functions (`hippo.projection`), the best any N-term approximation in that basis can do;
    coef_rel_err = |x - c| / |c| compares the state x with those exact coefficients c.
    """
    rows = []
    t = np.linspace(0, 1, r.length)
    for trial in range(r.trials):
        coefficients = signal_terms(r.terms, r.max_freq, np.random.default_rng(ctx.child_seed("signal", trial)))
        u = signal(coefficients, t)
        for measure in hippo.MEASURES:
            a, b = hippo.transition(measure, r.n)
            for dt in r.dts:
                state = hippo.run_recurrence(*hippo.bilinear(a, b, dt), u)
                tau_max = dt * (r.length - 1)
                exact = hippo.projection(measure, r.n, continuous_history(coefficients, tau_max), tau_max)
                tau = dt * np.arange(r.length)              # tau_j for u[L - 1 - j]
                rows.append({"part": "reconstruction", "measure": measure, "dt": dt, "trial": trial,
                             "window_samples": round(1 / dt) if measure != "legs" else r.length,
                             "recon_nmse": history_nmse(measure, state, tau, u[::-1]),
                             "proj_nmse": history_nmse(measure, exact, tau, u[::-1]),
                             "coef_rel_err": float(np.linalg.norm(state - exact) / np.linalg.norm(exact))})
    return rows


def continuous_history(coefficients: np.ndarray, tau_max: float) -> Callable[[np.ndarray], np.ndarray]:
    """h(tau) = u(1 - tau / tau_max): the signal seen tau SSM-time units before its end (t = 1)."""
    return lambda tau: signal(coefficients, 1 - tau / tau_max)


def history_nmse(measure: str, coefficients: np.ndarray, tau: np.ndarray, history: np.ndarray) -> float:
    """Weighted nMSE of the history read back from `coefficients`: weight e^{-tau} (LegS) or the window."""
    weight = np.exp(-tau) if measure == "legs" else (tau <= 1.0).astype(float)
    error = hippo.reconstruct(measure, coefficients, tau) - history
    return float((weight * error**2).sum() / (weight * history**2).sum())


def delay_batch(batch: int, length: int, delay: int, cutoff: float, generator: torch.Generator):
    """White noise low-passed to `cutoff` x Nyquist, unit variance; target y_t = u_{t - delay} (t >= delay)."""
    noise = torch.randn(batch, length, generator=generator, dtype=torch.float64)
    spectrum = torch.fft.rfft(noise)
    spectrum[:, int(cutoff * spectrum.shape[-1]) + 1:] = 0
    u = torch.fft.irfft(spectrum, n=length)
    u = (u / u.std(dim=1, keepdim=True)).float()
    return u, u[:, : length - delay]


def delay_run(d: DictConfig, variant: DictConfig, seed: int, ctx: RunContext) -> list[dict]:
    """Part B: train one S4 variant on the delay task; test MSE over t >= D, normalised by the target variance."""
    model = DelayModel(d.channels, d.n, d.depth, variant.init, tuple(variant.dt_range), seed, d.train_ssm)
    ssm = {id(p) for p in model.ssm_parameters()}
    optimizer = torch.optim.Adam([
        {"params": [p for p in model.parameters() if id(p) not in ssm], "lr": d.lr},
        {"params": model.ssm_parameters(), "lr": d.ssm_lr},
    ])
    generator = torch.Generator().manual_seed(seed)
    test_u, test_y = delay_batch(d.test_size, d.length, d.delay, d.cutoff, torch.Generator().manual_seed(seed + 1))
    start = time.perf_counter()
    for step in ctx.progress(range(d.steps), desc=f"delay {variant.name}"):
        u, y = delay_batch(d.batch, d.length, d.delay, d.cutoff, generator)
        loss = torch.mean((model(u)[:, d.delay:] - y) ** 2)
        if not torch.isfinite(loss):
            ctx.log.warning("delay %s seed %d: loss %s at step %d; stopping this variant", variant.name, seed,
                            loss.item(), step)
            break
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 100 == 0:
            ctx.log_metrics(step, unit=f"delay-{variant.name}-{seed}", loss=loss.item())
    with torch.no_grad():
        test_mse = torch.mean((model(test_u)[:, d.delay:] - test_y) ** 2).item()
    nmse = test_mse / test_y.var().item()
    ctx.log.info("delay %s seed %d: test nMSE %.4f (%.1f s)", variant.name, seed, nmse, time.perf_counter() - start)
    return [{"part": "delay", "variant": variant.name, "init": variant.init,
             "dt_range": f"[{variant.dt_range[0]:g}, {variant.dt_range[1]:g}]", "seed": seed,
             "delay_nmse": nmse if np.isfinite(nmse) else float("nan"), "train_time_s": time.perf_counter() - start}]
