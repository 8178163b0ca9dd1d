"""Degeneracy experiments. Grid, each unit per replicate:

- ``free/variant=<v>``: a student MLP trained on inputs confined to a subspace (shared by the variants of a
  replicate), with planted dead / synchronised neurons; predicted free directions (Sec. 3) vs the measured null space
  of the behavioural Gauss-Newton matrix;
- ``llc/variant=<v>``: the local learning coefficient of the same planted student's behavioural loss by SGLD,
  calibrated first on the localised quadratic, vs (N - K) / 2;
- ``sparsity``, ``invariance``: the interaction basis (Sec. 6) of a digits MLP (shared by both units of a
  replicate): sparsity (Gini) of edges in the neuron, PCA and interaction bases, and invariance under
  function-preserving reparameterisations;
- ``modularity/network=<block|dense>``: a block-diagonal or dense student on a modular task (the same data for both
  networks of a replicate), Louvain communities of its interaction graph against the true modules.

Small float64 problems whose linear algebra is numpy (exact eigendecompositions, null spaces, Louvain): the paper
runs on the CPU (cpu_only in its config); torch is used for autograd only.
"""

import numpy as np
import torch
from omegaconf import DictConfig
from sklearn.datasets import load_digits

from repro.core.context import RunContext
from repro.core.errors import ConfigError
from repro.core.train import plateaued
from repro.core.units import Unit, grid, unit
from repro.papers.degeneracy_interp.degeneracy import (
    gauss_newton,
    null_dimension,
    per_sample_jacobians,
    predicted_free_directions,
    tangent_residual,
    tangent_vectors,
)
from repro.papers.degeneracy_interp.interaction import (
    edges,
    gini,
    interaction_bases,
    layer_features,
    neuron_bases,
    pca_bases,
)
from repro.papers.degeneracy_interp.llc import estimate_llc, localized_quadratic_llc, sgld_quadratic_expectation
from repro.papers.degeneracy_interp.mlp import FlatMLP, train
from repro.papers.degeneracy_interp.modularity import block_mask, interaction_graph, module_recovery

VARIANTS = {"plain": (0, 0), "dead2": (2, 0), "dead4": (4, 0), "sync3": (0, 3), "sync5": (0, 5)}
NETWORKS = ("block", "dense")


def units(cfg: DictConfig) -> list[Unit]:
    unknown = sorted(set(cfg.free.variants) - set(VARIANTS))
    if unknown:
        raise ConfigError(f"paper.free.variants has unknown {unknown}; choose from {list(VARIANTS)}")
    return [*grid("free", variant=list(cfg.free.variants)),
            *grid("llc", variant=list(cfg.free.variants)), unit("sparsity"), unit("invariance"),
            *grid("modularity", network=list(NETWORKS))]


def run_unit(cfg: DictConfig, ctx: RunContext, u: Unit) -> list[dict]:
    if u.experiment == "free":
        return free_direction_rows(cfg.free, ctx, u.settings["variant"])
    if u.experiment == "llc":
        return llc_rows(cfg.free, ctx, u.settings["variant"])
    if u.experiment == "sparsity":
        return sparsity_rows(cfg.basis, ctx)
    if u.experiment == "invariance":
        return invariance_rows(cfg.basis, ctx)
    if u.experiment == "modularity":
        return modularity_rows(cfg.modularity, ctx, u.settings["network"])
    raise ValueError(f"unknown experiment {u.experiment!r}")


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed % 2**63)


