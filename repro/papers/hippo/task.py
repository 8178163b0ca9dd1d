"""HiPPO experiment: kernels vs closed forms, online reconstruction (Part A), S4 on the delay task (Part B),
and at scale=paper S4 on Long Range Arena (`lra`).

Grid: ``kernel``, ``kernel_convergence`` and ``nplr`` (deterministic linear algebra, run once);
``reconstruction/<measure>`` (one random test signal per replicate, shared by the measures);
``delay/<variant>`` (one S4 trained per replicate; the variants of a replicate see the same validation and
test sequences); ``lra/<task>`` at scale=paper.
"""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.linalg
import torch
from omegaconf import DictConfig

from repro.core.context import RunContext
from repro.core.errors import ConfigError
from repro.core.train import fit
from repro.core.units import Unit, grid, unit
from repro.papers.hippo import hippo, lra
from repro.papers.hippo.s4 import INITS, DelayModel


def units(cfg: DictConfig) -> list[Unit]:
    for variant in cfg.delay.variants:
        if variant.init not in INITS:
            raise ConfigError(f"paper.delay.variants: init {variant.init!r} unknown; choose from {list(INITS)}")
    for name in cfg.lra.tasks:
        if name not in lra.TASKS or name not in cfg.lra.settings:
            raise ConfigError(f"paper.lra.tasks: {name!r} unknown; choose from {list(lra.TASKS)}")
    if cfg.delay.steps % cfg.delay.eval_every:
        raise ConfigError(f"paper.delay.steps={cfg.delay.steps} must be a multiple of "
                          f"paper.delay.eval_every={cfg.delay.eval_every}")
    return [unit("kernel", stochastic=False), unit("kernel_convergence", stochastic=False),
            unit("nplr", stochastic=False), *grid("reconstruction", hippo.MEASURES),
            *grid("delay", [v.name for v in cfg.delay.variants]), *grid("lra", list(cfg.lra.tasks))]


def prepare_data(cfg: DictConfig, data_dir: Path, chosen: list[Unit]) -> None:
    """Fetch the LRA files of the chosen LRA units before the delay and kernel units spend their time."""
    for task in sorted({u.method for u in chosen if u.experiment == "lra"}):
        lra.task_source(task, data_dir)


def run_unit(cfg: DictConfig, ctx: RunContext, u: Unit) -> list[dict]:
    if u.experiment == "kernel":
        return kernel_rows(cfg.kernels)
    if u.experiment == "kernel_convergence":
        return kernel_convergence_rows(cfg.kernels)
    if u.experiment == "nplr":
        return nplr_rows(cfg.kernels.n_values)
    if u.experiment == "reconstruction":
        return reconstruction_rows(cfg.reconstruction, u.method, ctx.data_seed("signal"))
    if u.experiment == "delay":
        variant = next(v for v in cfg.delay.variants if v.name == u.method)
        return delay_run(cfg.delay, variant, ctx)
    return lra.lra_run(u.method, cfg.lra.settings[u.method], cfg.lra, ctx)


