"""Operator-learning data generated from PDEs (also used by the operator_ext paper).

burgers_pairs  1D viscous Burgers on the periodic unit interval: (u0, u(t=1)) pairs
darcy_pairs    2D Darcy flow on the unit square with a two-valued coefficient: (a, u) pairs
"""

import math

import numpy as np
import scipy.sparse as sp
from scipy.fft import idctn
from scipy.sparse.linalg import spsolve


def burgers_initial_conditions(count: int, points: int, rng: np.random.Generator) -> np.ndarray:
    """u0 ~ N(0, 625 (-Laplacian + 25 I)^-2) on the periodic unit interval, zero mean.

    In the orthonormal basis sqrt(2) cos(2 pi k x), sqrt(2) sin(2 pi k x) the covariance is diagonal with
    standard deviation 25 / (4 pi^2 k^2 + 25); modes up to the grid's Nyquist limit are sampled.
    """
    k = np.arange(1, points // 2)
    sd = 25.0 / (4 * math.pi ** 2 * k ** 2 + 25.0)
    xi = rng.standard_normal((count, k.size)) + 1j * rng.standard_normal((count, k.size))
    # u = sum_k 2 Re(c_k e^{2 pi i k x}) with c_k = sd_k (xi_k) / sqrt(2), i.e. sqrt(2) sd_k (a cos + b sin).
    coefficients = np.zeros((count, points // 2 + 1), dtype=complex)
    coefficients[:, 1:points // 2] = sd * xi / math.sqrt(2)
    return np.fft.irfft(coefficients * points, n=points, axis=-1)


def burgers_solve(u0: np.ndarray, nu: float, t_final: float, dt: float, snapshots: int = 1) -> np.ndarray:
    """Integrate u_t + (u^2 / 2)_x = nu u_xx (periodic, unit interval) pseudo-spectrally.

    Diffusion is integrated exactly by an integrating factor, the nonlinear term by classical RK4 with the
    2/3 rule against aliasing. Returns the solution at ``snapshots`` equally spaced times ending at t_final
    (shape (snapshots, *u0.shape)); a batch of initial conditions is integrated at once.
    """
    points = u0.shape[-1]
    k = np.fft.rfftfreq(points, d=1.0 / points)
    wavenumber = 2 * math.pi * k
    keep = k < points / 3  # 2/3 dealiasing
    steps = int(round(t_final / dt))
    if steps % snapshots:
        raise ValueError(f"{steps} time steps do not split into {snapshots} snapshots")
    full, half = np.exp(-nu * wavenumber ** 2 * dt), np.exp(-nu * wavenumber ** 2 * dt / 2)

    def nonlinear(u_hat: np.ndarray) -> np.ndarray:
        u = np.fft.irfft(u_hat * keep, n=points, axis=-1)
        return -0.5j * wavenumber * np.fft.rfft(u * u, axis=-1) * keep

    u_hat = np.fft.rfft(u0, axis=-1)
    saved = []
    for step in range(1, steps + 1):
        a = dt * nonlinear(u_hat)
        b = dt * nonlinear(half * (u_hat + a / 2))
        c = dt * nonlinear(half * u_hat + b / 2)
        d = dt * nonlinear(full * u_hat + half * c)
        u_hat = full * u_hat + (full * a + 2 * half * (b + c) + d) / 6
        if step % (steps // snapshots) == 0:
            saved.append(np.fft.irfft(u_hat, n=points, axis=-1))
    return np.stack(saved)


def burgers_pairs(count: int, points: int, nu: float, dt: float, rng: np.random.Generator) -> tuple[np.ndarray,
                                                                                                     np.ndarray]:
    """(u0, u(1)) on ``points`` grid points, float32."""
    u0 = burgers_initial_conditions(count, points, rng)
    u1 = burgers_solve(u0, nu, 1.0, dt)[-1]
    return u0.astype(np.float32), u1.astype(np.float32)


def darcy_coefficients(count: int, points: int, rng: np.random.Generator, high: float = 12.0, low: float = 3.0,
                       tau: float = 3.0, alpha: float = 2.0) -> np.ndarray:
    """a(x) = high where psi(x) >= 0 else low, psi ~ N(0, (-Laplacian + tau^2 I)^-alpha) on the unit square.

    psi is synthesised in the Neumann cosine basis cos(pi k1 x) cos(pi k2 y) (eigenvalues pi^2 |k|^2) on a
    grid of ``points`` x ``points`` nodes; the mean mode is dropped. Only the sign of psi matters.
    """
    k = np.arange(points)
    eigen = math.pi ** 2 * (k[:, None] ** 2 + k[None, :] ** 2) + tau ** 2
    sd = eigen ** (-alpha / 2)
    sd[0, 0] = 0.0
    psi = idctn(rng.standard_normal((count, points, points)) * sd, type=1, axes=(-2, -1))
    return np.where(psi >= 0, high, low)


def darcy_solve(a: np.ndarray, forcing: np.ndarray | float = 1.0) -> np.ndarray:
    """Solve -div(a grad u) = f on the unit square, u = 0 on the boundary, on the nodes of ``a``.

    Five-point finite volumes: the flux between neighbouring nodes uses the harmonic mean of their
    coefficients. Returns u on the same (n x n) node grid, boundary included.
    """
    n = a.shape[0]
    h = 1.0 / (n - 1)
    m = n - 2
    index = np.arange(m * m).reshape(m, m)
    east = 2 * a[1:-1, 1:] * a[1:-1, :-1] / (a[1:-1, 1:] + a[1:-1, :-1])   # face (i, j+1/2), j = 0..n-2
    north = 2 * a[1:, 1:-1] * a[:-1, 1:-1] / (a[1:, 1:-1] + a[:-1, 1:-1])  # face (i+1/2, j), i = 0..n-2
    diagonal = (east[:, :-1] + east[:, 1:] + north[:-1, :] + north[1:, :]) / h ** 2
    rows, cols, values = [index.ravel()], [index.ravel()], [diagonal.ravel()]
    # Couplings between interior neighbours (faces between two interior nodes).
    horizontal = -east[:, 1:-1] / h ** 2
    rows += [index[:, :-1].ravel(), index[:, 1:].ravel()]
    cols += [index[:, 1:].ravel(), index[:, :-1].ravel()]
    values += [horizontal.ravel(), horizontal.ravel()]
    vertical = -north[1:-1, :] / h ** 2
    rows += [index[:-1, :].ravel(), index[1:, :].ravel()]
    cols += [index[1:, :].ravel(), index[:-1, :].ravel()]
    values += [vertical.ravel(), vertical.ravel()]
    matrix = sp.csr_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(m * m,) * 2)
    rhs = np.broadcast_to(np.asarray(forcing, dtype=float), (n, n))[1:-1, 1:-1].ravel()
    u = np.zeros((n, n))
    u[1:-1, 1:-1] = spsolve(matrix, rhs).reshape(m, m)
    return u


def darcy_pairs(count: int, points: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(a, u) pairs on a points x points node grid (float32)."""
    a = darcy_coefficients(count, points, rng)
    u = np.stack([darcy_solve(sample) for sample in a])
    return a.astype(np.float32), u.astype(np.float32)