def teacher_data(cfg: DictConfig, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """x = U z, z ~ N(0, I_k), U in R^{d x k} orthonormal; y = random 2-layer tanh teacher of z."""
    z = torch.randn(cfg.n, cfg.latent, generator=generator, dtype=torch.float64)
    basis = torch.linalg.qr(torch.randn(cfg.input, cfg.latent, generator=generator, dtype=torch.float64))[0]
    w1 = torch.randn(cfg.latent, cfg.teacher_hidden, generator=generator, dtype=torch.float64)
    w2 = torch.randn(cfg.teacher_hidden, 1, generator=generator, dtype=torch.float64) / np.sqrt(cfg.teacher_hidden)
    return z @ basis.T, torch.tanh(z @ w1) @ w2


def plant(model: FlatMLP, theta: torch.Tensor, dead: int, synchronised: int, bias: float) -> torch.Tensor:
    """First hidden layer: `dead` units get bias -bias (never active), the next `synchronised` +bias (always)."""
    theta = theta.clone()
    b = model.slices[0][1]
    theta[b.start:b.start + dead] = -bias
    theta[b.start + dead:b.start + dead + synchronised] = bias
    return theta


def trained_student(cfg: DictConfig, ctx: RunContext) -> dict:
    """The teacher data and the trained student of this replicate, shared by every planted variant."""
    def build() -> dict:
        generator = _generator(ctx.data_seed("free"))
        x, y = teacher_data(cfg, generator)
        model = FlatMLP([cfg.input, *cfg.hidden, 1])
        theta, losses = train(model, model.init(generator), x, y, cfg.steps, cfg.lr, history=True)
        return {"x": x, "y": y, "model": model, "theta": theta, "converged": plateaued(losses)}

    return ctx.shared("free-student", build)


def planted_student(cfg: DictConfig, ctx: RunContext, variant: str) -> dict:
    """The replicate's student with the variant's units planted: theta*, its per-sample Jacobians and the
    eigenvalues of the behavioural Gauss-Newton matrix H_B (shared by the variant's free and llc units)."""
    def build() -> dict:
        student = trained_student(cfg, ctx)
        dead, synchronised = VARIANTS[variant]
        star = plant(student["model"], student["theta"], dead, synchronised, cfg.plant_bias)
        jac = per_sample_jacobians(student["model"], star, student["x"])
        return {**student, "star": star, "jac": jac, "measured": null_dimension(jac),
                "curvature": np.linalg.eigvalsh(gauss_newton(jac))}

    return ctx.shared(f"planted-{variant}", build)


def free_direction_rows(cfg: DictConfig, ctx: RunContext, variant: str) -> list[dict]:
    # No convergence flag on this unit: the free directions are those of the behavioural loss, which is minimised
    # (= 0) at the planted theta* by construction, trained to a plateau or not. Whether the student's training loss
    # plateaued is reported in the column train_plateaued.
    student = planted_student(cfg, ctx, variant)
    model, theta, star, x, y = student["model"], student["theta"], student["star"], student["x"], student["y"]
    tangents = tangent_vectors(model, star, x)
    predicted = predicted_free_directions(tangents, cfg.rank_tol)
    measured = student["measured"]
    ctx.log.info("free directions %s: predicted %d, measured %d", variant, predicted, measured)
    return [{"n_params": model.size, "train_mse": float(((model.forward(theta, x) - y) ** 2).mean()),
             "train_plateaued": int(student["converged"]),
             "free_predicted": predicted, "free_measured": measured, "free_gap": abs(measured - predicted),
             "tangent_residual": tangent_residual(student["jac"], tangents)}]


def llc_rows(cfg: DictConfig, ctx: RunContext, variant: str) -> list[dict]:
    """The LLC of the behavioural loss at theta* by SGLD, calibrated first on the localised quadratic
    delta^T H_B delta: the chain's expected estimate there (closed form) must reach `calibration` of its stationary
    value, else the unit counts as unconverged and the claims resting on it read inconclusive."""
    student = planted_student(cfg, ctx, variant)
    model, star, x = student["model"], student["star"], student["x"]
    curvature = student["curvature"]
    predicted = (model.size - student["measured"]) / 2
    settings = cfg.llc
    # Step from the stability limit of the stiffest direction: eps n beta max eig(H_B) = step_fraction.
    eps = settings.step_fraction / (cfg.n / np.log(cfg.n) * curvature[-1])
    expected = sgld_quadratic_expectation(curvature, cfg.n, eps, settings.gamma, settings.steps, settings.burn_in)
    stationary = sgld_quadratic_expectation(curvature, cfg.n, eps, settings.gamma)
    ctx.record_convergence(expected >= settings.calibration * stationary)
    target = model.forward(star, x).detach()

    def behavioural_loss(t: torch.Tensor) -> torch.Tensor:
        return ((model.forward(t, x) - target) ** 2).sum(-1).mean()

    llc = estimate_llc(behavioural_loss, star, cfg.n, eps, settings.gamma, settings.steps, settings.burn_in,
                       settings.chains, _generator(ctx.child_seed("sgld")))
    ctx.log.info("llc %s: %.1f (localised quadratic: chain's expectation %.1f, stationary %.1f) vs (N - K) / 2 = %.1f",
                 variant, llc, expected, stationary, predicted)
    return [{"llc_predicted": predicted,
             "llc_localized_quadratic": localized_quadratic_llc(curvature, cfg.n, settings.gamma),
             "llc_quadratic_expected": expected, "llc_quadratic_stationary": stationary,
             "calibrated_fraction": expected / stationary, "llc_sgld": llc, "sgld_eps": eps}]


def reparameterise(weights: list[tuple[np.ndarray, np.ndarray]], rng: np.random.Generator,
                   dead_inputs: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Same function: permute and positively rescale every hidden layer's neurons (compensated downstream),
    and put arbitrary weights on input pixels that are zero on every data point."""
    out = [(w.copy(), b.copy()) for w, b in weights]
    out[0][0][:, dead_inputs] = rng.standard_normal((out[0][0].shape[0], dead_inputs.sum()))
    for layer in range(len(out) - 1):
        width = out[layer][0].shape[0]
        perm, scale = rng.permutation(width), np.exp(rng.uniform(-1, 1, width))
        w, b = out[layer]
        out[layer] = (scale[:, None] * w[perm], scale * b[perm])
        w_next, b_next = out[layer + 1]
        out[layer + 1] = (w_next[:, perm] / scale[None, :], b_next)
    return out


def check_digits(data: np.ndarray, target: np.ndarray) -> None:
    """scikit-learn's bundled digits (sklearn/datasets/data/digits.csv.gz): 8 x 8 images with pixel values 0..16 and
    labels 0..9; anything else means a broken installation."""
    fix = "reinstall scikit-learn (its bundled file sklearn/datasets/data/digits.csv.gz is damaged)"
    if data.ndim != 2 or data.shape[1] != 64 or len(data) == 0 or len(target) != len(data):
        raise ValueError(f"load_digits() returned data {data.shape} and {len(target)} labels, expected (n, 64) and n "
                         f"labels with n > 0: {fix}")
    if not np.all(np.isfinite(data)) or data.min() < 0 or data.max() > 16:
        raise ValueError(f"load_digits() pixel values outside 0..16 or not finite: {fix}")
    if target.min() < 0 or target.max() > 9:
        raise ValueError(f"load_digits() labels outside 0..9 ({target.min()}..{target.max()}): {fix}")


def digits_network(cfg: DictConfig, ctx: RunContext) -> dict:
    """The digits MLP of this replicate (init and minibatches seeded by ctx.data_seed), shared by the sparsity and
    invariance units."""
    def build() -> dict:
        digits = load_digits()
        check_digits(digits.data, digits.target)
        x = torch.tensor(digits.data / 16.0)
        y = torch.nn.functional.one_hot(torch.tensor(digits.target), 10).double()
        generator = _generator(ctx.data_seed("digits"))
        model = FlatMLP([64, *cfg.hidden, 10])
        steps = cfg.epochs * (len(x) // cfg.batch)
        theta, losses = train(model, model.init(generator), x, y, steps, cfg.lr, cfg.batch, generator,
                              history=True)
        weights = [tuple(t.numpy() for t in model.unpack(theta, layer)) for layer in range(len(model.slices))]
        # Minibatch losses are noisy: judge the plateau on per-epoch means.
        per_epoch = np.asarray(losses).reshape(cfg.epochs, -1).mean(axis=1).tolist()
        return {"weights": weights, "x": x.numpy(), "converged": plateaued(per_epoch)}

    return ctx.shared("digits", build)


def sparsity_rows(cfg: DictConfig, ctx: RunContext) -> list[dict]:
    network = digits_network(cfg, ctx)
    ctx.record_convergence(network["converged"])
    feats, maps = layer_features(network["weights"], network["x"], cfg.centre)
    bases = {"neuron": neuron_bases(feats), "pca": pca_bases(feats, cfg.tol),
             "interaction": interaction_bases(feats, maps, cfg.tol)}
    return [{"basis": name, "layer": f"{layer + 1}->{layer + 2}", "gini": gini(edge), "dim_in": edge.shape[1],
             "dim_out": edge.shape[0]}
            for name, basis in bases.items() for layer, edge in enumerate(edges(feats, maps, basis))]


def invariance_rows(cfg: DictConfig, ctx: RunContext) -> list[dict]:
    network = digits_network(cfg, ctx)
    ctx.record_convergence(network["converged"])
    weights, x = network["weights"], network["x"]
    feats, maps = layer_features(weights, x, cfg.centre)
    bases = interaction_bases(feats, maps, cfg.tol)
    moved = reparameterise(weights, np.random.default_rng(ctx.child_seed("reparameterise")),
                           dead_inputs=(x == 0).all(0))
    feats_moved, maps_moved = layer_features(moved, x, cfg.centre)
    bases_moved = interaction_bases(feats_moved, maps_moved, cfg.tol)
    logits_change = float(np.abs(feats_moved[-1] - feats[-1]).max())
    rows = []
    for layer, (b0, b1) in enumerate(zip(bases[:-1], bases_moved[:-1])):
        f0, f1 = feats[layer] @ b0.c, feats_moved[layer] @ b1.c
        top = min(cfg.compare_top, f0.shape[1], f1.shape[1])
        corr = [abs(np.corrcoef(f0[:, i], f1[:, i])[0, 1]) for i in range(top)]
        rows.append({"basis": "interaction", "layer": f"hidden {layer + 1}", "min_abs_corr": float(min(corr)),
                     "logits_change": logits_change,
                     "weight_change": float(np.abs(moved[layer][0] - weights[layer][0]).max()),
                     "dim": f0.shape[1], "dim_moved": f1.shape[1]})
    return rows


def modular_data(cfg: DictConfig, ctx: RunContext) -> tuple[torch.Tensor, torch.Tensor]:
    """x = [x_A; x_B] independent N(0, I) blocks, y = [teacher_A(x_A), teacher_B(x_B)] (the same for both networks
    of a replicate)."""
    generator = _generator(ctx.data_seed("modular"))
    x = torch.randn(cfg.n, 2 * cfg.block_input, generator=generator, dtype=torch.float64)
    ys = []
    for block in range(2):
        z = x[:, block * cfg.block_input:(block + 1) * cfg.block_input]
        w1 = torch.randn(cfg.block_input, cfg.teacher_hidden, generator=generator, dtype=torch.float64)
        w2 = torch.randn(cfg.teacher_hidden, 1, generator=generator, dtype=torch.float64)
        ys.append(torch.tanh(z @ w1) @ w2 / np.sqrt(cfg.teacher_hidden))
    return x, torch.cat(ys, dim=1)


def modularity_rows(cfg: DictConfig, ctx: RunContext, network: str) -> list[dict]:
    """A block-diagonal (two towers) or dense student on the modular task; Louvain on its interaction graph."""
    x, y = modular_data(cfg, ctx)
    model = FlatMLP([2 * cfg.block_input, *[2 * cfg.tower_width] * cfg.layers, 2])
    mask = block_mask(model, 2) if network == "block" else None
    theta, losses = train(model, model.init(_generator(ctx.child_seed("init"))), x, y, cfg.steps, cfg.lr,
                          mask=mask, history=True)
    ctx.record_convergence(plateaued(losses))
    weights = [tuple(t.numpy() for t in model.unpack(theta, layer)) for layer in range(len(model.slices))]
    graph, modules = interaction_graph(weights, x.numpy(), cfg.tol, blocks=2)
    return [{"train_mse": float(((model.forward(theta, x) - y) ** 2).mean()),
             **module_recovery(graph, modules, ctx.child_seed("louvain") % 2**31)}]
