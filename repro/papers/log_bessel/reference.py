"""Independent values of log I_v(x), log K_v(x): mpmath at high precision (the reference, in a sealed on-disk
cache) and SciPy's exponentially scaled ive/kve (the baseline).

A reference value depends only on (function, v, x), the digits and mpmath's own deterministic work bounds, never
on how loaded the machine is:

- log I: mpmath.besseli at `dps` digits (mpmath's default precision bound);
- log K: mpmath.besselk at `dps` digits with its working precision capped at `k_maxprec` bits and its series at
  `k_maxterms` terms (its asymptotic 2F0 series needs minutes where v and x are both large, e.g. 48 s to fail at
  v = x = 10^4; with the caps it fails in milliseconds, and deterministically), and where it fails, mpmath.quad
  of the integral representation (an independent route, also used where ours and besselk disagree);
- a wall-clock limit per value stays as a safety net only: a value that hits it is NaN in this run, logged, and
  NOT cached (the next run computes it again), so a slow machine cannot turn into a cached missing reference.

The cache is a CSV beside a seal (``<name>.sha256.json``: SHA-256 and row count of the CSV, written together with
it under a lock); a CSV that does not match its seal, has no seal, or holds malformed entries is refused with its
path and the fix, so an edited cache cannot change a verdict unnoticed. Each accuracy row also carries
``ref_sha256``, the hash of the reference values its unit used.
"""

import fcntl
import hashlib
import json
import math
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mpmath
import numpy as np
import pandas as pd
from scipy import special

from repro.core.errors import ReproError

FUNCTIONS = ("log_i", "log_k")
KINDS = ("log_i", "log_k", "log_k_quad")   # cache keys: besseli, besselk (capped), the quadrature for K
COLUMNS = ["function", "v", "x", "value", "status"]
OK, FAILED, TIMEOUT = "ok", "failed", "timeout"   # status of one mpmath evaluation; timeouts are never cached


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


MPMATH_FAILURES = (ValueError, ZeroDivisionError, mpmath.libmp.NoConvergence)


def mpmath_log_bessel_status(function: str, v: float, x: float, dps: int, seconds: float,
                             k_caps: tuple[int, int] | None = None) -> tuple[float, str]:
    """(log I_v(x) or log K_v(x) by mpmath at `dps` digits, status): status "failed" (NaN) where mpmath gives up
    within its deterministic bounds (for besselk, when given, k_caps = (maxprec bits, maxterms)), "timeout"
    (NaN) where the wall-clock safety net `seconds` expired first."""
    bessel = {"log_i": mpmath.besseli, "log_k": mpmath.besselk}[function]
    options = ({"maxprec": int(k_caps[0]), "maxterms": int(k_caps[1])} if function == "log_k" and k_caps
               else {})
    try:
        with mpmath.workdps(dps), time_limit(seconds):
            value = bessel(mpmath.mpf(v), mpmath.mpf(x), **options)
            # mpmath occasionally returns a complex or non-positive value where its series fail: no reference
            if isinstance(value, mpmath.mpf) and value > 0:
                return float(mpmath.log(value)), OK
            return math.nan, FAILED
    except PointTimeout:
        return math.nan, TIMEOUT
    except MPMATH_FAILURES:
        return math.nan, FAILED


def mpmath_log_bessel(function: str, v: float, x: float, dps: int, seconds: float) -> float:
    """log I_v(x) or log K_v(x) with mpmath at `dps` digits; NaN when mpmath fails or exceeds `seconds`."""
    return mpmath_log_bessel_status(function, v, x, dps, seconds)[0]


def mpmath_log_k_quad_status(v: float, x: float, dps: int, seconds: float) -> tuple[float, str]:
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
            value = float(mpmath.log(total) + shift)
            return (value, OK) if math.isfinite(value) else (math.nan, FAILED)
    except PointTimeout:
        return math.nan, TIMEOUT
    except MPMATH_FAILURES:
        return math.nan, FAILED


def mpmath_log_k_quad(v: float, x: float, dps: int, seconds: float) -> float:
    return mpmath_log_k_quad_status(v, x, dps, seconds)[0]


class CacheError(ReproError):
    """The reference cache on disk does not match its seal or holds malformed entries."""


def seal_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256.json")


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def _fix(path: Path) -> str:
    return (f"delete {path} and {seal_path(path).name} to recompute the references with mpmath "
            "(minutes), or restore both files as they were written")


