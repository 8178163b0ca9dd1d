"""dcnn_theory: Bessel bounds by the Littlewood-Paley sum against numpy energies, exact non-expansiveness of
admissible networks (no pooling, averaging), exact translation covariance, and the Morlet wavelet-modulus cascade
against an independent numpy scattering transform computed by time-domain circular convolution.

kymatio's Scattering1D would be the field's oracle for the wavelet case, but kymatio 0.3.0 fails to build it under
SciPy 1.17 (scipy.special.sph_harm was removed) and it is not installed; the numpy cascade below stands in for it."""

import logging
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from repro.core.context import RunContext
from repro.core.units import Unit
from repro.papers.dcnn_theory import task
from repro.papers.dcnn_theory.extractor import (
    NONLINEARITIES,
    convolve,
    distance,
    features,
    layer_norms,
    lipschitz_constant,
    pool,
)
from repro.papers.dcnn_theory.filters import (
    chi_constant,
    frequencies,
    gabor,
    learned,
    littlewood_paley,
    morlet,
    real_part,
    rescaled,
)
from repro.papers.dcnn_theory.signals import CLASSES, SignalClass, deformed, sample, shifted

N = 128
H = 1.0 / N
OMEGA = frequencies(N, H, "cpu")


def write_dry_data(data_dir: Path) -> None:
    """Nothing: every signal is generated in the run, so scale=dry reads no file; its dry.yaml runs the paper
    scale's banks and depths on a smaller grid with fewer signals."""


def banks(real: bool) -> dict:
    taps = torch.tensor(np.random.default_rng(0).standard_normal((6, 8)))
    made = {"morlet": morlet(N / 2, 4), "gabor": gabor(N / 2, 6), "learned": learned(taps, H)}
    return {name: real_part(bank) if real else bank for name, bank in made.items()}


