"""The full Gaunt tensor product z = G(x, y) four ways, each an ``nn.Module`` (x, y) -> z.

x, y: (..., (L+1)^2) real coefficients of degrees 0..L (e3nn basis, see harmonics.py);
z: (..., (2L+1)^2), degrees 0..2L (the product of two degree-L functions has degree <= 2L, so nothing is
truncated).

- ``DenseGaunt``     z_k = sum_ij G_ijk x_i y_j with the full table: O(L^6) per product.
- ``CGGaunt``        e3nn's Clebsch-Gordan ``FullTensorProduct`` (every path l1 x l2 -> l3), then the paths
                     summed with the Gaunt factors c(l1, l2, l3) (G_block = c W): O(L^6).
- ``SphereGridGaunt`` values on an e3nn S^2 grid, pointwise product, projection back (e3nn's ToS2Grid /
                     FromS2Grid; its Legendre step is a dense (m, beta, lm) contraction, O(L^4)).
- ``FourierGaunt``   the paper's method: harmonics -> 2D Fourier coefficients on the torus (alpha, beta),
                     2D convolution by zero-padded FFT, 2D Fourier -> harmonics: O(L^3).
"""

import functools
import math

import torch
from e3nn import o3
from torch import nn

from repro.papers.gaunt.harmonics import (
    gaunt_path_factor,
    real_gaunt_table,
    real_harmonics,
    sphere_irreps,
)


def output_lmax(lmax: int) -> int:
    return 2 * lmax


@functools.cache
def cached(route: type, dtype: torch.dtype, *sizes: int) -> nn.Module:
    """One route's constants, built once per process: they depend only on the sizes (e3nn's CG product at
    L = 8 takes seconds to generate), and every replicate and operation class times the same module."""
    return route(*sizes, dtype)