def read_cache(path: Path) -> dict[tuple[str, str, str], float]:
    """The sealed cache at `path` ({} when absent), verified against its seal and validated entry by entry."""
    seal = seal_path(path)
    if not path.exists():
        if seal.exists():
            raise CacheError(f"reference cache {path} is missing but its seal {seal} exists; {_fix(path)}")
        return {}
    blob = path.read_bytes()
    try:
        recorded = json.loads(seal.read_text())
        expected, rows = str(recorded["sha256"]), int(recorded["rows"])
    except FileNotFoundError:
        raise CacheError(f"reference cache {path} has no seal {seal.name} (written by other code, or by hand); "
                         f"{_fix(path)}") from None
    except (ValueError, KeyError, TypeError) as error:
        raise CacheError(f"seal {seal} of the reference cache is unreadable ({error}); {_fix(path)}") from None
    if hashlib.sha256(blob).hexdigest() != expected:
        raise CacheError(f"reference cache {path} does not match the SHA-256 in {seal.name} (edited or truncated "
                         f"since it was written); {_fix(path)}")
    try:
        table = pd.read_csv(path, dtype={"function": str, "v": str, "x": str, "status": str})
    except (ValueError, pd.errors.ParserError) as error:
        raise CacheError(f"reference cache {path} is not a readable CSV ({error}); {_fix(path)}") from None
    if list(table.columns) != COLUMNS or len(table) != rows:
        raise CacheError(f"reference cache {path} has columns {list(table.columns)} and {len(table)} rows, expected "
                         f"{COLUMNS} and {rows} rows; {_fix(path)}")
    values = {}
    for number, (function, v, x, value, status) in enumerate(table.itertuples(index=False), start=2):
        try:
            v_float, x_float, value = float.fromhex(v), float.fromhex(x), float(value)
        except (TypeError, ValueError):
            raise CacheError(f"reference cache {path} line {number}: v, x must be float.hex and value a number; "
                             f"{_fix(path)}") from None
        good = (function in KINDS and status in (OK, FAILED) and v_float >= 0 and x_float > 0
                and math.isfinite(v_float) and math.isfinite(x_float)
                and (math.isfinite(value) if status == OK else math.isnan(value)))
        if not good:
            raise CacheError(f"reference cache {path} line {number}: bad entry ({function}, {v}, {x}, {value}, "
                             f"{status}); {_fix(path)}")
        values[(function, v, x)] = value
    return values


class ReferenceCache:
    """mpmath references keyed by (kind, v, x) in a sealed CSV (v and x stored exactly as float.hex); values that
    hit the wall-clock safety net are kept in memory for this run only."""

    def __init__(self, path: Path, dps: int, seconds: float, k_caps: tuple[int, int] | None = None) -> None:
        self.path, self.dps, self.seconds, self.k_caps = path, dps, seconds, k_caps
        self.values = {}
        if path.exists() or seal_path(path).exists():
            with open(lock_path(path), "a") as handle:   # a writer replaces the CSV and its seal under this lock
                fcntl.flock(handle, fcntl.LOCK_SH)
                self.values = read_cache(path)
        self.pending: dict[tuple[str, str, str], float] = {}   # computed here, not yet saved
        self.timeouts: set[tuple[str, str, str]] = set()

    @staticmethod
    def key(kind: str, v: float, x: float) -> tuple[str, str, str]:
        return kind, float(v).hex(), float(x).hex()

    def _lookup(self, key: tuple[str, str, str], compute) -> float:
        if key in self.values:
            return self.values[key]
        if key in self.timeouts:
            return math.nan
        value, status = compute()
        if status == TIMEOUT:
            self.timeouts.add(key)
        else:
            self.values[key] = self.pending[key] = value
        return value

    def get(self, function: str, v: float, x: float) -> float:
        return self._lookup(self.key(function, v, x), lambda: mpmath_log_bessel_status(
            function, v, x, self.dps, self.seconds, self.k_caps))

    def log_k_quad(self, v: float, x: float) -> float:
        return self._lookup(self.key("log_k_quad", v, x),
                            lambda: mpmath_log_k_quad_status(v, x, self.dps, 5 * self.seconds))

    def timed_out(self, kind: str, v: float, x: float) -> bool:
        return self.key(kind, v, x) in self.timeouts

    def many(self, function: str, v: np.ndarray, x: np.ndarray) -> np.ndarray:
        return np.array([self.get(function, a, b) for a, b in zip(v, x)])

    def save(self) -> None:
        """Merge this run's new values into the file under an exclusive lock (units of other processes write the
        same cache), then write the CSV and its seal, each through a uniquely named temporary file."""
        if not self.pending:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path(self.path), "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            merged = {**read_cache(self.path), **self.pending}
            table = pd.DataFrame([(*key, value, OK if math.isfinite(value) else FAILED)
                                  for key, value in sorted(merged.items())], columns=COLUMNS)
            blob = table.to_csv(index=False).encode()
            suffix = f".{os.getpid()}.{threading.get_ident()}.tmp"
            tmp_csv, tmp_seal = self.path.with_name(self.path.name + suffix), seal_path(self.path).with_name(
                seal_path(self.path).name + suffix)
            tmp_csv.write_bytes(blob)
            tmp_seal.write_text(json.dumps({"sha256": hashlib.sha256(blob).hexdigest(), "rows": len(table),
                                            "dps": self.dps, "k_caps": self.k_caps,
                                            "mpmath": mpmath.__version__}))
            tmp_csv.replace(self.path)
            tmp_seal.replace(seal_path(self.path))
        self.values.update(merged)
        self.pending = {}


def references_sha256(cache: ReferenceCache, keys: list[tuple[str, str, str]]) -> str:
    """A short hash of the reference values behind one unit's rows (kind, v, x and value, in order)."""
    digest = hashlib.sha256()
    for key in keys:
        value = cache.values.get(key, math.nan)
        digest.update(f"{key[0]},{key[1]},{key[2]},{float(value).hex()};".encode())
    return digest.hexdigest()[:16]


def scipy_log_bessel(function: str, v: np.ndarray, x: np.ndarray) -> np.ndarray:
    """log I_v(x) = log ive(v, x) + x and log K_v(x) = log kve(v, x) - x (-inf/inf where ive/kve under/overflow)."""
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        if function == "log_i":
            return np.log(special.ive(v, x)) + x
        return np.log(special.kve(v, x)) - x
