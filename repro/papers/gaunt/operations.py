"""The paper's two other operation classes, each route an ``nn.Module``.

Equivariant convolution (paper, Sec. 3.3; official ``test_equi_conv.ipynb``): features x of degrees 0..L
interact with the spherical harmonics of an edge direction r, z = G(x, Y(r)) of degrees 0..2L,
(edges, channels, (L+1)^2), (edges, 3) -> (edges, channels, (2L+1)^2).

- ``ConvolutionCG``     e3nn's CG full tensor product with Gaunt path weights on (x, Y(r)): O(L^6).
- ``ConvolutionSO2``    eSCN: rotate x into the edge frame, where Y(r) has only m = 0 components, so the
                        product is diagonal in m (an SO(2) convolution), then rotate back: O(L^3).
- ``ConvolutionGrid``   e3nn's sphere grid on (x, Y(r)).
- ``ConvolutionFourier`` the Gaunt product through the 2D Fourier basis on (x, Y(r)), as the official code.

Many-body interaction (paper, Sec. 3.3; official ``test_equi_many-body.ipynb``): MACE's symmetric contraction
with every path weight 1, sum_{nu=1..nu_max} P_L(f^nu), where f = sum_i x_i Y_i and P_L keeps degrees <= L,
(..., (L+1)^2) -> (..., (L+1)^2).

- ``ManyBodyCG``        MACE's route: generalised Gaunt coefficients U_nu built by iterated CG couplings with
                        Gaunt path factors, contracted with x one factor at a time (Horner): O(L^(2 nu + 2)).
- ``ManyBodyGrid``      e3nn's sphere grid: f on the grid, its powers summed pointwise, projected back.
- ``ManyBodyFourier``   the paper's divide and conquer in the 2D Fourier basis: F_nu = F_floor(nu/2) * F_ceil(nu/2)
                        by FFT, each projected back to degrees <= L.
"""

import math

import torch
from e3nn import o3
from torch import nn

from repro.papers.gaunt.harmonics import degree_slice, gaunt_path_factor, rotation_matrix_of_harmonics
from repro.papers.gaunt.products import (
    CGGaunt,
    FourierGaunt,
    FourierToHarmonics,
    HarmonicsToFourier,
    SphereGridGaunt,
    cached,
    fourier_product,
    output_lmax,
)


def edge_harmonics(lmax: int, directions: torch.Tensor) -> torch.Tensor:
    """Y(r) of degrees 0..lmax for unit directions (edges, 3), e3nn's basis and "integral" normalisation."""
    return o3.spherical_harmonics(list(range(lmax + 1)), directions, normalize=True, normalization="integral")


def cg_gaunt_block(l1: int, l2: int, l3: int, dtype: torch.dtype) -> torch.Tensor:
    """The Gaunt block of the path l1 x l2 -> l3 from the CG route: c(l1, l2, l3) times e3nn's wigner_3j."""
    return gaunt_path_factor(l1, l2, l3) * o3.wigner_3j(l1, l2, l3, dtype=dtype)


