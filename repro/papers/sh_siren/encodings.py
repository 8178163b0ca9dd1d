"""Location encodings of (longitude, latitude) in degrees, as in the official locationencoder package.

Spherical harmonics follow its angle convention: phi = rad(lon + 180) (azimuth) and theta = rad(lat + 90), so
theta is measured from the SOUTH pole and cos(theta) = -sin(lat). The real harmonics carry the Condon-Shortley
phase: Y_l0 = N_l0 P_l^0(cos theta), Y_lm = sqrt(2) N_lm P_l^m(cos theta) cos(m phi) for m > 0 and
sqrt(2) N_l|m| P_l^|m|(cos theta) sin(|m| phi) for m < 0, ordered l = 0..L-1, m = -l..l (L^2 features).
"""

import math

import torch

DFS = ("grid", "spherec", "spherecplus")
ENCODINGS = ("direct", "cartesian3d", "wrap", *DFS, "sphericalharmonics")


def real_spherical_harmonics(lonlat: torch.Tensor, legendre: int) -> torch.Tensor:
    """The L^2 real harmonics of degree l < L at each point, shape (N, L^2), computed in float64.

    Normalised associated Legendre functions by the stable three-term recurrence (the normalisation
    folded into the coefficients, so no factorials overflow at high degree):
      P_mm = -sqrt((2m+1)/(2m)) sqrt(1-x^2) P_{m-1,m-1},   P_00 = 1/sqrt(4 pi)
      P_{m+1,m} = sqrt(2m+3) x P_mm
      P_lm = a_lm (x P_{l-1,m} - b_lm P_{l-2,m}),  a_lm = sqrt((4l^2-1)/(l^2-m^2)),
                                                   b_lm = sqrt(((l-1)^2-m^2)/(4(l-1)^2-1)).
    """
    lonlat = lonlat.to(torch.float64)
    phi = torch.deg2rad(lonlat[:, 0] + 180)
    theta = torch.deg2rad(lonlat[:, 1] + 90)
    x, s = torch.cos(theta), torch.sin(theta).clamp(min=0.0)
    legendre_table: dict[tuple[int, int], torch.Tensor] = {}
    diagonal = torch.full_like(x, 1 / math.sqrt(4 * math.pi))
    for m in range(legendre):
        if m > 0:
            diagonal = -math.sqrt((2 * m + 1) / (2 * m)) * s * diagonal
        legendre_table[m, m] = diagonal
        if m + 1 < legendre:
            legendre_table[m + 1, m] = math.sqrt(2 * m + 3) * x * diagonal
        for degree in range(m + 2, legendre):
            a = math.sqrt((4 * degree**2 - 1) / (degree**2 - m**2))
            b = math.sqrt(((degree - 1) ** 2 - m**2) / (4 * (degree - 1) ** 2 - 1))
            legendre_table[degree, m] = a * (x * legendre_table[degree - 1, m] - b * legendre_table[degree - 2, m])
    columns = []
    for degree in range(legendre):
        for m in range(-degree, degree + 1):
            p = legendre_table[degree, abs(m)]
            if m == 0:
                columns.append(p)
            elif m > 0:
                columns.append(math.sqrt(2) * p * torch.cos(m * phi))
            else:
                columns.append(math.sqrt(2) * p * torch.sin(-m * phi))
    return torch.stack(columns, dim=-1)


def dfs_frequencies(frequency_num: int, min_radius: float, max_radius: float) -> torch.Tensor:
    """Geometric scales between min_radius and max_radius (degrees); the frequencies are their inverses."""
    step = math.log(max_radius / min_radius) / (frequency_num - 1)
    return 1.0 / (min_radius * torch.exp(torch.arange(frequency_num, dtype=torch.float64) * step))


def double_fourier_sphere(lonlat: torch.Tensor, name: str, frequency_num: int, min_radius: float,
                          max_radius: float) -> torch.Tensor:
    """Space2Vec 'grid' and Sphere2Vec 'sphereC'/'sphereC+' features (Mai et al. 2022, eqs. 3, 4 and 10) on
    degrees scaled by the frequencies. The official implementation repeats every sphere feature twice (its
    last axis keeps a duplicated pair); the duplicates are kept so the feature counts match (4F, 6F, 12F)."""
    lonlat = lonlat.to(torch.float64)
    freq = dfs_frequencies(frequency_num, min_radius, max_radius).to(lonlat.device)
    lon, lat = lonlat[:, 0:1] * freq, lonlat[:, 1:2] * freq  # (N, F) each
    if name == "grid":
        parts = [torch.sin(lon), torch.cos(lon), torch.sin(lat), torch.cos(lat)]
        return torch.stack(parts, -1).view(len(lonlat), -1)
    if name == "spherec":
        parts = [torch.sin(lat), torch.cos(lat) * torch.cos(lon), torch.cos(lat) * torch.sin(lon)]
    elif name == "spherecplus":
        parts = [torch.sin(lat), torch.cos(lat), torch.sin(lon), torch.cos(lon),
                 torch.cos(lat) * torch.cos(lon), torch.cos(lat) * torch.sin(lon)]
    else:
        raise ValueError(f"unknown double-Fourier-sphere encoding {name!r}; choose one of {DFS}")
    return torch.stack([p for part in parts for p in (part, part)], -1).view(len(lonlat), -1)


def encode(lonlat: torch.Tensor, name: str, legendre: int = 10, frequency_num: int = 16, min_radius: float = 10.0,
           max_radius: float = 360.0) -> torch.Tensor:
    """Features of one encoding as float32 on the device of ``lonlat`` (the encodings have no parameters)."""
    radians = torch.deg2rad(lonlat.to(torch.float64))
    lon, lat = radians[:, 0:1], radians[:, 1:2]
    if name == "direct":  # the official code shifts both angles by -pi
        features = radians - math.pi
    elif name == "cartesian3d":
        features = torch.cat([torch.cos(lon) * torch.cos(lat), torch.sin(lon) * torch.cos(lat), torch.sin(lat)], 1)
    elif name == "wrap":  # Mac Aodha et al. 2019
        features = torch.cat([torch.cos(lon), torch.sin(lon), torch.cos(lat), torch.sin(lat)], 1)
    elif name in DFS:
        features = double_fourier_sphere(lonlat, name, frequency_num, min_radius, max_radius)
    elif name == "sphericalharmonics":
        features = real_spherical_harmonics(lonlat, legendre)
    else:
        raise ValueError(f"unknown location encoding {name!r}; choose one of {ENCODINGS}")
    return features.to(torch.float32)
