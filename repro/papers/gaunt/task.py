"""The Gaunt experiment: the full Gaunt product four ways, per max degree L.

Grid: ``identity/lmax=L`` (deterministic: the Gaunt = c x CG identity on every path of the dense table) and
``products/lmax=L`` (per replicate: random inputs and a random rotation; every route's agreement with the
dense table, its equivariance error, and its time per product measured side by side in the same process).
"""

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from e3nn import o3
from omegaconf import DictConfig

from repro.core.context import RunContext
from repro.core.errors import ConfigError
from repro.core.units import Unit, unit
from repro.papers.gaunt.benchmark import (
    equivariance_error,
    harmonic_rotations,
    identity_errors,
    relative_error,
    time_products,
)
from repro.papers.gaunt.products import CGGaunt, DenseGaunt, FourierGaunt, SphereGridGaunt

METHODS = {"dense": DenseGaunt, "cg": CGGaunt, "grid": SphereGridGaunt, "fft": FourierGaunt}
REFERENCE = "dense"  # every other route is compared with the dense table
FAST = "fft"  # the paper's method; speed-ups are baseline time / its time
DTYPES = {"float64": torch.float64, "float32": torch.float32}


@contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """e3nn builds its constants (wigner_3j buffers, generators behind D_from_matrix, S2-grid Legendre tables)
    in torch's default dtype; set it so that float64 runs are float64 all the way through."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


def validate(cfg: DictConfig) -> None:
    unknown = sorted(set(cfg.methods) - set(METHODS))
    if unknown:
        raise ConfigError(f"paper.methods has unknown {unknown}; choose from {list(METHODS)}")
    if REFERENCE not in cfg.methods or FAST not in cfg.methods:
        raise ConfigError(f"paper.methods must include {REFERENCE!r} (the reference) and {FAST!r} (the paper's method)")
    if cfg.benchmark.dtype not in DTYPES:
        raise ConfigError(f"paper.benchmark.dtype={cfg.benchmark.dtype!r}; choose from {list(DTYPES)}")
    if len(cfg.benchmark.lmax) < 3 or min(cfg.benchmark.lmax) < 1:
        raise ConfigError("paper.benchmark.lmax needs at least 3 degrees >= 1 (an exponent is fitted)")


def units(cfg: DictConfig) -> list[Unit]:
    validate(cfg)
    degrees = list(cfg.benchmark.lmax)
    return [*(unit("identity", lmax=lmax, stochastic=False) for lmax in degrees),
            *(unit("products", lmax=lmax) for lmax in degrees)]


def run_unit(cfg: DictConfig, ctx: RunContext, u: Unit) -> list[dict]:
    b = cfg.benchmark
    lmax = int(u.settings["lmax"])
    dtype = DTYPES[b.dtype]
    common = {"degrees": lmax + 1, "in_fit": lmax >= b.fit_from_lmax, "largest": lmax == max(b.lmax)}
    with default_dtype(dtype), torch.inference_mode():
        if u.experiment == "identity":
            table = DenseGaunt(lmax, dtype).table.reshape((lmax + 1) ** 2, (lmax + 1) ** 2, -1)
            return [{"kind": "identity", **common, **identity_errors(table, lmax)}]
        return product_rows(cfg, ctx, lmax, dtype, common)


def product_rows(cfg: DictConfig, ctx: RunContext, lmax: int, dtype: torch.dtype, common: dict) -> list[dict]:
    """Every route on the same random inputs: agreement, equivariance, and time per call side by side."""
    b = cfg.benchmark
    device = torch.device(ctx.device)
    products, build_time = {}, {}
    for name in cfg.methods:
        with ctx.stopwatch() as clock:
            products[name] = METHODS[name](lmax, dtype).to(device)
        build_time[name] = clock.seconds
    shape = (b.batch, b.channels, (lmax + 1) ** 2)  # channel-wise products: batch x channels of them
    generator = torch.Generator(device=device).manual_seed(ctx.child_seed("inputs"))
    x, y = (torch.randn(shape, dtype=dtype, device=device, generator=generator) for _ in range(2))
    d_in, d_out = harmonic_rotations(lmax, o3.rand_matrix(dtype=dtype))  # torch's RNG, seeded by the unit
    reference = products[REFERENCE](x, y)
    rows = []
    for name, product in products.items():
        if name != REFERENCE:
            rows.append({"kind": "agreement", **common, "method": name,
                         "max_rel_error": relative_error(product(x, y), reference)})
        rows.append({"kind": "equivariance", **common, "method": name,
                     "equivariance_error": equivariance_error(product, x, y, d_in, d_out)})
    seconds = time_products(products, x, y, b.repeats, b.min_time_s, ctx.stopwatch)
    rows += [{"kind": "timing", **common, "method": name, "time_s": t, "build_time_s": build_time[name]}
             for name, t in seconds.items()]
    rows += [{"kind": "speedup", **common, "baseline": name, "speedup_x": t / seconds[FAST]}
             for name, t in seconds.items() if name != FAST]
    ctx.log.info("L=%d: %s", lmax, {n: f"{t:.2e}s" for n, t in seconds.items()})
    return rows
