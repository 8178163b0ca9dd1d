"""Semi-discrete frames Psi = {g_lambda} u {chi} as Fourier multipliers of the continuous frequency omega
(cycles per unit length on the periodic domain).

A filter is a function g^(omega), so the same bank serves every layer: after pooling the grid keeps its spacing h
and the domain shrinks, and the layer's frequencies omega = k / (M h) are a subset of the first layer's. Its
Bessel bound is the maximum of the Littlewood-Paley sum  sum_lambda |g^_lambda(omega)|^2 + |chi^(omega)|^2  over
the first layer's frequencies (chi included), and a bank is rescaled so that this maximum equals a chosen B.
"""

import math
from collections.abc import Callable

import torch

Responses = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
BANKS = ("morlet", "gabor", "learned")


def frequencies(samples: int, spacing: float, device: str) -> torch.Tensor:
    """The DFT frequencies of a periodic grid, in cycles per unit length (float64)."""
    return torch.fft.fftfreq(samples, d=spacing, dtype=torch.float64, device=device)


def gaussian(omega: torch.Tensor, centre: float, width: float) -> torch.Tensor:
    return torch.exp(-((omega - centre) ** 2) / (2 * width ** 2))


def morlet(nyquist: float, scales: int) -> Responses:
    """Morlet wavelets psi_j, j = 0..J-1, analytic (positive frequencies), centred at xi 2^-j with bandwidth
    sigma 2^-j and corrected to zero mean; chi a Gaussian low-pass at the coarsest scale. Centre and widths in
    units of the sampling rate follow the usual scattering choice (xi = 0.35, sigma = 0.1 at Q = 1)."""
    rate = 2 * nyquist
    xi, sigma = 0.35 * rate, 0.1 * rate

    def responses(omega: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        bank = []
        for j in range(scales):
            centre, width = xi / 2 ** j, sigma / 2 ** j
            bump = gaussian(omega, centre, width)
            # Subtract a Gaussian at 0 so that psi^(0) = 0 (a wavelet has zero mean).
            bank.append(bump - math.exp(-centre ** 2 / (2 * width ** 2)) * gaussian(omega, 0.0, width))
        return torch.stack(bank).to(torch.complex128), gaussian(omega, 0.0, sigma / 2 ** scales).to(torch.complex128)

    return responses


def gabor(nyquist: float, modulations: int) -> Responses:
    """Weyl-Heisenberg frame: one Gaussian window translated in frequency to m * delta, m = 1..M (chi is m = 0),
    with delta = nyquist / M and window width delta / 2."""
    delta = nyquist / modulations

    def responses(omega: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        bank = torch.stack([gaussian(omega, m * delta, delta / 2) for m in range(1, modulations + 1)])
        return bank.to(torch.complex128), gaussian(omega, 0.0, delta / 2).to(torch.complex128)

    return responses


def learned(taps: torch.Tensor, spacing: float) -> Responses:
    """Filters given by their taps (filters x taps, spacing h): g^(omega) = h sum_t g[t] exp(-2 pi i omega t h),
    standing in for trained filters; chi is the normalised box of the same length (a moving average)."""
    count, length = taps.shape
    box = torch.full((1, length), 1.0 / (length * spacing), dtype=torch.float64, device=taps.device)

    def transform(weights: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(length, dtype=torch.float64, device=omega.device) * spacing
        phases = torch.exp(-2j * math.pi * omega[None, :] * positions[:, None])
        return spacing * weights.to(torch.complex128) @ phases

    def responses(omega: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return transform(taps, omega), transform(box, omega)[0]

    return responses


def real_part(responses: Responses) -> Responses:
    """The frame of the real parts Re g: its multiplier is (g^(omega) + conj g^(-omega)) / 2, so that a real
    signal gives real outputs (what ReLU, tanh and the sigmoid need)."""

    def real(omega: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        bank, chi = responses(omega)
        mirror, chi_mirror = responses(-omega)
        return (bank + mirror.conj()) / 2, (chi + chi_mirror.conj()) / 2

    return real


def littlewood_paley(responses: Responses, omega: torch.Tensor) -> torch.Tensor:
    """sum_lambda |g^_lambda(omega)|^2 + |chi^(omega)|^2 at each frequency."""
    bank, chi = responses(omega)
    return (bank.abs() ** 2).sum(0) + chi.abs() ** 2


def rescaled(responses: Responses, omega: torch.Tensor, bound: float) -> Responses:
    """The bank multiplied by one constant so that max_omega of its Littlewood-Paley sum is exactly ``bound``."""
    factor = math.sqrt(bound / float(littlewood_paley(responses, omega).max()))

    def scaled(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        bank, chi = responses(w)
        return factor * bank, factor * chi

    return scaled


def chi_constant(responses: Responses, omega: torch.Tensor) -> float:
    """K = max_omega |chi^(omega)| |omega| (omega in cycles per unit), the constant of the translation bound."""
    return float((responses(omega)[1].abs() * omega.abs()).max())
