"""Joukowski airfoils in exact incompressible potential flow (free stream speed U = 1).

A circle of radius R = |1 - mu| centred at mu = -a + ib passes through zeta = 1; the map z = zeta + 1/zeta
sends it to an airfoil with a cusped trailing edge at z = 2. The flow past the circle with circulation
Gamma has the complex velocity

    w(zeta) = e^{-i alpha} - R^2 e^{i alpha} / (zeta - mu)^2 + i Gamma / (2 pi (zeta - mu)),

and the Kutta condition (w = 0 at zeta = 1, the image of the trailing edge) fixes Gamma = 4 pi R sin(alpha + beta)
with beta = arcsin(b / R). In the airfoil plane u - iv = w(zeta) / (dz/dzeta) = w / (1 - 1/zeta^2), and the
pressure coefficient is Cp = 1 - |u - iv|^2 (Bernoulli). The Kutta-Joukowski law gives the lift per span
rho U Gamma, i.e. C_L = 2 Gamma / c for chord c.
"""

from dataclasses import dataclass

import numpy as np
from matplotlib.path import Path as PolygonPath

# Query points closer than this to zeta = 1 (the cusp, where dz/dzeta = 0) are dropped.
CUSP_EXCLUSION = 0.02


@dataclass(frozen=True)
class Airfoil:
    """One Joukowski shape at one angle of attack (radians)."""

    a: float
    b: float
    alpha: float

    @property
    def mu(self) -> complex:
        return complex(-self.a, self.b)

    @property
    def radius(self) -> float:
        return abs(1 - self.mu)

    @property
    def beta(self) -> float:
        return float(np.arcsin(self.b / self.radius))

    @property
    def circulation(self) -> float:
        """Gamma from the Kutta condition."""
        return 4 * np.pi * self.radius * np.sin(self.alpha + self.beta)

    def surface_angles(self, count: int) -> np.ndarray:
        """Circle-plane angles of the surface polyline, half a step off the trailing edge (theta = -beta) so that
        no vertex sits on the cusp."""
        return -self.beta + 2 * np.pi * (np.arange(count) + 0.5) / count

    def surface(self, count: int) -> np.ndarray:
        """The airfoil polyline: z = zeta + 1/zeta at zeta = mu + R e^{i theta}, counter-clockwise (complex)."""
        return joukowski_map(self.mu + self.radius * np.exp(1j * self.surface_angles(count)))

    def chord(self, count: int) -> float:
        """Distance from the trailing edge (z = 2) to the farthest polyline vertex."""
        return float(np.abs(self.surface(count) - 2).max())

    def lift_coefficient(self, count: int) -> float:
        """Kutta-Joukowski: C_L = 2 Gamma / (U c)."""
        return 2 * self.circulation / self.chord(count)

    def circle_velocity(self, zeta: np.ndarray) -> np.ndarray:
        """w(zeta) = dF/dzeta in the circle plane."""
        r = zeta - self.mu
        return (np.exp(-1j * self.alpha) - self.radius**2 * np.exp(1j * self.alpha) / r**2
                + 1j * self.circulation / (2 * np.pi * r))

    def velocity(self, zeta: np.ndarray) -> np.ndarray:
        """u - iv in the airfoil plane at the image of zeta (never evaluate at zeta = +-1)."""
        return self.circle_velocity(zeta) / (1 - 1 / zeta**2)

    def pressure(self, zeta: np.ndarray) -> np.ndarray:
        """Cp = 1 - |u - iv|^2 (unclipped)."""
        return 1 - np.abs(self.velocity(zeta)) ** 2

    def stagnation_angle(self) -> float:
        """Leading-edge stagnation point on the circle: w = 0 at theta = pi + 2 alpha + beta."""
        return np.pi + 2 * self.alpha + self.beta


def joukowski_map(zeta: np.ndarray) -> np.ndarray:
    return zeta + 1 / zeta


def query_zeta(foil: Airfoil, count: int, s_range: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """Circle-plane query points zeta = mu + R (1 + s) e^{i theta}: s log-uniform (dense near the wall), theta uniform;
    points within CUSP_EXCLUSION of zeta = 1 are redrawn."""
    points = np.empty(0, dtype=complex)
    while points.size < count:
        s = np.exp(rng.uniform(np.log(s_range[0]), np.log(s_range[1]), 2 * count))
        theta = rng.uniform(0, 2 * np.pi, 2 * count)
        zeta = foil.mu + foil.radius * (1 + s) * np.exp(1j * theta)
        points = np.concatenate([points, zeta[np.abs(zeta - 1) >= CUSP_EXCLUSION]])
    return points[:count]


def segment_distance(points: np.ndarray, polyline: np.ndarray) -> np.ndarray:
    """Unsigned distance from each point to the closed polyline (exact point-to-segment distance), chunked."""
    start, end = polyline, np.roll(polyline, -1)
    edge = end - start
    length2 = np.abs(edge) ** 2
    out = np.empty(points.size)
    for lo in range(0, points.size, 4096):
        p = points[lo:lo + 4096, None]
        t = np.clip(((p - start) * edge.conj()).real / length2, 0.0, 1.0)
        out[lo:lo + 4096] = np.abs(p - (start + t * edge)).min(axis=1)
    return out


def signed_distance(points: np.ndarray, polyline: np.ndarray) -> np.ndarray:
    """Signed distance to the polyline: negative inside (matplotlib's point-in-polygon test), positive outside."""
    inside = PolygonPath(np.stack([polyline.real, polyline.imag], 1)).contains_points(
        np.stack([points.real, points.imag], 1))
    return np.where(inside, -1.0, 1.0) * segment_distance(points, polyline)


def pressure_force(cp: np.ndarray, foil: Airfoil, count: int) -> complex:
    """Force coefficient (per unit length) Fx + i Fy = -closed-integral Cp n ds over the counter-clockwise surface
    polyline: with outward n ds = -i dz, F = i * integral Cp (dz/dtheta) dtheta, where
    dz/dtheta = (1 - 1/zeta^2) i R e^{i theta}. The trapezoidal rule on the closed periodic curve is spectrally
    accurate."""
    angles = foil.surface_angles(count)
    zeta = foil.mu + foil.radius * np.exp(1j * angles)
    dz = (1 - 1 / zeta**2) * 1j * foil.radius * np.exp(1j * angles)
    step = 2 * np.pi / count
    return 1j * np.trapezoid(np.append(cp * dz, cp[0] * dz[0]), dx=step)


def lift_from_pressure(cp: np.ndarray, foil: Airfoil, count: int) -> float:
    """C_L from the integrated surface pressure: the force's component normal to the free stream, over the chord."""
    force = pressure_force(cp, foil, count)
    return float((force * np.exp(-1j * foil.alpha)).imag / foil.chord(count))


def drag_from_pressure(cp: np.ndarray, foil: Airfoil, count: int) -> float:
    """C_D from the integrated surface pressure (zero in potential flow: d'Alembert)."""
    force = pressure_force(cp, foil, count)
    return float((force * np.exp(-1j * foil.alpha)).real / foil.chord(count))