def random_signals(count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([sample(SignalClass(kind, count, rng, 16, 8, 5.0), N)[0] for kind in CLASSES])


@pytest.mark.parametrize("real", [False, True])
@pytest.mark.parametrize("name", ["morlet", "gabor", "learned"])
def test_bessel_bound_is_the_littlewood_paley_maximum(name: str, real: bool) -> None:
    bank = rescaled(banks(real)[name], OMEGA, 0.7)
    assert float(littlewood_paley(bank, OMEGA).max()) == pytest.approx(0.7, rel=1e-12)
    multipliers, chi = (x.numpy() for x in bank(OMEGA))
    filters = np.vstack([multipliers, chi[None]])

    def energy_ratio(f: np.ndarray) -> float:
        outputs = np.fft.ifft(np.fft.fft(f)[None] * filters, axis=-1)
        return float((np.abs(outputs) ** 2).sum() / (np.abs(f) ** 2).sum())

    rng = np.random.default_rng(1)
    for _ in range(20):
        assert energy_ratio(rng.standard_normal(N)) <= 0.7 + 1e-12
    # A pure tone at the frequency where the Littlewood-Paley sum peaks attains the bound.
    peak = int(np.argmax((np.abs(filters) ** 2).sum(0)))
    tone = np.exp(2j * math.pi * np.fft.fftfreq(N, d=1 / N)[peak] * np.arange(N) / N)
    assert energy_ratio(tone) == pytest.approx(0.7, rel=1e-10)


@pytest.mark.parametrize("pooling", ["none", "avg"])
@pytest.mark.parametrize("nonlinearity", list(NONLINEARITIES))
def test_admissible_networks_are_non_expansive(nonlinearity: str, pooling: str) -> None:
    f = random_signals(6, 2)
    g = random_signals(6, 3)
    pairs = [(f, g), (f, f + 1e-3 * g)]
    for name, bank in banks(nonlinearity != "modulus").items():
        admissible = rescaled(bank, OMEGA, 1.0)
        for a, b in pairs:
            phi_a = features(torch.tensor(a), admissible, nonlinearity, pooling, 2, 2, H)
            phi_b = features(torch.tensor(b), admissible, nonlinearity, pooling, 2, 2, H)
            ratio = distance(phi_a, phi_b, H).numpy() / np.sqrt(H * ((a - b) ** 2).sum(1))
            assert ratio.max() <= 1 + 1e-9, (name, ratio.max())


def test_violating_bound_can_expand() -> None:
    """With B = 4 the modulus network expands a pure tone at the Littlewood-Paley peak (ratio 2 at depth 0-1
    for a linear first layer): admissibility is what the bound rests on."""
    bank = rescaled(morlet(N / 2, 4), OMEGA, 4.0)
    peak = int(torch.argmax(littlewood_paley(bank, OMEGA)))
    tone = np.cos(2 * math.pi * float(OMEGA[peak]) * np.arange(N) / N)[None]
    phi = features(torch.tensor(tone), bank, "modulus", "none", 1, 1, H)
    zero = features(torch.zeros(1, N, dtype=torch.float64), bank, "modulus", "none", 1, 1, H)
    assert float(distance(phi, zero, H)[0]) / math.sqrt(H * (tone ** 2).sum()) > 1


@pytest.mark.parametrize("pooling", ["sub", "avg"])
def test_translation_covariance_is_exact(pooling: str) -> None:
    """Phi^n(T_t f) = T_{t / 2^n} Phi^n(f) when 2^n divides t (circular shifts by whole samples)."""
    f = random_signals(2, 4)
    bank = rescaled(real_part(gabor(N / 2, 6)), OMEGA, 1.0)
    t = 8
    moved = features(torch.tensor(np.roll(f, t, axis=1)), bank, "relu", pooling, 2, 3, H)
    still = features(torch.tensor(f), bank, "relu", pooling, 2, 3, H)
    for n, (a, b) in enumerate(zip(moved, still)):
        assert torch.allclose(a, torch.roll(b, t // 2 ** n, dims=-1), atol=1e-12), n


def test_fourier_shift_matches_roll_for_whole_samples() -> None:
    f = random_signals(1, 5)
    assert np.allclose(shifted(f, 3), np.roll(f, 3, axis=1), atol=1e-12)


def numpy_morlet(omega: np.ndarray, scales: int) -> tuple[np.ndarray, np.ndarray]:
    """Morlet wavelets from their closed form (centre 0.35, bandwidth 0.1 of the sampling rate, halved per scale,
    corrected to zero mean) and the Gaussian low-pass at scale 2^J."""
    rate = N
    psi = []
    for j in range(scales):
        xi, sigma = 0.35 * rate / 2 ** j, 0.1 * rate / 2 ** j
        psi.append(np.exp(-(omega - xi) ** 2 / (2 * sigma ** 2))
                   - np.exp(-xi ** 2 / (2 * sigma ** 2)) * np.exp(-omega ** 2 / (2 * sigma ** 2)))
    return np.array(psi), np.exp(-omega ** 2 / (2 * (0.1 * rate / 2 ** scales) ** 2))


def circular_convolution(x: np.ndarray, impulse: np.ndarray) -> np.ndarray:
    """(x * g)[m] = sum_k x[k] g[m - k], summed directly in the time domain."""
    m = np.arange(len(x))
    return (x[None, :] * impulse[(m[:, None] - m[None, :]) % len(x)]).sum(1)


def test_wavelet_modulus_cascade_matches_an_independent_scattering_transform() -> None:
    scales = 4
    omega = np.fft.fftfreq(N, d=1 / N)
    psi_hat, phi_hat = numpy_morlet(omega, scales)
    assert np.allclose(psi_hat, morlet(N / 2, scales)(OMEGA)[0].real.numpy(), atol=1e-14)
    factor = math.sqrt(1.0 / ((np.abs(psi_hat) ** 2).sum(0) + phi_hat ** 2).max())
    psi = np.fft.ifft(factor * psi_hat, axis=-1)  # impulse responses
    phi = np.fft.ifft(factor * phi_hat)
    f = random_signals(1, 6)[2]
    order0 = circular_convolution(f, phi)
    first = [np.abs(circular_convolution(f, p)) for p in psi]
    order1 = np.array([circular_convolution(u, phi) for u in first])
    order2 = np.array([circular_convolution(np.abs(circular_convolution(u, p2)), phi) for u in first for p2 in psi])
    ours = features(torch.tensor(f[None]), rescaled(morlet(N / 2, scales), OMEGA, 1.0), "modulus", "none", 1, 2, H)
    for expected, got in zip((order0[None], order1, order2), ours):
        assert np.allclose(got[0].numpy(), expected, atol=1e-12)
    # Scattering energy: non-expansive (a frame with bound 1), so it never exceeds ||f||.
    assert float((layer_norms(ours, H) ** 2).sum()) <= H * (f ** 2).sum() + 1e-12


def test_signal_classes_and_deformations() -> None:
    rng = np.random.default_rng(7)
    band = SignalClass("bandlimited", 3, rng, 16, 8, 5.0)
    values, scale = sample(band, N)
    assert np.allclose(H * (values ** 2).sum(1), 1.0)
    spectrum = np.abs(np.fft.fft(values, axis=1))
    assert spectrum[:, 17:N - 16].max() < 1e-9 * spectrum.max()  # exactly band-limited, |k| <= 16
    lipschitz = SignalClass("lipschitz", 3, rng, 16, 8, 5.0)
    x = np.linspace(0, 1, 4001)
    walk = lipschitz(x)
    assert np.allclose(walk[:, 0], walk[:, -1])  # periodic
    assert np.abs(np.diff(walk, axis=1) / np.diff(x)).max() <= 10 + 1e-9  # centred slopes stay within 2 x 5
    assert np.allclose(deformed(band, scale, N, 0.0, 1), values)
    # tau(x) = a sin(2 pi m x) / (2 pi m): ||tau|| = a / (2 pi m), ||D tau|| = a.
    a, m = 0.3, 2
    fine = np.linspace(0, 1, 100001)
    tau = a * np.sin(2 * math.pi * m * fine) / (2 * math.pi * m)
    assert np.abs(tau).max() == pytest.approx(a / (2 * math.pi * m), rel=1e-6)
    assert np.abs(np.gradient(tau, fine)).max() == pytest.approx(a, rel=1e-4)
    moved = deformed(band, scale, N, a, m)
    points = np.arange(N) / N
    direct = band(points - a * np.sin(2 * math.pi * m * points) / (2 * math.pi * m)) * scale
    assert np.allclose(moved, direct)


def test_pooling_keeps_the_norm_of_slow_signals_by_parseval() -> None:
    """A trigonometric polynomial of degree < N / (2 S) keeps its norm under S^(1/2) sub-sampling (Parseval on
    both grids); a constant keeps it under S^(1/2) averaging; averaging is the block mean."""
    rng = np.random.default_rng(0)
    k = np.arange(1, 31)
    coefficients = rng.standard_normal(30) + 1j * rng.standard_normal(30)
    x = np.real((coefficients * np.exp(2j * math.pi * np.arange(N)[:, None] * k / N)).sum(1))[None, None]
    norm = np.sqrt(H * (x ** 2).sum())
    sub = pool(torch.tensor(x), "sub", 2).numpy()
    assert np.sqrt(H * (sub ** 2).sum()) == pytest.approx(norm, rel=1e-12)
    constant = torch.full((1, 1, N), 0.7, dtype=torch.float64)
    assert float(layer_norms([pool(constant, "avg", 4)], H)[0, 0]) == pytest.approx(0.7, rel=1e-12)
    avg = pool(torch.tensor(x), "avg", 4).numpy()
    assert np.allclose(avg, 2.0 * x.reshape(1, 1, -1, 4).mean(-1), atol=1e-12)


@pytest.mark.parametrize("name", list(NONLINEARITIES))
def test_nonlinearities_vanish_at_zero_with_their_lipschitz_constant(name: str) -> None:
    """M(0) = 0 and L = max |M'| (1 for modulus, ReLU and tanh; sigma'(0) = 1/4 for the logistic sigmoid)."""
    apply = NONLINEARITIES[name][0]
    assert float(apply(torch.zeros(1, dtype=torch.float64))) == 0.0
    x = torch.linspace(-6, 6, 120001, dtype=torch.float64)
    slopes = torch.diff(apply(x)) / torch.diff(x)
    assert lipschitz_constant(name) == pytest.approx(float(slopes.abs().max()), rel=1e-6)


def test_convolve_is_circular_convolution_with_the_impulse_response() -> None:
    rng = np.random.default_rng(1)
    multipliers = rng.standard_normal((2, N)) + 1j * rng.standard_normal((2, N))   # not conjugate-symmetric
    f = rng.standard_normal(N)
    got = convolve(torch.tensor(f[None]), torch.tensor(multipliers))[0].numpy()
    for m, row in zip(multipliers, got):
        assert np.allclose(row, circular_convolution(f, np.fft.ifft(m)), atol=1e-12)


def test_learned_bank_is_the_scaled_dft_of_its_taps() -> None:
    """g^(k / (N h)) = h sum_t g[t] e^(-2 pi i k t / N) = h FFT(zero-padded taps)[k]; chi is the box of unit
    integral (chi^(0) = 1)."""
    taps = np.random.default_rng(2).standard_normal((3, 8))
    bank, chi = learned(torch.tensor(taps), H)(OMEGA)
    assert np.allclose(bank.numpy(), H * np.fft.fft(taps, n=N, axis=-1), atol=1e-12)
    assert np.allclose(chi.numpy(), H * np.fft.fft(np.full(8, 1 / (8 * H)), n=N), atol=1e-12)
    assert chi[0].real.item() == pytest.approx(1.0, rel=1e-12)


def test_real_part_is_the_frame_of_the_real_impulse_responses() -> None:
    taps = torch.tensor(np.random.default_rng(3).standard_normal((3, 8)) + 0j)
    taps = taps * torch.exp(1j * torch.arange(8) * 0.9)            # complex taps: a non-trivial real part
    complex_bank = learned(taps, H)
    bank, _ = real_part(complex_bank)(OMEGA)
    impulse = np.fft.ifft(complex_bank(OMEGA)[0].numpy(), axis=-1)
    assert np.allclose(bank.numpy(), np.fft.fft(impulse.real, axis=-1), atol=1e-12)


def test_gabor_centres_and_chi_constant_against_closed_forms() -> None:
    """Window m is a Gaussian of width delta / 2 centred at m delta, delta = nyquist / M; for the Gaussian chi of
    width s, max |chi^(omega)| |omega| = s e^(-1/2) at omega = s (cycles per unit length)."""
    nyquist, count = N / 2, 6
    omega = torch.linspace(-nyquist, nyquist, 200001, dtype=torch.float64)
    bank = gabor(nyquist, count)
    peaks = omega[bank(omega)[0].abs().argmax(dim=1)].numpy()
    delta = nyquist / count
    assert np.allclose(peaks, delta * np.arange(1, count + 1), atol=1e-2)
    assert chi_constant(bank, omega) == pytest.approx(delta / 2 * math.exp(-0.5), rel=1e-6)


def test_translation_rows_bound_every_signal_and_report_the_error_relative_to_the_features(tmp_path: Path) -> None:
    """The claim reads the worst signal's error over the bound (the theorem bounds each f), and relative_error is
    the error over the layer's own feature norm; both recomputed here per signal with whole-sample circular
    shifts (np.roll, equal to the Fourier shift for whole samples)."""
    cfg = OmegaConf.create({"seed": 0, "scale": {"name": "test"}, "data_dir": str(tmp_path), "grid": {"samples": N},
                            "chunk": 4, "signals": {"bandlimit": 8, "knots": 8, "max_slope": 5.0},
                            "banks": {"morlet": {"scales": 4}},
                            "translation": {"bound": 1.0, "factor": 2, "depth": 2, "shifts": [4], "signals": 3}})
    ctx = RunContext(cfg, tmp_path, "cpu", Unit("translation", "morlet", (("pooling", "sub"),)), logging.getLogger("t"))
    rows = task.translation_rows(cfg, ctx, "sub")
    bank = task.make_bank(cfg, ctx, "morlet", "modulus", 1.0)
    _, f, _ = task.draw(cfg, ctx, "bandlimited", 3, "translation")
    still = features(torch.tensor(f), bank, "modulus", "sub", 2, 2, H)
    moved = features(torch.tensor(np.roll(f, 4, axis=1)), bank, "modulus", "sub", 2, 2, H)
    errors = layer_norms([a - b for a, b in zip(moved, still)], H).numpy()
    energies = layer_norms(still, H).numpy()
    assert len(rows) == 3 and errors.std(0).min() > 0  # the signals differ, so worst and mean differ
    for row in rows:
        n = row["depth"]
        assert np.isclose(row["error"], errors[:, n].mean(), rtol=1e-9)
        assert np.isclose(row["worst_ratio_to_bound"], errors[:, n].max() / row["bound"], rtol=1e-9)
        assert np.isclose(row["relative_error"], (errors[:, n] / energies[:, n]).mean(), rtol=1e-9)