class ConvolutionCG(nn.Module):
    """z = CG full tensor product of x and Y(r) with Gaunt path weights (the official e3nn baseline)."""

    def __init__(self, lmax: int, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self.lmax = lmax
        self.product = cached(CGGaunt, dtype, lmax)

    def forward(self, x: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
        y = edge_harmonics(self.lmax, directions)[:, None, :].expand_as(x)  # one filter for every channel
        return self.product(x, y)


class ConvolutionGrid(nn.Module):
    """z = FromS2Grid(ToS2Grid(x) * ToS2Grid(Y(r)))."""

    def __init__(self, lmax: int, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self.lmax = lmax
        self.product = cached(SphereGridGaunt, dtype, lmax)

    def forward(self, x: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
        return self.product(x, edge_harmonics(self.lmax, directions)[:, None, :])


class ConvolutionFourier(nn.Module):
    """z = the 2D-Fourier Gaunt product of x and Y(r); the filter's spectrum is computed once per edge and
    broadcast over the channels."""

    def __init__(self, lmax: int, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self.lmax = lmax
        self.product = cached(FourierGaunt, dtype, lmax)

    def forward(self, x: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
        return self.product(x, edge_harmonics(self.lmax, directions)[:, None, :])


def azimuthal_partners(lmax: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For flat index i = (l, m): the index of (l, -m) and m itself, degrees 0..lmax."""
    pairs = [(ell * ell + ell - m, m) for ell in range(lmax + 1) for m in range(-ell, ell + 1)]
    partner, order = zip(*pairs)
    return torch.tensor(partner), torch.tensor(order)


class ConvolutionSO2(nn.Module):
    """eSCN's route (Passaro and Zitnick 2023; the official benchmark's ``escn_implementation``).

    With Q the rotation taking r to the polar axis e_y (e3nn's m = 0 axis), Y(e_y) = D(Q) Y(r) has only the
    m = 0 components Y_{l0}(e_y) = sqrt((2l+1)/4pi), and equivariance gives
        G(x, Y(r)) = D(Q)^T G(D(Q) x, Y(e_y)).
    A real Gaunt coefficient with m2 = 0 vanishes unless m1 = m3 (the alpha integral of two azimuthal factors),
    so in the edge frame z'_{l3 m} = sum_{l1} K_{|m|}[l3, l1] x'_{l1 m} with
    K_{|m|}[l3, l1] = sum_{l2} G^{l3 m}_{l1 m, l2 0} Y_{l20}(e_y), built from the CG blocks c W: O(L^3).
    e3nn's angles give r = R_y(alpha) R_x(beta) e_y, so Q = R_x(-beta) R_y(-alpha); a rotation about y acts on
    each (m, -m) pair as a 2 x 2 rotation by m * angle (O(L^2)), and R_x(b) = P R_y(b) P^T with P the fixed
    rotation taking e_y to e_x, D(P) = J computed once (exact quadrature). Applying the factors
    D(Q) = J D_y(-beta) J^T D_y(-alpha) one after another costs O(L^3) per edge and channel.
    """

    def __init__(self, lmax: int, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        lmax_out = output_lmax(lmax)
        self.lmax, self.lmax_out = lmax, lmax_out
        y_to_x = torch.tensor([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)  # R_z(-pi/2)
        j_full = rotation_matrix_of_harmonics(lmax_out, y_to_x)
        for ell in range(lmax_out + 1):
            self.register_buffer(f"j{ell}", j_full[degree_slice(ell), degree_slice(ell)].to(dtype).contiguous())
        for name, top in (("in", lmax), ("out", lmax_out)):
            partner, order = azimuthal_partners(top)
            self.register_buffer(f"{name}_partner", partner)
            self.register_buffer(f"{name}_m", order.to(dtype))
        # K[m + L, l3, l1] for signed m (K depends on |m| only); zero where l1 or l3 < |m|
        kernel = torch.zeros(2 * lmax + 1, lmax_out + 1, lmax + 1, dtype=torch.float64)
        for l1 in range(lmax + 1):
            for l2 in range(lmax + 1):
                y_l2 = math.sqrt((2 * l2 + 1) / (4 * math.pi))
                for l3 in range(abs(l1 - l2), l1 + l2 + 1):
                    block = cg_gaunt_block(l1, l2, l3, torch.float64)  # (m1, m2, m3)
                    for m in range(-min(l1, l3), min(l1, l3) + 1):
                        kernel[m + lmax, l3, l1] += block[m + l1, l2, m + l3] * y_l2
        self.register_buffer("kernel", kernel.to(dtype))
        # flat input index of (l1, m) per (m, l1) slot, and where each output (l3, m) sits in (m, l3)
        fill = (lmax + 1) ** 2
        gather = torch.full((2 * lmax + 1, lmax + 1), fill)
        for m in range(-lmax, lmax + 1):
            for ell in range(abs(m), lmax + 1):
                gather[m + lmax, ell] = ell * ell + ell + m
        self.register_buffer("gather", gather)
        scatter = torch.tensor([(m + lmax) * (lmax_out + 1) + ell if abs(m) <= lmax else -1
                                for ell in range(lmax_out + 1) for m in range(-ell, ell + 1)])
        self.register_buffer("scatter", scatter)

    def rotate_y(self, v: torch.Tensor, angle: torch.Tensor, which: str) -> torch.Tensor:
        """D(R_y(angle)) v: (l, m) <- cos(|m| t) v_{lm} - sign(m) sin(|m| t) v_{l,-m}; angle (edges,)."""
        m = getattr(self, f"{which}_m")
        t = angle[:, None, None] * m.abs()
        return torch.cos(t) * v - torch.sign(m) * torch.sin(t) * v[..., getattr(self, f"{which}_partner")]

    def apply_j(self, v: torch.Tensor, top: int, transpose: bool) -> torch.Tensor:
        """J v (or J^T v) degree by degree, on degrees 0..top."""
        blocks = [v[..., degree_slice(ell)] @ (getattr(self, f"j{ell}") if transpose else getattr(self, f"j{ell}").T)
                  for ell in range(top + 1)]
        return torch.cat(blocks, -1)

    def forward(self, x: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
        alpha, beta = o3.xyz_to_angles(directions)
        # x' = D(Q) x = J D_y(-beta) J^T D_y(-alpha) x
        rotated = self.rotate_y(x, -alpha, "in")
        rotated = self.apply_j(self.rotate_y(self.apply_j(rotated, self.lmax, True), -beta, "in"), self.lmax, False)
        padded = torch.cat([rotated, rotated.new_zeros(*rotated.shape[:-1], 1)], -1)
        by_m = padded[..., self.gather]  # (edges, channels, m, l1)
        in_frame = torch.einsum("ecml,mkl->ecmk", by_m, self.kernel).flatten(-2)  # (edges, channels, m * l3)
        in_frame = torch.cat([in_frame, in_frame.new_zeros(*in_frame.shape[:-1], 1)], -1)[..., self.scatter]
        # z = D(Q)^T z' = D_y(alpha) J D_y(beta) J^T z'
        back = self.apply_j(self.rotate_y(self.apply_j(in_frame, self.lmax_out, True), beta, "out"), self.lmax_out,
                            False)
        return self.rotate_y(back, alpha, "out")


def generalized_gaunt(lmax: int, correlation: int, dtype: torch.dtype) -> list[torch.Tensor]:
    """U_nu[k, i_1, ..., i_nu] = int Y_k Y_{i_1} ... Y_{i_nu} dOmega (k of degree <= lmax, nu = 1..correlation),
    MACE's way: coupled one factor at a time with CG blocks times the Gaunt factors c(l1, l2, l3),
    V_nu[K', ...] = sum_K G[K, i_nu, K'] V_{nu-1}[K, ...]. MACE sums these paths with learnt weights; with
    every weight 1 (the official benchmark) the paths are summed here once. Intermediate degrees above
    min(j, nu - j + 1) L after j factors cannot reach an output of degree <= L and are left out."""
    dim = (lmax + 1) ** 2
    tensors = [torch.eye(dim, dtype=torch.float64)]
    for nu in range(2, correlation + 1):
        partial = torch.eye(dim, dtype=torch.float64)  # V_1: degrees <= L
        for j in range(2, nu + 1):
            top_in = min(j - 1, nu - j + 2) * lmax
            top_out = min(j, nu - j + 1) * lmax
            coupling = torch.zeros((top_in + 1) ** 2, dim, (top_out + 1) ** 2, dtype=torch.float64)
            for l1 in range(top_in + 1):
                for l2 in range(lmax + 1):
                    for l3 in range(abs(l1 - l2), min(l1 + l2, top_out) + 1):
                        if (l1 + l2 + l3) % 2 == 0:  # the Gaunt factor of odd paths is 0
                            coupling[degree_slice(l1), degree_slice(l2), degree_slice(l3)] = cg_gaunt_block(
                                l1, l2, l3, torch.float64)
            partial = torch.einsum("K...,Kik->k...i", partial[: (top_in + 1) ** 2], coupling)
        tensors.append(partial)
    return [u.to(dtype) for u in tensors]


class ManyBodyCG(nn.Module):
    """MACE's symmetric contraction with unit weights, Horner's scheme as in MACE's ``Contraction``:
    A = U_nu x + U_{nu-1}, A = A x + U_{nu-2}, ..., z = A x (each product contracts A's last index with x).
    The first step touches every entry of U_nu: (L+1)^(2 nu + 2) multiply-adds per channel."""

    def __init__(self, lmax: int, correlation: int, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self.correlation = correlation
        for nu, u in enumerate(generalized_gaunt(lmax, correlation, dtype), start=1):
            self.register_buffer(f"u{nu}", u)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1])  # (n, i)
        top = getattr(self, f"u{self.correlation}")
        state = torch.tensordot(flat, top, dims=([1], [top.dim() - 1]))  # (n, k, i_1, ..., i_{nu-1})
        for nu in range(self.correlation - 1, 0, -1):
            state = state + getattr(self, f"u{nu}")
            state = (state.reshape(len(flat), -1, flat.shape[1]) @ flat[:, :, None]).reshape(state.shape[:-1])
        return state.reshape(x.shape)


class ManyBodyGrid(nn.Module):
    """f on an e3nn S^2 grid, g = f + f^2 + ... + f^nu pointwise, projected back to degrees <= L; the grid is
    exact for the integrand of degree (nu + 1) L."""

    def __init__(self, lmax: int, correlation: int, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        degree = (correlation + 1) * lmax
        res = (2 * (degree // 2 + 1), degree + 1)
        self.correlation = correlation
        self.to_grid = o3.ToS2Grid(lmax, res, normalization="integral", dtype=dtype)
        self.from_grid = o3.FromS2Grid(res, lmax, normalization="integral", dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.to_grid(x)
        power, total = f, f
        for _ in range(2, self.correlation + 1):
            power = power * f
            total = total + power
        return self.from_grid(total)


class ManyBodyFourier(nn.Module):
    """The official route: F_1 = Fourier(x) ((2L+1) x (L+1) half spectrum); for nu = 2..nu_max,
    F_nu = F_floor(nu/2) * F_ceil(nu/2) by a zero-padded FFT on the (2 nu L + 1)^2 torus, and P_L(f^nu) from
    F_nu; z = x + sum_nu P_L(f^nu)."""

    def __init__(self, lmax: int, correlation: int, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self.lmax, self.correlation = lmax, correlation
        self.to_fourier = HarmonicsToFourier(lmax, 2 * lmax + 1, dtype)
        self.from_fourier = nn.ModuleList(FourierToHarmonics(lmax, 2 * nu * lmax + 1, dtype)
                                          for nu in range(2, correlation + 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spectra = {1: self.to_fourier(x)}
        total = x
        for nu in range(2, self.correlation + 1):
            spectra[nu] = fourier_product(spectra[nu // 2], spectra[nu - nu // 2], 2 * nu * self.lmax + 1)
            total = total + self.from_fourier[nu - 2](spectra[nu])
        return total
