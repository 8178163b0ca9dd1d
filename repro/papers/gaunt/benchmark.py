"""Measurements on the Gaunt products: agreement, equivariance, the Gaunt = c x CG identity, and timing.

Every function takes routes (modules of the inputs, as built in products.py and operations.py) and returns
plain numbers.
"""

import statistics
from collections.abc import Callable

import torch
from e3nn import o3

from repro.papers.gaunt.harmonics import (
    gaunt_block,
    gaunt_path_factor,
    gaunt_scale_closed_form,
    real_gaunt_table,
    real_harmonics,
    rotation_matrix_of_harmonics,
    sphere_quadrature,
)

Product = Callable[..., torch.Tensor]


def relative_error(z: torch.Tensor, reference: torch.Tensor) -> float:
    """max |z - reference| / max |reference|."""
    return float((z - reference).abs().max() / reference.abs().max())


def harmonic_rotations(lmax: int, rotation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """D(R) on degrees <= L (inputs) and <= 2L (outputs), exact by quadrature (see rotation_matrix_of_harmonics)."""
    return rotation_matrix_of_harmonics(lmax, rotation), rotation_matrix_of_harmonics(2 * lmax, rotation)


def equivariance_error(product: Product, inputs: tuple, rotated_inputs: tuple, d_out: torch.Tensor) -> float:
    """max |F(rotated inputs) - D_out F(inputs)| / max |F(inputs)| for one rotation (D from harmonic_rotations;
    harmonic inputs rotate as x @ D_in^T, directions as r @ R^T)."""
    z = product(*inputs)
    return relative_error(product(*rotated_inputs), z @ d_out.to(z).T)


def convolution_reference(x: torch.Tensor, y: torch.Tensor, lmax: int) -> torch.Tensor:
    """z_k = sum_ij G_ijk x_i y_j with the dense Gaunt table (quadrature), the filter y contracted first:
    x (edges, channels, (L+1)^2), y (edges, (L+1)^2) -> (edges, channels, (2L+1)^2)."""
    table = real_gaunt_table(lmax, 2 * lmax, x.dtype).to(x.device)
    return torch.einsum("eci,eik->eck", x, torch.einsum("ijk,ej->eik", table, y))


def many_body_reference(x: torch.Tensor, lmax: int, correlation: int) -> torch.Tensor:
    """sum_{nu=1..correlation} P_L(f^nu) by exact quadrature: f = sum_i x_i Y_i at the nodes of a rule exact
    to degree (correlation + 1) L, its powers summed, projected on Y_k (k of degree <= L) with the weights."""
    alpha, beta, weights = sphere_quadrature((correlation + 1) * lmax)
    harmonics = real_harmonics(lmax, alpha, beta).to(x)  # (nodes, (L+1)^2)
    f = x @ harmonics.T
    total = sum(f ** nu for nu in range(1, correlation + 1))
    return (total * weights.to(x)) @ harmonics


def identity_errors(table: torch.Tensor, lmax: int) -> dict[str, float]:
    """Check G_block(l1, l2, l3) = c(l1, l2, l3) W(l1, l2, l3) on every path of a Gaunt table (l1, l2 <= lmax).

    identity_residual: max over parity-even paths of ||G - c W|| / ||G|| (c from e3nn's W at one point);
    factor_error:      max over those paths of | |c| - sqrt(prod(2l+1)/4pi) |3j(000)| | / that closed form;
    odd_path_max:      max |G| over paths with l1 + l2 + l3 odd (the selection rule says 0).
    """
    residual, factor, odd = 0.0, 0.0, 0.0
    for l1 in range(lmax + 1):
        for l2 in range(lmax + 1):
            for l3 in range(abs(l1 - l2), l1 + l2 + 1):
                block = gaunt_block(table, l1, l2, l3)
                if (l1 + l2 + l3) % 2:
                    odd = max(odd, float(block.abs().max()))
                    continue
                c = gaunt_path_factor(l1, l2, l3)
                w = o3.wigner_3j(l1, l2, l3, dtype=table.dtype)
                residual = max(residual, float((block - c * w).norm() / block.norm()))
                closed = gaunt_scale_closed_form(l1, l2, l3)
                factor = max(factor, abs(abs(c) - closed) / closed)
    return {"identity_residual": residual, "factor_error": factor, "odd_path_max": odd}


def time_products(products: dict[str, Product], inputs: tuple, repeats: int, min_time_s: float,
                  stopwatch: Callable) -> dict[str, float]:
    """Seconds per call of each route on the same inputs, measured side by side with ``stopwatch``
    (the context's ``ctx.stopwatch``, which synchronises CUDA at both ends).

    Each route is warmed up, then its number of calls per loop is doubled until a loop lasts `min_time_s`
    (like timeit's autorange); the routes take turns within every repeat, so load on a shared machine hits
    all of them alike. Returns the median over repeats of (loop time / calls): robust to the few repeats that
    other processes on a shared machine slow down.
    """

    def loop(product: Product, calls: int) -> float:
        with stopwatch() as clock:
            for _ in range(calls):
                product(*inputs)
        return clock.seconds

    loops = {}
    for name, product in products.items():
        product(*inputs)
        calls = 1
        while loop(product, calls) < min_time_s:
            calls *= 2
        loops[name] = calls
    samples: dict[str, list[float]] = {name: [] for name in products}
    for _ in range(repeats):
        for name, product in products.items():
            samples[name].append(loop(product, loops[name]) / loops[name])
    return {name: statistics.median(values) for name, values in samples.items()}
