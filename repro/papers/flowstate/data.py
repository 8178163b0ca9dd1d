"""Our continuous-time synthetic generator (exact OU transitions) and statsmodels' Mauna Loa CO2."""

import numpy as np

THETA, OU_SD = 0.1, 0.3       # OU mean reversion per hour, stationary sd


def ou_path(n_series: int, n_points: int, dt: float, rng: np.random.Generator) -> np.ndarray:
    """Exact OU sampling at step dt hours: z_k = z_{k-1} e^{-theta dt} + sd sqrt(1 - e^{-2 theta dt}) e_k."""
    decay = np.exp(-THETA * dt)
    noise = OU_SD * np.sqrt(1 - decay**2) * rng.standard_normal((n_series, n_points))
    z = np.empty((n_series, n_points))
    z[:, 0] = OU_SD * rng.standard_normal(n_series)
    for k in range(1, n_points):
        z[:, k] = z[:, k - 1] * decay + noise[:, k]
    return z

def generate(n_series: int, n_points: int, dt: float, seed: int) -> np.ndarray:
    """y(t) = b + c t + a1 sin(2 pi t / 24 + p1) + a2 sin(2 pi t / 168 + p2) + z(t), t = k dt hours; (S, n_points)."""
    rng = np.random.default_rng(seed)
    t = dt * np.arange(n_points)[None, :]
    b, c = rng.normal(0, 1, (n_series, 1)), rng.normal(0, 0.002, (n_series, 1))
    a1, a2 = rng.uniform(0.5, 2, (n_series, 1)), rng.uniform(0, 1, (n_series, 1))
    p1, p2 = rng.uniform(0, 2 * np.pi, (2, n_series, 1))
    return (b + c * t + a1 * np.sin(2 * np.pi * t / 24 + p1) + a2 * np.sin(2 * np.pi * t / 168 + p2)
            + ou_path(n_series, n_points, dt, rng))

def co2(rate: str) -> np.ndarray:
    """Weekly Mauna Loa CO2 (statsmodels, NaNs interpolated), or its monthly means (rate='monthly')."""
    from statsmodels.datasets import co2 as dataset

    series = dataset.load_pandas().data["co2"].interpolate()
    if rate == "weekly":
        return series.to_numpy(float)
    if rate == "monthly":
        return series.resample("MS").mean().dropna().to_numpy(float)
    raise ValueError(f"unknown co2 rate {rate!r}; choose weekly or monthly")
