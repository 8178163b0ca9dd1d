"""GP-HM against single-kernel GPs, a PINN and finite differences on manufactured high-frequency and
multi-scale Poisson and Allen-Cahn problems, and the Kronecker speed-up of the 2-D solver.

Grid: ``<experiment>/<method>`` for each solver experiment of ``paper.experiments`` (the GPs and finite
differences are deterministic, run once; the PINN per replicate), and ``kron_speed/-/n=<grid size>``
(timing per replicate).
"""

import numpy as np
import torch
from omegaconf import DictConfig

from repro.core.context import RunContext
from repro.core.train import fit_steps
from repro.core.units import Unit, grid
from repro.papers.gp_hm.baselines import PINN, finite_difference_poisson_1d, finite_difference_poisson_2d, pinn_loss
from repro.papers.gp_hm.gp import GPSolver1D, GPSolver2D
from repro.papers.gp_hm.problems import Problem, make_problem

KERNEL_OF = {"gp_hm_gm": "se_cos", "gp_hm_stm": "matern_cos", "gp_se": "se", "gp_matern": "matern"}
METHODS = (*KERNEL_OF, "pinn", "fd")


def units(cfg: DictConfig) -> list[Unit]:
    out = []
    for name, spec in cfg.experiments.items():
        methods = [m for m in spec.methods if m in cfg.methods]
        out += grid(name, [m for m in methods if m != "pinn"], stochastic=False)
        out += grid(name, [m for m in methods if m == "pinn"])
    if cfg.kron_speed.grid_sizes:
        out += grid("kron_speed", n=list(cfg.kron_speed.grid_sizes))
    return out


def run_unit(cfg: DictConfig, ctx: RunContext, u: Unit) -> list[dict]:
    if u.experiment == "kron_speed":
        return [kronecker_timing(cfg, ctx, int(u.settings["n"]))]
    spec = cfg.experiments[u.experiment]
    problem = make_problem(spec.problem)
    if u.method == "fd":
        return [finite_differences(spec, problem)]
    if u.method == "pinn":
        return [train_pinn(cfg, ctx, spec, problem)]
    return train_gp(cfg, ctx, spec, problem, u.method)


def axis(length: float, points: int, device: str) -> torch.Tensor:
    return torch.linspace(0, length, points, dtype=torch.float64, device=device)


def relative_l2(prediction: np.ndarray, truth: np.ndarray) -> float:
    return float(np.linalg.norm(prediction - truth) / np.linalg.norm(truth))


def build_gp(cfg: DictConfig, spec: DictConfig, problem: Problem, kind: str, points: int, device: str
             ) -> torch.nn.Module:
    g = cfg.gp
    x = axis(problem.length, points, device)
    xs = x.cpu().numpy()
    if problem.dimension == 1:
        source = torch.tensor(problem.source(xs), device=device)
        boundary = torch.tensor(problem.solution(np.array([xs[0], xs[-1]])), device=device)
        return GPSolver1D(kind, x, source, boundary, problem.allen_cahn, spec.components, spec.freq_scale,
                          g.jitter, g.boundary_weight)
    mesh_x, mesh_y = np.meshgrid(xs, xs, indexing="ij")
    truth = problem.solution(mesh_x, mesh_y)
    edges = np.concatenate([truth[0, :], truth[-1, :], truth[:, 0], truth[:, -1]])
    return GPSolver2D(kind, x, x.clone(), torch.tensor(problem.source(mesh_x, mesh_y), device=device),
                      torch.tensor(edges, device=device), problem.allen_cahn, spec.components, spec.freq_scale,
                      g.jitter, g.boundary_weight)


def test_error(model: torch.nn.Module, problem: Problem, test_points: int, device: str) -> float:
    x_test = axis(problem.length, test_points, device)
    xs = x_test.cpu().numpy()
    with torch.no_grad():
        if problem.dimension == 1:
            return relative_l2(model.predict(x_test).cpu().numpy(), problem.solution(xs))
        mesh_x, mesh_y = np.meshgrid(xs, xs, indexing="ij")
        return relative_l2(model.predict(x_test, x_test).cpu().numpy(), problem.solution(mesh_x, mesh_y))


