"""Real spherical harmonics (e3nn's basis), exact sphere quadrature, and the real Gaunt coefficients.

Conventions (e3nn): a point on the sphere is ``(alpha, beta)`` with ``xyz = (sin b sin a, cos b, sin b cos a)``
(polar axis y); ``Y_l`` has 2l+1 real components ordered m = -l..l, normalisation "integral"
(int_{S^2} Y_{lm} Y_{l'm'} dOmega = delta delta), and

    Y_{lm}(alpha, beta) = (-1)^m Pbar_l^{|m|}(beta) * {sqrt2 sin(|m| alpha), 1, sqrt2 cos(m alpha)}  (m <0, =0, >0)

with Pbar the orthonormal associated Legendre function with the Condon-Shortley phase (scipy's
``sph_legendre_p``), so e3nn's basis has no Condon-Shortley phase. e3nn's ``spherical_harmonics`` stops at
l = 12 and its arbitrary-degree ``spherical_harmonics_alpha_beta`` expands symbolic polynomials (seconds to
build, ~1e-12 cancellation error at l = 16), so degrees up to 2L = 16 are evaluated by the formula above;
tests pin it to e3nn. A vector of coefficients of degrees 0..L is flat, index ``l^2 + l + m``, shape
``(..., (L+1)^2)``.

The real Gaunt coefficients are the integrals of three such harmonics,

    G^{l3 m3}_{l1 m1, l2 m2} = int_{S^2} Y_{l1 m1} Y_{l2 m2} Y_{l3 m3} dOmega,

so that z = G(x, y) are the harmonic coefficients of the product of the two spherical functions
f_x(s) = sum x_{lm} Y_{lm}(s) and f_y(s) (paper, Sec. 3).
"""

import math

import numpy as np
import torch
from e3nn import o3
from scipy.special import sph_legendre_p


def sphere_irreps(lmax: int) -> o3.Irreps:
    """Irreps of a spherical function of degrees 0..lmax: 0e + 1o + 2e + ... (Y_l has parity (-1)^l)."""
    return o3.Irreps([(1, (ell, (-1) ** ell)) for ell in range(lmax + 1)])