def kernel_rows(k: DictConfig) -> list[dict]:
    """max_n |exp(tA) B - K_n(t)| (n < n_compare) per measure, N and t: the paper's closed-form kernels."""
    rows = []
    for measure in hippo.MEASURES:
        for n in k.n_values:
            a, b = hippo.transition(measure, n)
            for t in k.times:
                numeric = scipy.linalg.expm(t * a) @ b
                exact = hippo.closed_form_kernel(measure, n, np.array([t]))[:, 0]
                rows.append({"measure": measure, "N": n, "t": t,
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
            rows.append({"measure": measure, "N": n,
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
            lam, pt, _, v = hippo.conjugate_pairs(*hippo.nplr(measure, n))
            rebuilt = v @ (np.diag(lam) - pt.T @ pt.conj()) @ v.conj().T
            rows.append({"measure": measure, "N": n,
                         "eig_real_mean": float(eigenvalues.real.mean()),
                         "eig_real_spread": float(np.ptp(eigenvalues.real)),
                         "nplr_err": float(np.abs(rebuilt - a).max())})
    return rows


def signal_terms(terms: int, max_freq: float, rng: np.random.Generator) -> np.ndarray:
    """(3, J) rows c_j ~ N(0, 1), w_j ~ U(0, max_freq), p_j ~ U(0, 2 pi) of the test signal."""
    return np.stack([rng.standard_normal(terms), rng.uniform(0, max_freq, terms), rng.uniform(0, 2 * np.pi, terms)])


def signal(coefficients: np.ndarray, t: np.ndarray) -> np.ndarray:
    """u(t) = sum_j c_j sin(2 pi w_j t + p_j) / sqrt(J), at any t (continuous, for the exact projection)."""
    c, w, p = coefficients
    return (c[:, None] * np.sin(2 * np.pi * w[:, None] * np.asarray(t) + p[:, None])).sum(0) / np.sqrt(len(c))


def reconstruction_rows(r: DictConfig, measure: str, signal_seed: int) -> list[dict]:
    """Part A: run one bilinear-discretised HiPPO LTI over u, read the history back from the final state.

    u is sampled at t_k = k / (L - 1), k < L; in the SSM's time one sample is Delta, so j samples back is
    tau_j = j Delta, and the history is h(tau) = u(1 - tau / (Delta (L - 1))) (zero before the signal
    started). LegT/FouT: MSE over the last window tau <= 1 (theta = 1/Delta samples). LegS: MSE over the
    whole history weighted by e^{-tau}. Both are divided by the same-weighted signal power (nMSE).
    recon_nmse uses the online state; proj_nmse the exact projection of the continuous history onto the
    same N basis functions (`hippo.projection`), the best any N-term approximation in that basis can do;
    coef_rel_err = |x - c| / |c| compares the state x with those exact coefficients c. The signal is the
    replicate's (every measure of a replicate sees the same u).
    """
    rows = []
    t = np.linspace(0, 1, r.length)
    coefficients = signal_terms(r.terms, r.max_freq, np.random.default_rng(signal_seed))
    u = signal(coefficients, t)
    a, b = hippo.transition(measure, r.n)
    for dt in r.dts:
        state = hippo.run_recurrence(*hippo.bilinear(a, b, dt), u)
        tau_max = dt * (r.length - 1)
        exact = hippo.projection(measure, r.n, continuous_history(coefficients, tau_max), tau_max)
        tau = dt * np.arange(r.length)              # tau_j for u[L - 1 - j]
        rows.append({"measure": measure, "dt": dt,
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


def delay_run(d: DictConfig, variant: DictConfig, ctx: RunContext) -> list[dict]:
    """Part B: train one S4 variant on the delay task (``fit``: an "epoch" is ``eval_every`` Adam steps on
    fresh batches, then the validation nMSE); test MSE over t >= D of the best-validation state, normalised
    by the target variance."""
    model = DelayModel(d.channels, d.n, d.depth, variant.init, tuple(variant.dt_range),
                       ctx.child_seed("init")).to(ctx.device)
    ssm = {id(p) for p in model.ssm_parameters()}
    optimizer = torch.optim.Adam([
        {"params": [p for p in model.parameters() if id(p) not in ssm], "lr": d.lr},
        {"params": model.ssm_parameters(), "lr": d.ssm_lr},
    ])

    def held_out(name: str, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        u, y = delay_batch(size, d.length, d.delay, d.cutoff, torch.Generator().manual_seed(ctx.data_seed(name)))
        return u.to(ctx.device), y.to(ctx.device)

    val_u, val_y = held_out("delay_val", d.test_size)
    test_u, test_y = held_out("delay_test", d.test_size)

    def batches(epoch: int):
        generator = torch.Generator().manual_seed(ctx.child_seed("batches", epoch))
        for _ in range(d.eval_every):
            u, y = delay_batch(d.batch, d.length, d.delay, d.cutoff, generator)
            yield u.to(ctx.device), y.to(ctx.device)

    def loss_fn(model: DelayModel, batch) -> torch.Tensor:
        u, y = batch
        return torch.mean((model(u)[:, d.delay:] - y) ** 2)

    def nmse(model: DelayModel, u: torch.Tensor, y: torch.Tensor) -> float:
        return torch.mean((model(u)[:, d.delay:] - y) ** 2).item() / y.var().item()

    result = fit(ctx, "", model, optimizer, batches, loss_fn, d.steps // d.eval_every,
                 lambda m: {"val/nmse": nmse(m, val_u, val_y)}, select="val/nmse")
    model.eval()
    with torch.no_grad():
        test = nmse(model, test_u, test_y)
    ctx.log.info("delay %s: val nMSE %.4f, test nMSE %.4f (best epoch %d)", variant.name,
                 result.best_metrics["val/nmse"], test, result.best_epoch)
    return [{"variant": variant.name, "init": variant.init,
             "dt_range": f"[{variant.dt_range[0]:g}, {variant.dt_range[1]:g}]",
             "best_step": (result.best_epoch + 1) * d.eval_every, "val_nmse": result.best_metrics["val/nmse"],
             "delay_nmse": test}]
