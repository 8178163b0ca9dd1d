"""Periodic test signals on [0, 1) and their deformations F_tau f(x) = f(x - tau(x)).

Each class is a closed-form function of x, so a deformed signal is evaluated exactly at the displaced points
(no interpolation): band-limited Fourier series (|k| <= R, complex Gaussian coefficients), cartoon functions (three
indicators of random arcs times smooth Gaussian bumps) and Lipschitz functions (random periodic piecewise-linear).
Signals are normalised to ||f|| = 1 with ||f||^2 = h sum |f[m]|^2.
"""

import math

import numpy as np

CLASSES = ("bandlimited", "cartoon", "lipschitz")


class SignalClass:
    """A batch of random functions of one class, evaluated at any points x (taken modulo 1)."""

    def __init__(self, kind: str, count: int, rng: np.random.Generator, bandlimit: int, knots: int,
                 max_slope: float) -> None:
        self.kind = kind
        if kind == "bandlimited":
            k = np.arange(1, bandlimit + 1)
            self.k = k
            real, imaginary = rng.standard_normal((2, count, k.size))
            self.coef = (real + 1j * imaginary) / math.sqrt(2)
            self.mean = rng.standard_normal((count, 1))
        elif kind == "cartoon":
            self.starts = rng.uniform(0, 1, (count, 3))
            self.lengths = rng.uniform(0.05, 0.4, (count, 3))
            self.centres = rng.uniform(0, 1, (count, 3))
            self.widths = rng.uniform(0.1, 0.3, (count, 3))
            self.heights = rng.uniform(-1, 1, (count, 3))
        elif kind == "lipschitz":
            slopes = rng.uniform(-max_slope, max_slope, (count, knots))
            # Periodic: the slopes sum to zero (a closed walk); values at the knots by cumulative sums.
            slopes -= slopes.mean(axis=1, keepdims=True)
            self.values = np.concatenate([np.zeros((count, 1)), np.cumsum(slopes / knots, axis=1)], axis=1)
            self.knots = knots
        else:
            raise ValueError(f"unknown signal class {kind!r}; choose one of {CLASSES}")
        self.count = count

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """f(x) for each function of the batch: x (points,) or (count, points) -> (count, points)."""
        x = np.mod(np.broadcast_to(x, (self.count, x.shape[-1])), 1.0)
        if self.kind == "bandlimited":
            phases = np.exp(2j * math.pi * x[:, :, None] * self.k)
            return self.mean + 2 * np.real((phases * self.coef[:, None, :]).sum(-1))
        if self.kind == "cartoon":
            inside = np.mod(x[:, :, None] - self.starts[:, None, :], 1.0) < self.lengths[:, None, :]
            gap = np.mod(x[:, :, None] - self.centres[:, None, :] + 0.5, 1.0) - 0.5  # periodic distance
            bumps = self.heights[:, None, :] * np.exp(-gap ** 2 / (2 * self.widths[:, None, :] ** 2))
            return (inside * bumps).sum(-1)
        position = x * self.knots
        left = np.floor(position).astype(int)
        weight = position - left
        rows = np.arange(self.count)[:, None]
        return (1 - weight) * self.values[rows, left] + weight * self.values[rows, left + 1]


def sample(signals: SignalClass, samples: int) -> tuple[np.ndarray, np.ndarray]:
    """(grid values (count, N), scale) where scale normalises each signal to ||f|| = 1 on the grid."""
    x = np.arange(samples) / samples
    values = signals(x)
    scale = 1.0 / np.sqrt((values ** 2).sum(1, keepdims=True) / samples)
    return values * scale, scale


def deformed(signals: SignalClass, scale: np.ndarray, samples: int, amplitude: float, period: int) -> np.ndarray:
    """F_tau f on the grid for tau(x) = a sin(2 pi m x) / (2 pi m): ||D tau||_inf = a, ||tau||_inf = a / (2 pi m)."""
    x = np.arange(samples) / samples
    tau = amplitude * np.sin(2 * math.pi * period * x) / (2 * math.pi * period)
    return signals(x - tau) * scale


def shifted(values: np.ndarray, shift: float) -> np.ndarray:
    """T_t f(x) = f(x - t) for t in samples, by the Fourier shift theorem (exact for the grid's trigonometric
    interpolant)."""
    samples = values.shape[-1]
    k = np.fft.fftfreq(samples, d=1.0 / samples)
    return np.real(np.fft.ifft(np.fft.fft(values, axis=-1) * np.exp(-2j * math.pi * k * shift / samples), axis=-1))
