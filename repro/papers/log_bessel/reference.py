"""Independent values of log I_v(x), log K_v(x): mpmath at high precision (the reference, with a time limit per
point and an on-disk cache) and SciPy's exponentially scaled ive/kve (the baseline)."""

import math
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mpmath
import numpy as np
import pandas as pd
from scipy import special

FUNCTIONS = ("log_i", "log_k")


class PointTimeout(Exception):
    pass


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise PointTimeout after `seconds` of wall time (SIGALRM; mpmath is pure Python, so it is interruptible).
    Off the main thread no alarm can be set and the call runs unlimited."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise PointTimeout

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def mpmath_log_bessel(function: str, v: float, x: float, dps: int, seconds: float) -> float:
    """log I_v(x) or log K_v(x) with mpmath at `dps` digits; NaN when mpmath fails or exceeds `seconds`."""
    bessel = {"log_i": mpmath.besseli, "log_k": mpmath.besselk}[function]
    try:
        with mpmath.workdps(dps), time_limit(seconds):
            value = bessel(mpmath.mpf(v), mpmath.mpf(x))
            # mpmath occasionally returns a complex or non-positive value where its series fail: no reference
            return float(mpmath.log(value)) if isinstance(value, mpmath.mpf) and value > 0 else math.nan
    except (PointTimeout, ValueError, ZeroDivisionError, mpmath.libmp.NoConvergence):
        return math.nan


def mpmath_log_k_quad(v: float, x: float, dps: int, seconds: float) -> float:
    """log K_v(x) = log int_0^inf exp(-x cosh t) cosh(v t) dt by mpmath.quad, the integrand scaled by its value at
    t0 = asinh(v / x) and split at t0 + k w (w = Gaussian width there): an independent check of mpmath.besselk."""
    try:
        with mpmath.workdps(dps), time_limit(seconds):
            v, x = mpmath.mpf(v), mpmath.mpf(x)
            t0 = mpmath.asinh(v / x)

            def log_h(t: mpmath.mpf) -> mpmath.mpf:
                return -x * mpmath.cosh(t) + mpmath.log(mpmath.cosh(v * t))

            shift = log_h(t0)
            width = min(1, 1 / mpmath.sqrt(x * mpmath.cosh(t0)))
            end = t0 + 1
            while log_h(end) > shift - 100:       # beyond `end` the integrand is below e^-100 of its value at t0
                end = t0 + 2 * (end - t0)
            splits = sorted({mpmath.mpf(0), *(t0 + k * width for k in range(-12, 13) if 0 < t0 + k * width < end)})
            total = mpmath.quad(lambda t: mpmath.exp(log_h(t) - shift), [*splits, end])
            return float(mpmath.log(total) + shift)
    except (PointTimeout, ValueError, ZeroDivisionError, mpmath.libmp.NoConvergence):
        return math.nan


class ReferenceCache:
    """mpmath references keyed by (function, v, x) in a CSV (v and x stored exactly as float.hex)."""

    def __init__(self, path: Path, dps: int, seconds: float) -> None:
        self.path, self.dps, self.seconds = path, dps, seconds
        self.values: dict[tuple[str, str, str], float] = {}
        if path.exists():
            table = pd.read_csv(path)
            columns = table[["function", "v", "x", "value"]].itertuples(index=False)
            self.values = {(f, v, x): y for f, v, x, y in columns}
        self.new = 0

    def get(self, function: str, v: float, x: float) -> float:
        key = (function, float(v).hex(), float(x).hex())
        if key not in self.values:
            self.values[key] = mpmath_log_bessel(function, v, x, self.dps, self.seconds)
            self.new += 1
        return self.values[key]

    def log_k_quad(self, v: float, x: float) -> float:
        key = ("log_k_quad", float(v).hex(), float(x).hex())
        if key not in self.values:
            self.values[key] = mpmath_log_k_quad(v, x, self.dps, 5 * self.seconds)
            self.new += 1
        return self.values[key]

    def many(self, function: str, v: np.ndarray, x: np.ndarray) -> np.ndarray:
        return np.array([self.get(function, a, b) for a, b in zip(v, x)])

    def save(self) -> None:
        if not self.new:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        table = pd.DataFrame([(*key, value) for key, value in self.values.items()],
                             columns=["function", "v", "x", "value"])
        tmp = self.path.with_suffix(".tmp")
        table.to_csv(tmp, index=False)
        tmp.replace(self.path)


def scipy_log_bessel(function: str, v: np.ndarray, x: np.ndarray) -> np.ndarray:
    """log I_v(x) = log ive(v, x) + x and log K_v(x) = log kve(v, x) - x (-inf/inf where ive/kve under/overflow)."""
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        if function == "log_i":
            return np.log(special.ive(v, x)) + x
        return np.log(special.kve(v, x)) - x
