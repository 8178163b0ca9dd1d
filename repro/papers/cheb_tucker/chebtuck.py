"""Chebyshev interpolation in 3-D and its Tucker compression (the ChebTuck format), as the authors' ChebTuck.m.

Interpolation at the m Chebyshev points of the second kind x_j = cos(pi j / (m - 1)), j = 0..m-1:
    f(x) ~= sum_{k < m} a_k T_k(x),   a = D f,   D = DCT-I / (m - 1) with a_0 and a_{m-1} halved.
The input is a CP tensor sampled on a cell-centred grid (lam, U_a with U_a (n, R)); each factor column is carried
to the Chebyshev points by a not-a-knot cubic spline (MATLAB's interp1 'spline', extrapolating beyond the outer
cell centres), V_a = S(U_a) (m, R). The result is a Tucker tensor on ANY grid: core x_a (T(grid) A_a), with
T(grid) the Chebyshev-Vandermonde matrix and A_a (m, r_a) coefficient factors.

Alg. 3 ('F'): the m^3 values of the CP tensor at the Chebyshev points, their coefficient tensor C, and HOSVD(C)
  with the relative Frobenius tolerance tol ||C||_F / sqrt(3) per mode (hosvd_s.m).
Alg. 4 ('R', rhosvd.m): the coefficient side matrices C_a = D V_a (m, R), NOT scaled by lam; per mode the left
  singular vectors of C_a whose discarded tail sqrt(sum_{i > r} s_i^2) exceeds the ABSOLUTE threshold tol / 3;
  the core is the projected CP sum  sum_r lam_r (A_1^T c1_r) o (A_2^T c2_r) o (A_3^T c3_r), with no second HOSVD.
  It never forms m^3 entries; its ranks and errors differ from Alg. 3's (different truncation).
"""

from dataclasses import dataclass

import numpy as np
from numpy.polynomial import chebyshev
from scipy.fft import dct
from scipy.interpolate import CubicSpline

from repro.papers.cheb_tucker.kernel import CPTensor, cp_to_full
from repro.papers.cheb_tucker.tucker import hosvd, tolerance_rank, tucker_to_full


def chebyshev_points(m: int) -> np.ndarray:
    """Second-kind points cos(pi j / (m - 1)), j = 0..m-1 (descending, as the DCT-I wants them)."""
    return np.cos(np.pi * np.arange(m) / (m - 1))


def values_to_coefficients(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """Chebyshev coefficients of the interpolant through `values` at chebyshev_points along `axis`."""
    m = values.shape[axis]
    coefficients = dct(values, type=1, axis=axis) / (m - 1)
    ends = [slice(None)] * values.ndim
    for index in (0, m - 1):
        ends[axis] = index
        coefficients[tuple(ends)] /= 2
    return coefficients


@dataclass
class ChebTucker:
    """core (r1, r2, r3) and coefficient factors A_a (m, r_a): f ~= sum core[abc] (T A_1)_a (T A_2)_b (T A_3)_c."""
    core: np.ndarray
    coefficient_factors: list[np.ndarray]

    @property
    def ranks(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.core.shape)

    @property
    def parameters(self) -> int:
        """r1 r2 r3 + m (r1 + r2 + r3) (the paper's storage count)."""
        return int(self.core.size + sum(a.size for a in self.coefficient_factors))

    def on_grid(self, points: np.ndarray, z_points: np.ndarray | None = None) -> np.ndarray:
        """The tensor f(points_i, points_j, z_l) (z = points unless z_points is given), points in [-1, 1]."""
        modes = [points, points, points if z_points is None else z_points]
        factors = [chebyshev.chebvander(x, a.shape[0] - 1) @ a for x, a in zip(modes, self.coefficient_factors)]
        return tucker_to_full(self.core, factors)


def coefficient_tensor(values: np.ndarray) -> np.ndarray:
    for axis in range(values.ndim):
        values = values_to_coefficients(values, axis)
    return values


def chebtuck_full(values: np.ndarray, tol: float) -> ChebTucker:
    """Alg. 3: values at the m^3 Chebyshev points -> coefficient tensor C -> HOSVD(C, tol)."""
    core, factors = hosvd(coefficient_tensor(values), tol)
    return ChebTucker(core, factors)


def left_singular(wide: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Left singular vectors and values of a wide (m, R) matrix via QR of its transpose (R >> m):
    wide^T = Q S  ->  wide = S^T Q^T, so the SVD of the small S^T (m, m) gives them."""
    _, small = np.linalg.qr(wide.T)
    left, values, _ = np.linalg.svd(small.T)
    return left, values


def spline_to_chebyshev(grid: np.ndarray, factor: np.ndarray, m: int) -> np.ndarray:
    """Columns of `factor` (len(grid), R) at the m Chebyshev points: not-a-knot cubic spline through the grid
    values, extrapolated outside the outer cell centres (interp1(grid, U, chebpts(m), 'spline', 'extrap')).
    The spline is linear in the data, so it is applied as the (m, n) matrix W of the splines of the unit
    vectors: W U costs m n R instead of building R piecewise polynomials."""
    spline = CubicSpline(grid, np.eye(grid.size), axis=0, bc_type="not-a-knot", extrapolate=True)
    return spline(chebyshev_points(m)) @ factor


def cp_at_chebyshev(cp: CPTensor, grid: np.ndarray, m: int) -> CPTensor:
    """The grid CP tensor carried to the m^3 Chebyshev points, factor by factor."""
    return CPTensor([spline_to_chebyshev(grid, factor, m) for factor in cp.factors], cp.lam)


def rhosvd(cp: CPTensor, tol: float) -> ChebTucker:
    """Alg. 4 (rhosvd.m) on a CP tensor at the Chebyshev points: side matrices C_a = D V_a, per mode the left
    singular vectors whose discarded tail exceeds tol / d (absolute), core = the CP sum projected on them."""
    bases, projected = [], []
    for factor in cp.factors:
        coefficients = values_to_coefficients(factor, axis=0)                     # (m, R), unscaled
        left, values = left_singular(coefficients)
        basis = left[:, :tolerance_rank(values, tol / len(cp.factors))]
        bases.append(basis)
        projected.append(basis.T @ coefficients)
    return ChebTucker(cp_to_full(CPTensor(projected, cp.lam)), bases)


def interpolation_error(function, degree: int, x_fine: np.ndarray) -> float:
    """max |f - p_degree| on x_fine for the interpolant at degree + 1 Chebyshev points (1-D)."""
    points = chebyshev_points(degree + 1)
    coefficients = values_to_coefficients(function(points))
    return float(np.max(np.abs(function(x_fine) - chebyshev.chebval(x_fine, coefficients))))


