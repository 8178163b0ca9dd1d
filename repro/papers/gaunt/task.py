"""The Gaunt experiment: the paper's three operation classes, each computed several ways, per max degree L.

Grid:
- ``identity/lmax=L`` (deterministic): the Gaunt = c x CG identity on every path of the dense table.
- ``products/lmax=L`` (equivariant feature interaction): the full Gaunt product of two feature vectors.
- ``convolution/lmax=L`` (equivariant convolution): features times the harmonics of an edge direction.
- ``manybody/lmax=L,correlation=nu`` (many-body interaction): MACE's symmetric contraction with unit weights;
  a sweep over L at the default correlation and one over nu at a fixed L, as in the official benchmark.
Per replicate, each stochastic unit draws inputs and a random rotation and records every route's agreement
with an independent reference, its equivariance error, and its time per call measured side by side in the
same process; speed-ups are a baseline's time over the Fourier route's time.
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
    convolution_reference,
    equivariance_error,
    harmonic_rotations,
    identity_errors,
    many_body_reference,
    relative_error,
    time_products,
)
from repro.papers.gaunt.harmonics import rotation_matrix_of_harmonics
from repro.papers.gaunt.operations import (
    ConvolutionCG,
    ConvolutionFourier,
    ConvolutionGrid,
    ConvolutionSO2,
    ManyBodyCG,
    ManyBodyFourier,
    ManyBodyGrid,
    edge_harmonics,
)
from repro.papers.gaunt.products import CGGaunt, DenseGaunt, FourierGaunt, SphereGridGaunt, cached

PRODUCTS = {"dense": DenseGaunt, "cg": CGGaunt, "grid": SphereGridGaunt, "fft": FourierGaunt}
CONVOLUTIONS = {"cg": ConvolutionCG, "escn": ConvolutionSO2, "grid": ConvolutionGrid, "fft": ConvolutionFourier}
MANY_BODY = {"mace": ManyBodyCG, "grid": ManyBodyGrid, "fft": ManyBodyFourier}
REFERENCE = "dense"  # the feature-interaction routes are compared with the dense table
FAST = "fft"  # the paper's method in every operation class; speed-ups are baseline time / its time
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
    for methods, known, key in ((cfg.methods, PRODUCTS, "methods"),
                                (cfg.convolution.methods, CONVOLUTIONS, "convolution.methods"),
                                (cfg.manybody.methods, MANY_BODY, "manybody.methods")):
        unknown = sorted(set(methods) - set(known))
        if unknown:
            raise ConfigError(f"paper.{key} has unknown {unknown}; choose from {list(known)}")
        if FAST not in methods:
            raise ConfigError(f"paper.{key} must include {FAST!r} (the paper's method)")
    if REFERENCE not in cfg.methods:
        raise ConfigError(f"paper.methods must include {REFERENCE!r} (the reference)")
    if cfg.benchmark.dtype not in DTYPES:
        raise ConfigError(f"paper.benchmark.dtype={cfg.benchmark.dtype!r}; choose from {list(DTYPES)}")
    for key, values in (("benchmark.lmax", cfg.benchmark.lmax), ("convolution.lmax", cfg.convolution.lmax),
                        ("manybody.lmax", cfg.manybody.lmax), ("manybody.correlations", cfg.manybody.correlations)):
        if len(values) < 3 or min(values) < 1:
            raise ConfigError(f"paper.{key} needs at least 3 values >= 1 (a slope is fitted over them)")


def many_body_settings(cfg: DictConfig) -> list[tuple[int, int]]:
    """(L, nu): L swept at the default correlation, nu swept at correlation_lmax (shared points once)."""
    m = cfg.manybody
    pairs = [(int(lmax), int(m.correlation)) for lmax in m.lmax]
    pairs += [(int(m.correlation_lmax), int(nu)) for nu in m.correlations]
    return list(dict.fromkeys(pairs))


def units(cfg: DictConfig) -> list[Unit]:
    validate(cfg)
    degrees = list(cfg.benchmark.lmax)
    return [*(unit("identity", lmax=lmax, stochastic=False) for lmax in degrees),
            *(unit("products", lmax=lmax) for lmax in degrees),
            *(unit("convolution", lmax=lmax) for lmax in cfg.convolution.lmax),
            *(unit("manybody", lmax=lmax, correlation=nu) for lmax, nu in many_body_settings(cfg))]


def run_unit(cfg: DictConfig, ctx: RunContext, u: Unit) -> list[dict]:
    lmax = int(u.settings["lmax"])
    dtype = DTYPES[cfg.benchmark.dtype]
    with default_dtype(dtype), torch.inference_mode():
        if u.experiment == "identity":
            table = DenseGaunt(lmax, dtype).table.reshape((lmax + 1) ** 2, (lmax + 1) ** 2, -1)
            return [{"kind": "identity", "degrees": lmax + 1, **identity_errors(table, lmax)}]
        if u.experiment == "products":
            return product_rows(cfg, ctx, lmax, dtype)
        if u.experiment == "convolution":
            return convolution_rows(cfg, ctx, lmax, dtype)
        return many_body_rows(cfg, ctx, lmax, int(u.settings["correlation"]), dtype)


def compare_routes(cfg: DictConfig, ctx: RunContext, routes: dict, reference: torch.Tensor, inputs: tuple,
                   rotated_inputs: tuple, d_out: torch.Tensor, common: dict) -> list[dict]:
    """Every route on the same inputs: agreement with the reference, equivariance, time per call side by side."""
    rows = []
    for name, route in routes.items():
        rows.append({"kind": "agreement", **common, "method": name,
                     "max_rel_error": relative_error(route(*inputs), reference)})
        rows.append({"kind": "equivariance", **common, "method": name,
                     "equivariance_error": equivariance_error(route, inputs, rotated_inputs, d_out)})
    seconds = time_products(routes, inputs, cfg.benchmark.repeats, cfg.benchmark.min_time_s, ctx.stopwatch)
    rows += [{"kind": "timing", **common, "method": name, "time_s": t} for name, t in seconds.items()]
    rows += [{"kind": "speedup", **common, "baseline": name, "speedup_x": t / seconds[FAST]}
             for name, t in seconds.items() if name != FAST]
    ctx.log.info("%s: %s", common, {n: f"{t:.2e}s" for n, t in seconds.items()})
    return rows


def random_inputs(ctx: RunContext, shape: tuple, dtype: torch.dtype) -> torch.Tensor:
    generator = torch.Generator(device=ctx.device).manual_seed(ctx.child_seed("inputs"))
    return torch.randn(shape, dtype=dtype, device=ctx.device, generator=generator)


def product_rows(cfg: DictConfig, ctx: RunContext, lmax: int, dtype: torch.dtype) -> list[dict]:
    """Feature interaction z = G(x, y): routes compared with the dense table (whose own agreement row is 0)."""
    b = cfg.benchmark
    common = {"degrees": lmax + 1, "in_fit": lmax >= b.fit_from_lmax, "largest": lmax == max(b.lmax)}
    routes = {name: cached(PRODUCTS[name], dtype, lmax).to(ctx.device) for name in cfg.methods}
    x, y = random_inputs(ctx, (2, b.batch, b.channels, (lmax + 1) ** 2), dtype)  # batch x channels products
    d_in, d_out = harmonic_rotations(lmax, o3.rand_matrix(dtype=dtype))  # torch's RNG, seeded by the unit
    d_in = d_in.to(x)
    reference = routes[REFERENCE](x, y)
    rows = compare_routes(cfg, ctx, routes, reference, (x, y), (x @ d_in.T, y @ d_in.T), d_out, common)
    return [r for r in rows if not (r["kind"] == "agreement" and r["method"] == REFERENCE)]


def convolution_rows(cfg: DictConfig, ctx: RunContext, lmax: int, dtype: torch.dtype) -> list[dict]:
    """Convolution z = G(x, Y(r)) for random features and directions, against the dense Gaunt contraction."""
    c = cfg.convolution
    common = {"degrees": lmax + 1, "in_fit": lmax >= c.fit_from_lmax, "largest": lmax == max(c.lmax)}
    routes = {name: cached(CONVOLUTIONS[name], dtype, lmax).to(ctx.device) for name in c.methods}
    x = random_inputs(ctx, (c.edges, c.channels, (lmax + 1) ** 2), dtype)
    directions = torch.nn.functional.normalize(torch.randn(c.edges, 3, dtype=dtype, device=ctx.device), dim=-1)
    rotation = o3.rand_matrix(dtype=dtype)
    d_in, d_out = harmonic_rotations(lmax, rotation)
    reference = convolution_reference(x, edge_harmonics(lmax, directions), lmax)
    rotated = (x @ d_in.to(x).T, directions @ rotation.to(x).T)
    return compare_routes(cfg, ctx, routes, reference, (x, directions), rotated, d_out, common)


def many_body_rows(cfg: DictConfig, ctx: RunContext, lmax: int, correlation: int, dtype: torch.dtype) -> list[dict]:
    """Many-body sum_nu P_L(f^nu) against the exact-quadrature reference."""
    m = cfg.manybody
    degree_series, correlation_series = correlation == m.correlation, lmax == m.correlation_lmax
    common = {"degrees": lmax + 1, "degree_series": degree_series, "correlation_series": correlation_series,
              "largest_lmax": degree_series and lmax == max(m.lmax),
              "largest_correlation": correlation_series and correlation == max(m.correlations)}
    routes = {name: cached(MANY_BODY[name], dtype, lmax, correlation).to(ctx.device) for name in m.methods}
    x = random_inputs(ctx, (m.batch, m.channels, (lmax + 1) ** 2), dtype)
    d = rotation_matrix_of_harmonics(lmax, o3.rand_matrix(dtype=dtype)).to(x)  # the output has degrees <= L too
    reference = many_body_reference(x, lmax, correlation)
    return compare_routes(cfg, ctx, routes, reference, (x,), (x @ d.T,), d, common)