class DenseGaunt(nn.Module):
    """z = (x outer y) @ G with the dense real Gaunt table G ((L+1)^4 x (2L+1)^2 entries)."""

    def __init__(self, lmax: int, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        table = real_gaunt_table(lmax, output_lmax(lmax), dtype)
        self.register_buffer("table", table.reshape(-1, table.shape[-1]))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        pairs = (x[..., :, None] * y[..., None, :]).flatten(-2)
        return pairs @ self.table


class CGGaunt(nn.Module):
    """e3nn ``FullTensorProduct`` with unnormalised paths (out_k = sum_ij W_ijk x_i y_j per path), then
    z_{l3} = sum_{l1, l2} c(l1, l2, l3) out_{l1 l2 -> l3}. Paths with l1+l2+l3 odd get c = 0: the Gaunt product
    keeps only the parity-even (symmetric) couplings of the full CG product."""

    def __init__(self, lmax: int, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        irreps = sphere_irreps(lmax)
        self.tp = o3.FullTensorProduct(irreps, irreps, irrep_normalization="none", path_normalization="none")
        slices = self.tp.irreps_out.slices()
        target = torch.zeros(self.tp.irreps_out.dim, dtype=torch.long)
        weight = torch.zeros(self.tp.irreps_out.dim, dtype=dtype)
        for ins in self.tp.instructions:  # one path l1 x l2 -> l3 each, multiplicity 1
            l1, l2, l3 = irreps[ins.i_in1].ir.l, irreps[ins.i_in2].ir.l, self.tp.irreps_out[ins.i_out].ir.l
            target[slices[ins.i_out]] = torch.arange(l3 * l3, (l3 + 1) * (l3 + 1))
            weight[slices[ins.i_out]] = gaunt_path_factor(l1, l2, l3)
        self.out_dim = (output_lmax(lmax) + 1) ** 2
        self.register_buffer("target", target)
        self.register_buffer("weight", weight)
        self.tp.to(dtype)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        paths = self.tp(x, y) * self.weight
        z = paths.new_zeros(*paths.shape[:-1], self.out_dim)
        return z.index_add_(-1, self.target, paths)


class SphereGridGaunt(nn.Module):
    """z = FromS2Grid(ToS2Grid(x) * ToS2Grid(y)) on a grid exact for degree 2L (res_beta = 2(2L+1))."""

    def __init__(self, lmax: int, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        lmax_out = output_lmax(lmax)
        res = (2 * (lmax_out + 1), 2 * lmax_out + 1)
        self.to_grid = o3.ToS2Grid(lmax, res, normalization="integral", dtype=dtype)
        self.from_grid = o3.FromS2Grid(res, lmax_out, normalization="integral", dtype=dtype)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.from_grid(self.to_grid(x) * self.to_grid(y))


def torus_fourier_coefficients(lmax: int, size: int) -> torch.Tensor:
    """A[i, u, v] with Y_i(alpha, beta) = sum_{u,v} A[i, u, v] exp(i (u beta + v alpha)), i of degree <= lmax.

    beta runs over a full period [0, 2 pi) (points with beta > pi are the sphere again, reached the other way
    round); Y_l is a trigonometric polynomial of degree l in each angle, so the FFT of `size` >= 2 lmax + 1
    equispaced samples per angle is exact. Shape ((lmax+1)^2, size, size), u, v in FFT order (index k mod size).
    """
    angles = 2 * math.pi * torch.arange(size, dtype=torch.float64) / size
    beta, alpha = torch.meshgrid(angles, angles, indexing="ij")
    values = real_harmonics(lmax, alpha, beta)  # (beta, alpha, i); beta > pi evaluates the same formula
    return torch.fft.fft2(values.permute(2, 0, 1), norm="forward")  # complex128


def half_sine_integral(k: torch.Tensor) -> torch.Tensor:
    """int_0^pi sin(b) exp(i k b) db for integer k: (1 + (-1)^k) / (1 - k^2) when |k| != 1, +-i pi/2 at k = +-1."""
    k = k.double()
    one = k.abs() == 1
    real = torch.where(one, 0.0, (1 + torch.cos(math.pi * k)) / torch.where(one, 1.0, 1 - k * k))
    imag = torch.where(one, torch.sign(k) * math.pi / 2, 0.0)
    return torch.complex(real, imag)


def frequency_slots(lmax: int) -> list[list[tuple[int, int]]]:
    """For each alpha-frequency k = 0..lmax, the harmonics (l, m) with |m| = k: Y_{lm} has alpha-frequencies
    +-m only, so frequency k of a function only involves these (at most 2(lmax+1) of them)."""
    return [[(ell, m) for m in sorted({k, -k}) for ell in range(k, lmax + 1)] for k in range(lmax + 1)]


def slot_table(slots: list[list[tuple[int, int]]], fill: int) -> torch.Tensor:
    """Flat indices l^2 + l + m of `slots` padded with `fill` into a (k, j) table."""
    width = max(map(len, slots))
    return torch.tensor([[ell * ell + ell + m for ell, m in row] + [fill] * (width - len(row)) for row in slots])


class HarmonicsToFourier(nn.Module):
    """(..., (L+1)^2) harmonic coefficients -> (..., N, L+1) Fourier coefficients F[u, v >= 0] on an N x N torus
    (u in FFT order; N >= 2L+1 odd). Y_{lm} has alpha-frequencies +-m only, so per frequency v the map takes the
    <= 2(L+1) coefficients with |m| = v to N values of u: O(L^3) in all; f is real, so v >= 0 suffices."""

    def __init__(self, lmax: int, size: int, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        coeffs = torus_fourier_coefficients(lmax, size)  # (i, u, v)
        slots = frequency_slots(lmax)
        forward = torch.zeros(lmax + 1, max(map(len, slots)), size, dtype=coeffs.dtype)  # (v, j, u)
        for v, row in enumerate(slots):
            for j, (ell, m) in enumerate(row):
                forward[v, j] = coeffs[ell * ell + ell + m, :, v]
        self.register_buffer("in_slots", slot_table(slots, fill=(lmax + 1) ** 2))  # the fill hits a zero
        self.register_buffer("forward_real", forward.real.to(dtype))
        self.register_buffer("forward_imag", forward.imag.to(dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = torch.cat([x, x.new_zeros(*x.shape[:-1], 1)], -1)
        grouped = padded[..., self.in_slots]  # (..., v, j)
        real = torch.einsum("...vj,vju->...uv", grouped, self.forward_real)
        imag = torch.einsum("...vj,vju->...uv", grouped, self.forward_imag)
        return torch.complex(real, imag)


class FourierToHarmonics(nn.Module):
    """(..., N, K) Fourier coefficients H[u, v >= 0] of a real function on the N x N torus -> its harmonic
    coefficients of degrees 0..lmax_out, (..., (lmax_out+1)^2) (K > lmax_out; frequencies v > lmax_out are not
    needed: Y_{lm} has alpha-frequencies +-m only).

    z_{lm} = int_0^{2pi} d alpha int_0^pi sin(beta) d beta h Y_{lm}
           = 2 pi sum_{u, v=-+m} H[u, v] sum_{u'} A_{lm}[u', -v] I(u + u'),
    I(k) = int_0^pi sin(b) e^{ikb} db (beta only over [0, pi]); per frequency |m| a map from N values of u to
    the <= 2(lmax_out+1) outputs with that |m|: O(N lmax_out^2). With H[u, -k] = conj(H[-u, k]) the map acts on
    Re H and Im H at k = |m| >= 0 with real coefficients. Exact when h is a trigonometric polynomial held by N.
    """

    def __init__(self, lmax_out: int, size: int, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        coeffs = torus_fourier_coefficients(lmax_out, size)  # (i, u, v)
        freq = torch.fft.fftfreq(size, 1 / size).round().long()
        integrals = half_sine_integral(freq[:, None] + freq[None, :])  # I(u + u'), (u, u')
        negate_u = (-freq) % size
        slots = frequency_slots(lmax_out)
        real = torch.zeros(lmax_out + 1, max(map(len, slots)), size, dtype=torch.float64)  # (k, j, u)
        imag = torch.zeros_like(real)
        for k, row in enumerate(slots):
            for j, (ell, m) in enumerate(row):
                # q_s[u] pairs H[u, v = s k] with A_{lm}[u', -s k]: z = Re sum_u q_+[u] H[u, k] + q_-[u] H[u, -k]
                a_lm = coeffs[ell * ell + ell + m]
                q_plus, q_minus = (2 * math.pi * integrals @ a_lm[:, (-s * k) % size] for s in (1, -1))
                if k == 0:
                    q_minus = torch.zeros_like(q_minus)  # v = 0 counted once
                # H[u, -k] = conj(H[-u, k]), so Re(q H) + Re(q'[-u] conj H)
                #   = Re H (Re q + Re q'[-u]) + Im H (-Im q + Im q'[-u])
                real[k, j] = q_plus.real + q_minus.real[negate_u]
                imag[k, j] = -q_plus.imag + q_minus.imag[negate_u]
        position = {ell * ell + ell + m: k * real.shape[1] + j
                    for k, row in enumerate(slots) for j, (ell, m) in enumerate(row)}
        self.lmax_out = lmax_out
        self.register_buffer("out_positions", torch.tensor([position[i] for i in sorted(position)]))
        self.register_buffer("backward_real", real.to(dtype))
        self.register_buffer("backward_imag", imag.to(dtype))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = h[..., : self.lmax_out + 1]
        grouped = (torch.einsum("...uk,kju->...kj", h.real, self.backward_real)
                   + torch.einsum("...uk,kju->...kj", h.imag, self.backward_imag))
        return grouped.flatten(-2)[..., self.out_positions]


def fourier_product(f: torch.Tensor, g: torch.Tensor, size: int) -> torch.Tensor:
    """The 2D convolution of two half spectra F[u, v >= 0], G (u in FFT order, odd lengths) by FFT: both are
    zero-padded to an N x N torus (N = `size`, at least the sum of their lengths - 1, so nothing wraps round),
    evaluated there by the inverse FFT, multiplied pointwise, and transformed back. O(N^2 log N)."""
    grid = (size, size)
    return torch.fft.rfft2(torch.fft.irfft2(pad_spectrum(f, size), s=grid, norm="forward")
                           * torch.fft.irfft2(pad_spectrum(g, size), s=grid, norm="forward"), norm="forward")


def pad_spectrum(f: torch.Tensor, size: int) -> torch.Tensor:
    """(..., n, n//2 + 1) half spectrum (u in FFT order, n odd) -> (..., size, size//2 + 1), frequencies kept."""
    n, half = f.shape[-2], f.shape[-2] // 2
    if n == size:
        return f
    rows = torch.cat([f[..., : half + 1, :], f.new_zeros(*f.shape[:-2], size - n, f.shape[-1]), f[..., half + 1:, :]],
                     -2)
    return torch.cat([rows, rows.new_zeros(*rows.shape[:-1], size // 2 + 1 - rows.shape[-1])], -1)


class FourierGaunt(nn.Module):
    """The Gaunt product through the 2D Fourier basis (paper, Sec. 3.2), O(L^3) per product.

    On the torus (alpha, beta) in [0, 2pi)^2 (beta > pi is the sphere again), Y_{lm} is a trigonometric
    polynomial: Y_{lm} = sum_{u,v} A_{lm}[u, v] exp(i (u beta + v alpha)), |u| <= l, v = +-m only.

    1. Harmonics -> Fourier (``HarmonicsToFourier``): O(L^3).
    2. Product: zero-padded to N = 4L+1 per axis, the inverse FFT evaluates f_x, f_y on an N x N torus grid;
       their pointwise product h there is the 2D convolution H = F * G, and the FFT returns its coefficients
       (|u|, |v| <= 2L: no wrap-around at this N): O(L^2 log L).
    3. Fourier -> harmonics of degrees 0..2L (``FourierToHarmonics``): O(L^3).
    The conversion constants A are regenerated here by exact FFT sampling (not copied from the authors).
    """

    def __init__(self, lmax: int, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self.size = 2 * output_lmax(lmax) + 1  # N = 4L+1 frequencies per axis hold the product exactly
        self.to_fourier = HarmonicsToFourier(lmax, self.size, dtype)
        self.from_fourier = FourierToHarmonics(output_lmax(lmax), self.size, dtype)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.from_fourier(fourier_product(self.to_fourier(x), self.to_fourier(y), self.size))