def spectrum_rows(model: torch.nn.Module, problem: Problem, stage: str) -> list[dict]:
    """The x-axis kernel's weights and frequencies, one row per component."""
    kernel = model.kernel if hasattr(model, "kernel") else model.kernel_x
    weights = torch.exp(kernel.values["log_w"]).detach().cpu().numpy()
    freqs = kernel.values["freq"].detach().abs().cpu().numpy()
    return [{"record": "spectrum", "stage": stage, "component": q, "weight": float(w), "freq": float(f)}
            for q, (w, f) in enumerate(zip(weights, freqs))]


def spectrum_summary(model: torch.nn.Module, problem: Problem, active_fraction: float, window: float) -> dict:
    """Surviving components (weight above active_fraction of the total) and the share of the total weight that
    sits within `window` cycles per unit of one of the solution's frequencies."""
    rows = spectrum_rows(model, problem, "final")
    weights = np.array([r["weight"] for r in rows])
    freqs = np.array([r["freq"] for r in rows])
    share = weights / weights.sum()
    near = np.min(np.abs(freqs[:, None] - np.array(problem.frequencies)[None, :]), axis=1) <= window
    return {"active_components": int((share > active_fraction).sum()), "weight_near_true": float(share[near].sum())}


def train_gp(cfg: DictConfig, ctx: RunContext, spec: DictConfig, problem: Problem, method: str) -> list[dict]:
    kind = KERNEL_OF[method]
    model = build_gp(cfg, spec, problem, kind, spec.n_col, ctx.device)
    initial = spectrum_rows(model, problem, "init") if kind.endswith("_cos") else []
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.gp.lr)
    with ctx.stopwatch() as clock:
        fit_steps(ctx, "", model, optimizer, lambda step: None, lambda m, batch: m.negative_log_joint(),
                  spec.steps, spec.steps // cfg.gp.rounds)
    row = {"record": "result", "problem": problem.name,
           "test/rel_l2": test_error(model, problem, spec.test_points, ctx.device),
           "train_time_s": clock.seconds, "n_col": spec.n_col,
           "final/neg_log_joint": float(model.negative_log_joint().detach())}
    if not kind.endswith("_cos"):
        return [row]
    row.update(spectrum_summary(model, problem, cfg.gp.active_fraction, cfg.gp.frequency_window))
    ctx.log.info("%s %s: rel L2 %.3g, %d active components", problem.name, method, row["test/rel_l2"],
                 row["active_components"])
    return [row, *initial, *spectrum_rows(model, problem, "final")]


def collocation_points(problem: Problem, points: int, device: str) -> tuple[torch.Tensor, ...]:
    """Interior/boundary points, source and boundary values of the PINN (the GP's grid)."""
    xs = np.linspace(0, problem.length, points)
    if problem.dimension == 1:
        interior, edges = xs[1:-1, None], np.array([[xs[0]], [xs[-1]]])
        source, values = problem.source(interior[:, 0]), problem.solution(edges[:, 0])
    else:
        mesh = np.stack(np.meshgrid(xs, xs, indexing="ij"), -1)
        interior, edge_mask = mesh[1:-1, 1:-1].reshape(-1, 2), np.ones((points, points), bool)
        edge_mask[1:-1, 1:-1] = False
        edges = mesh[edge_mask]
        source, values = problem.source(interior[:, 0], interior[:, 1]), problem.solution(edges[:, 0], edges[:, 1])
    arrays = (interior, source, edges, values)
    return tuple(torch.tensor(np.asarray(a, dtype=np.float64), device=device) for a in arrays)


def train_pinn(cfg: DictConfig, ctx: RunContext, spec: DictConfig, problem: Problem) -> dict:
    p = cfg.pinn
    model = PINN(problem.dimension, p.width, p.depth, torch.Generator().manual_seed(ctx.child_seed("init"))
                 ).to(ctx.device)
    interior, source, edges, values = collocation_points(problem, spec.n_col, ctx.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=p.lr)

    def loss_fn(net: torch.nn.Module, batch: None) -> torch.Tensor:
        return pinn_loss(net, interior, source, edges, values, problem.allen_cahn, p.boundary_weight)

    with ctx.stopwatch() as clock:
        fit_steps(ctx, "", model, optimizer, lambda step: None, loss_fn, p.steps, p.steps // p.rounds)
    x_test = np.linspace(0, problem.length, spec.test_points)
    with torch.no_grad():
        if problem.dimension == 1:
            prediction = model(torch.tensor(x_test[:, None], device=ctx.device)).cpu().numpy()
            truth = problem.solution(x_test)
        else:
            mesh = np.stack(np.meshgrid(x_test, x_test, indexing="ij"), -1)
            prediction = model(torch.tensor(mesh.reshape(-1, 2), device=ctx.device)).cpu().numpy()
            truth = problem.solution(mesh[..., 0], mesh[..., 1]).reshape(-1)
    return {"record": "result", "test/rel_l2": relative_l2(prediction, truth), "train_time_s": clock.seconds,
            "n_col": spec.n_col}


def finite_differences(spec: DictConfig, problem: Problem) -> dict:
    """Second-order differences on the GP's grid, compared with u at the same points (Poisson only)."""
    xs = np.linspace(0, problem.length, spec.n_col)
    if problem.dimension == 1:
        u = finite_difference_poisson_1d(xs, problem.source(xs), *problem.solution(np.array([xs[0], xs[-1]])))
        return {"record": "result", "test/rel_l2": relative_l2(u, problem.solution(xs)), "n_col": spec.n_col}
    mesh_x, mesh_y = np.meshgrid(xs, xs, indexing="ij")
    truth = problem.solution(mesh_x, mesh_y)
    u = finite_difference_poisson_2d(xs, xs, problem.source(mesh_x, mesh_y), truth)
    return {"record": "result", "test/rel_l2": relative_l2(u, truth), "n_col": spec.n_col}


def kronecker_timing(cfg: DictConfig, ctx: RunContext, points: int) -> dict:
    """One evaluation of the objective and its gradient with Kronecker algebra and with the dense covariance,
    side by side on the same model (the best of `repeats` each). The speed-up is read on the clock that
    measures the work on this device: the process's CPU seconds on the CPU (one thread; unlike wall time they
    do not grow when other jobs share the machine), synchronised wall seconds on a GPU."""
    k = cfg.kron_speed
    spec = cfg.experiments[k.experiment]
    model = build_gp(cfg, spec, make_problem(spec.problem), "matern_cos", points, ctx.device)
    with torch.no_grad():
        model.u.normal_(generator=torch.Generator(device=ctx.device).manual_seed(ctx.child_seed("u")))
    on_gpu = str(ctx.device).startswith("cuda")
    times = {}
    for name, objective in (("kron", model.negative_log_joint), ("dense", model.negative_log_joint_dense)):
        wall, cpu = np.inf, np.inf
        for _ in range(k.repeats):
            model.zero_grad()
            with ctx.stopwatch() as clock:
                value = objective()
                value.backward()
            wall, cpu = min(wall, clock.seconds), min(cpu, clock.cpu_seconds)
        times[name], times[f"{name}_cpu"], times[f"{name}_value"] = wall, cpu, float(value.detach())
    measured = (times["dense"], times["kron"]) if on_gpu else (times["dense_cpu"], times["kron_cpu"])
    return {"record": "result", "kron_time_s": times["kron"], "dense_time_s": times["dense"],
            "kron_cpu_time_s": times["kron_cpu"], "dense_cpu_time_s": times["dense_cpu"],
            "speedup": measured[0] / measured[1], "wall_speedup": times["dense"] / times["kron"],
            "covariance_size": points * points,
            "objective_rel_gap": abs(times["kron_value"] - times["dense_value"]) / abs(times["dense_value"])}
