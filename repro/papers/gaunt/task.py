"""The Gaunt experiment: the full Gaunt product four ways, per max degree L: agreement with the dense table,
equivariance under random rotations, the Gaunt = c x CG identity, and time per product side by side."""

import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from e3nn import o3
from omegaconf import DictConfig

from repro.core.claims import fit_slope
from repro.core.context import RunContext
from repro.core.errors import ConfigError
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
def torch_threads(threads: int) -> Iterator[None]:
    """Time with a fixed thread count (1 on a shared CPU: fewer threads than cores gives stable timings)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads if threads > 0 else before)
    try:
        yield
    finally:
        torch.set_num_threads(before)


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


def run(cfg: DictConfig, ctx: RunContext) -> list[dict]:
    validate(cfg)
    b = cfg.benchmark
    device, dtype = torch.device(ctx.device), DTYPES[b.dtype]
    fit_from = b.fit_from_lmax
    rows: list[dict] = []
    with torch_threads(b.threads), default_dtype(dtype), torch.inference_mode():
        for lmax in ctx.progress(list(b.lmax), desc="max degree L"):
            rows += ctx.unit(f"lmax{lmax}", lambda lmax=lmax: rows_for_degree(cfg, ctx, lmax, device, dtype))
    rows += exponent_rows([r for r in rows if r["kind"] == "timing" and r["lmax"] >= fit_from])
    return rows


def rows_for_degree(cfg: DictConfig, ctx: RunContext, lmax: int, device: torch.device,
                    dtype: torch.dtype) -> list[dict]:
    b = cfg.benchmark
    common = {"lmax": lmax, "degrees": lmax + 1, "in_fit": lmax >= b.fit_from_lmax, "largest": lmax == max(b.lmax)}
    products, build_time = {}, {}
    for name in cfg.methods:
        start = time.perf_counter()
        products[name] = METHODS[name](lmax, dtype).to(device)
        build_time[name] = time.perf_counter() - start
    rows = [{"kind": "identity", **common, **identity_errors(products[REFERENCE].table.reshape(
        (lmax + 1) ** 2, (lmax + 1) ** 2, -1).cpu(), lmax)}]
    for seed in ctx.replicate_seeds():
        torch.manual_seed(seed)
        shape = (b.batch, b.channels, (lmax + 1) ** 2)  # channel-wise products: batch x channels of them
        x, y = (torch.randn(shape, dtype=dtype, device=device) for _ in range(2))
        d_in, d_out = harmonic_rotations(lmax, o3.rand_matrix(dtype=dtype))
        reference = products[REFERENCE](x, y)
        for name, product in products.items():
            if name != REFERENCE:
                rows.append({"kind": "agreement", **common, "method": name, "seed": seed,
                             "max_rel_error": relative_error(product(x, y), reference)})
            rows.append({"kind": "equivariance", **common, "method": name, "seed": seed,
                         "equivariance_error": equivariance_error(product, x, y, d_in, d_out)})
        seconds = time_products(products, x, y, b.repeats, b.min_time_s)
        rows += [{"kind": "timing", **common, "method": name, "seed": seed, "time_s": t,
                  "build_time_s": build_time[name]} for name, t in seconds.items()]
        rows += [{"kind": "speedup", **common, "baseline": name, "seed": seed, "speedup_x": t / seconds[FAST]}
                 for name, t in seconds.items() if name != FAST]
    ctx.log.info("L=%d: %s", lmax, {n: f"{r['time_s']:.2e}s" for n, r in
                                   ((r["method"], r) for r in rows if r["kind"] == "timing")})
    return rows


def exponent_rows(timing: list[dict]) -> list[dict]:
    """Per method and seed: the log-log slope of time per product on the number of degrees L+1 (the paper's L)."""
    rows = []
    for method in dict.fromkeys(r["method"] for r in timing):
        for seed in dict.fromkeys(r["seed"] for r in timing):
            points = [(r["degrees"], r["time_s"]) for r in timing if r["method"] == method and r["seed"] == seed]
            if len({d for d, _ in points}) < 3:
                continue
            x, y = (torch.tensor(v, dtype=torch.float64).numpy() for v in zip(*points))
            slope, low, high = fit_slope(x, y, log=True)
            rows.append({"kind": "exponent", "method": method, "seed": seed, "time_exponent": slope})
    return rows
