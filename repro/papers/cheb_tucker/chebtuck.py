"""Chebyshev interpolation in 3-D and its Tucker compression (the ChebTuck format).

Interpolation at the m Chebyshev points of the second kind x_j = cos(pi j / (m - 1)), j = 0..m-1:
    f(x) ~= sum_{k < m} a_k T_k(x),   a = D f,   D = DCT-I / (m - 1) with a_0 and a_{m-1} halved.
In 3-D the coefficient tensor C = f(x_i, x_j, x_l) x_1 D x_2 D x_3 D (m, m, m) is compressed by HOSVD:
    C ~= core x_1 A_1 x_2 A_2 x_3 A_3,  A_a (m, r_a),
and the result is a Tucker tensor on ANY grid: U_a = T(grid) A_a with T(grid) the Chebyshev-Vandermonde matrix.

Alg. 3 forms C in full (m^3 values). Alg. 4 starts from a CP tensor (lam, V_a) at the Chebyshev points, takes
the coefficient side matrices D V_a, truncates their SVDs (reduced HOSVD), projects the CP terms onto those bases
to a small core, and truncates that core by HOSVD: it never touches m^3 entries.
"""

from dataclasses import dataclass

import numpy as np
from numpy.polynomial import chebyshev
from scipy.fft import dct

from repro.papers.cheb_tucker.kernel import CPTensor, cp_to_full
from repro.papers.cheb_tucker.tucker import hosvd, tucker_to_full


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

    def on_grid(self, points: np.ndarray) -> np.ndarray:
        """The full tensor f(points_i, points_j, points_l), points in [-1, 1]."""
        factors = [chebyshev.chebvander(points, a.shape[0] - 1) @ a for a in self.coefficient_factors]
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


@dataclass
class ReducedCP:
    """Alg. 4's tolerance-free part: side bases Z_a (m, rho_a) and the projected core0 (rho_1, rho_2, rho_3)."""
    bases: list[np.ndarray]
    core0: np.ndarray


def reduce_cp(cp: CPTensor, side_tol: float) -> ReducedCP:
    """Reduced HOSVD of a CP tensor sampled at the m Chebyshev points (cp.factors[a] is (m, R)).

    Z_a: left singular vectors of D V_a diag(|lam|^{1/3}) with s_i > side_tol s_1;
    core0 = sum_r lam_r (Z_1^T D v1_r) o (Z_2^T D v2_r) o (Z_3^T D v3_r).
    """
    scale = np.abs(cp.lam) ** (1 / 3)
    bases, projected = [], []
    for factor in cp.factors:
        coefficients = values_to_coefficients(factor, axis=0)                     # (m, R)
        left, values = left_singular(coefficients * scale)
        basis = left[:, : max(1, int(np.sum(values > side_tol * values[0])))]
        bases.append(basis)
        projected.append(basis.T @ coefficients)
    return ReducedCP(bases, cp_to_full(CPTensor(projected, cp.lam)))


def chebtuck_from_cp(reduced: ReducedCP, tol: float) -> ChebTucker:
    """Alg. 4: HOSVD(core0, tol) = core, P_a; coefficient factors A_a = Z_a P_a."""
    core, small = hosvd(reduced.core0, tol)
    return ChebTucker(core, [z @ p for z, p in zip(reduced.bases, small)])


def interpolation_error(function, degree: int, x_fine: np.ndarray) -> float:
    """max |f - p_degree| on x_fine for the interpolant at degree + 1 Chebyshev points (1-D)."""
    points = chebyshev_points(degree + 1)
    coefficients = values_to_coefficients(function(points))
    return float(np.max(np.abs(function(x_fine) - chebyshev.chebval(x_fine, coefficients))))


