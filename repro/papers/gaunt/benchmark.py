"""Measurements on the Gaunt products: agreement, equivariance, the Gaunt = c x CG identity, and timing.

Every function takes modules (x, y) -> z as built in products.py and returns plain numbers.
"""

from collections.abc import Callable

import torch
from e3nn import o3

from repro.papers.gaunt.harmonics import (
    gaunt_block,
    gaunt_path_factor,
    gaunt_scale_closed_form,
    rotation_matrix_of_harmonics,
)

Product = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def relative_error(z: torch.Tensor, reference: torch.Tensor) -> float:
    """max |z - reference| / max |reference|."""
    return float((z - reference).abs().max() / reference.abs().max())


def harmonic_rotations(lmax: int, rotation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """D(R) on degrees <= L (inputs) and <= 2L (outputs), exact by quadrature (see rotation_matrix_of_harmonics)."""
    return rotation_matrix_of_harmonics(lmax, rotation), rotation_matrix_of_harmonics(2 * lmax, rotation)


def equivariance_error(product: Product, x: torch.Tensor, y: torch.Tensor, d_in: torch.Tensor,
                       d_out: torch.Tensor) -> float:
    """max |G(D x, D y) - D G(x, y)| / max |G(x, y)| for one rotation, D_in and D_out from harmonic_rotations."""
    d_in, d_out = d_in.to(x), d_out.to(x)
    z = product(x, y)
    return relative_error(product(x @ d_in.T, y @ d_in.T), z @ d_out.T)


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


def time_products(products: dict[str, Product], x: torch.Tensor, y: torch.Tensor, repeats: int,
                  min_time_s: float, stopwatch: Callable) -> dict[str, float]:
    """Seconds per call of each product on the same inputs, measured side by side with ``stopwatch``
    (the context's ``ctx.stopwatch``, which synchronises CUDA at both ends).

    Each product is warmed up, then its number of calls per loop is doubled until a loop lasts `min_time_s`
    (like timeit's autorange); the methods take turns within every repeat, so load on a shared machine hits
    all of them alike. Returns the minimum over repeats of (loop time / calls): as timeit advises, slower
    repeats measure other processes on a shared machine, not the product.
    """

    def loop(product: Product, calls: int) -> float:
        with stopwatch() as clock:
            for _ in range(calls):
                product(x, y)
        return clock.seconds

    loops = {}
    for name, product in products.items():
        product(x, y)
        calls = 1
        while loop(product, calls) < min_time_s:
            calls *= 2
        loops[name] = calls
    samples: dict[str, list[float]] = {name: [] for name in products}
    for _ in range(repeats):
        for name, product in products.items():
            samples[name].append(loop(product, loops[name]) / loops[name])
    return {name: min(values) for name, values in samples.items()}
