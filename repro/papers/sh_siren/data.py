"""The synthetic sphere data of the paper: the 16-class checkerboard (nearest of N Fibonacci support points)
and a band-limited function for regression. Coordinates are (longitude, latitude) in degrees."""

import math

import numpy as np
import torch

from repro.papers.sh_siren.encodings import real_spherical_harmonics

GOLDEN_RATIO = (1 + math.sqrt(5)) / 2


def fibonacci_lattice(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lon, lat, i) of the Fibonacci lattice of n (even) points, i = -n/2..n/2-1 (Gonzalez 2010):
    lat_i = asin(2i/(n+1)), lon_i = (i mod phi) 360/phi wrapped to [-180, 180]."""
    half = n // 2
    i = np.arange(-half, half)
    lat = np.degrees(np.arcsin(2 * i / (2 * half + 1)))
    lon = np.mod(i, GOLDEN_RATIO) * 360 / GOLDEN_RATIO
    lon = np.where(lon > 180, lon - 360, lon)
    return lon, lat, i


def uniform_sphere(n: int, seed: int) -> np.ndarray:
    """n points uniform on the sphere (normalised Gaussians), as (lon, lat) degrees, shape (n, 2)."""
    x, y, z = np.random.default_rng(seed).normal(size=(3, n))
    return np.stack([np.degrees(np.arctan2(y, x)), np.degrees(np.arctan2(z, np.hypot(x, y)))], 1)


def haversine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Great-circle distances (radians on the unit sphere) between rows of a (n, 2) and b (m, 2), degrees in."""
    lon_a, lat_a = np.radians(a[:, :1]), np.radians(a[:, 1:])
    lon_b, lat_b = np.radians(b[:, 0]), np.radians(b[:, 1])
    h = np.sin((lat_b - lat_a) / 2) ** 2 + np.cos(lat_a) * np.cos(lat_b) * np.sin((lon_b - lon_a) / 2) ** 2
    return 2 * np.arcsin(np.sqrt(np.clip(h, 0, 1)))


def checkerboard_labels(points: np.ndarray, support: int, classes: int) -> np.ndarray:
    """Label of each point: that of its nearest support point, the support lattice labelled i mod classes."""
    lon, lat, i = fibonacci_lattice(support)
    centres = np.stack([lon, lat], 1)
    nearest = np.concatenate([haversine(chunk, centres).argmin(1) for chunk in np.array_split(points, 20)])
    return np.mod(i, classes)[nearest]


def bandlimited_coefficients(degree: int, seed: int) -> np.ndarray:
    """a_lm ~ N(0, (l+1)^-2) for l <= degree (ordered as the L^2 features, L = degree + 1)."""
    scale = np.concatenate([np.full(2 * lv + 1, 1.0 / (lv + 1)) for lv in range(degree + 1)])
    return np.random.default_rng(seed).normal(size=scale.size) * scale


def bandlimited_values(points: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    legendre = math.isqrt(coefficients.size)
    harmonics = real_spherical_harmonics(torch.from_numpy(points), legendre).numpy()
    return harmonics @ coefficients