def real_harmonics(lmax: int, alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """e3nn's real harmonics of degrees 0..lmax at angles alpha, beta (...) -> (..., (lmax+1)^2), float64."""
    a, b = alpha.detach().cpu().double().numpy(), np.mod(beta.detach().cpu().double().numpy(), 2 * np.pi)
    # beta in (pi, 2 pi) is the point (alpha + pi, 2 pi - beta): fold it back, Legendre functions want [0, pi]
    a, b = np.where(b > np.pi, a + np.pi, a), np.where(b > np.pi, 2 * np.pi - b, b)
    columns = []
    for ell in range(lmax + 1):
        for m in range(-ell, ell + 1):
            k = abs(m)
            azimuthal = np.sqrt(2) * np.sin(k * a) if m < 0 else (np.sqrt(2) * np.cos(k * a) if m > 0 else 1.0)
            columns.append((-1) ** k * sph_legendre_p(ell, k, b)[0] * azimuthal)  # [0]: no derivatives
    return torch.tensor(np.stack(np.broadcast_arrays(*columns), -1), dtype=torch.float64)


def sphere_quadrature(degree: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Nodes alpha, beta (P,) and weights (P,) integrating every spherical polynomial of degree <= `degree`
    exactly: Gauss-Legendre in cos(beta) with degree//2 + 1 nodes times degree+1 equispaced alphas."""
    cos_beta, w_beta = np.polynomial.legendre.leggauss(degree // 2 + 1)
    alpha = 2 * np.pi * np.arange(degree + 1) / (degree + 1)
    a, b = np.meshgrid(alpha, np.arccos(cos_beta), indexing="ij")
    weights = np.outer(np.full(alpha.size, 2 * np.pi / alpha.size), w_beta)
    return tuple(torch.tensor(v.reshape(-1), dtype=torch.float64) for v in (a, b, weights))


def real_gaunt_table(lmax_in: int, lmax_out: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """G[i, j, k] = int Y_i Y_j Y_k dOmega for i, j of degree <= lmax_in and k of degree <= lmax_out.

    Shape ((lmax_in+1)^2, (lmax_in+1)^2, (lmax_out+1)^2). Exact: the integrand is a spherical polynomial of
    degree <= 2 lmax_in + lmax_out, integrated by `sphere_quadrature`.
    """
    alpha, beta, weights = sphere_quadrature(2 * lmax_in + lmax_out)
    y_out = real_harmonics(lmax_out, alpha, beta)
    y_in = y_out[:, : (lmax_in + 1) ** 2]
    pairs = (weights[:, None, None] * y_in[:, :, None] * y_in[:, None, :]).reshape(len(weights), -1)
    n = y_in.shape[1]
    return (pairs.T @ y_out).reshape(n, n, y_out.shape[1]).to(dtype)


def degree_slice(ell: int) -> slice:
    """Where degree l sits in a flat coefficient vector."""
    return slice(ell * ell, (ell + 1) * (ell + 1))


def gaunt_block(table: torch.Tensor, l1: int, l2: int, l3: int) -> torch.Tensor:
    """The (2l1+1, 2l2+1, 2l3+1) block of a Gaunt table."""
    return table[degree_slice(l1), degree_slice(l2), degree_slice(l3)]


def wigner_3j_zero(l1: int, l2: int, l3: int) -> float:
    """The 3j symbol (l1 l2 l3; 0 0 0) in closed form: 0 when l1+l2+l3 is odd, else

    (-1)^g sqrt((J-2l1)! (J-2l2)! (J-2l3)! / (J+1)!) g! / ((g-l1)! (g-l2)! (g-l3)!),  J = 2g = l1+l2+l3.
    """
    total = l1 + l2 + l3
    if total % 2 or l3 < abs(l1 - l2) or l3 > l1 + l2:
        return 0.0
    g = total // 2
    f = math.factorial
    root = math.sqrt(f(total - 2 * l1) * f(total - 2 * l2) * f(total - 2 * l3) / f(total + 1))
    return (-1) ** g * root * f(g) / (f(g - l1) * f(g - l2) * f(g - l3))


def gaunt_scale_closed_form(l1: int, l2: int, l3: int) -> float:
    """|Frobenius norm| of a Gaunt block: sqrt((2l1+1)(2l2+1)(2l3+1) / 4pi) |(l1 l2 l3; 0 0 0)|.

    Follows from gaunt = sqrt(prod(2l+1)/4pi) (l1 l2 l3; 0 0 0)(l1 l2 l3; m1 m2 m3) and sum_m 3j^2 = 1; a
    change to a real basis is unitary and keeps the norm.
    """
    return math.sqrt((2 * l1 + 1) * (2 * l2 + 1) * (2 * l3 + 1) / (4 * math.pi)) * abs(wigner_3j_zero(l1, l2, l3))


def gaunt_path_factor(l1: int, l2: int, l3: int) -> float:
    """c(l1, l2, l3) with G_block = c * W, W = e3nn's wigner_3j (unit Frobenius norm, the CG tensor).

    The invariants of l1 x l2 x l3 form a line, so the Gaunt block is a multiple of W and
    c = <G_block, W> = int sum_ijk W_ijk Y_i Y_j Y_k dOmega. The integrand is rotation invariant, hence
    constant on the sphere: c = 4 pi sum_ijk W_ijk Y_i(s0) Y_j(s0) Y_k(s0) at any single point s0.
    """
    w = o3.wigner_3j(l1, l2, l3, dtype=torch.float64)
    y = real_harmonics(max(l1, l2, l3), torch.tensor(0.7), torch.tensor(1.1))  # any point s0
    y1, y2, y3 = (y[degree_slice(ell)] for ell in (l1, l2, l3))
    return float(4 * math.pi * torch.einsum("ijk,i,j,k->", w, y1, y2, y3))


def rotation_matrix_of_harmonics(lmax: int, rotation: torch.Tensor) -> torch.Tensor:
    """D[i, j] = int Y_i(R s) Y_j(s) dOmega(s), so that Y(R s) = D Y(s) (block diagonal, degrees 0..lmax).

    The exact quadrature of degree 2 lmax (float64). e3nn's ``D_from_matrix`` goes through Euler angles and
    ``torch.matrix_exp``, which leaves errors up to ~1e-10 at some rotations: more than the 1e-15 equivariance
    error of the products that it would be used to measure.
    """
    alpha, beta, weights = sphere_quadrature(2 * lmax)
    points = o3.angles_to_xyz(alpha, beta)
    rotated_alpha, rotated_beta = o3.xyz_to_angles(points @ rotation.double().cpu().T)
    return (real_harmonics(lmax, rotated_alpha, rotated_beta) * weights[:, None]).T @ real_harmonics(lmax, alpha, beta)
