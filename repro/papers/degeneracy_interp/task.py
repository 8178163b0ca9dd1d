"""Degeneracy experiments (card: shared/papers/degeneracy_interp.md):

- free: a student MLP trained on inputs confined to a subspace, with planted dead / synchronised neurons;
  predicted free directions (Sec. 3) vs the measured null space of the behavioural Gauss-Newton matrix, and the
  local learning coefficient of the behavioural loss by SGLD vs (N - K) / 2;
- basis: the interaction basis (Sec. 6) of a digits MLP: invariance under function-preserving
  reparameterisations, and sparsity (Gini) of edges in the neuron, PCA and interaction bases.
"""

import numpy as np
import torch
from omegaconf import DictConfig
from sklearn.datasets import load_digits
from threadpoolctl import threadpool_limits

from repro.core.context import RunContext
from repro.core.errors import ConfigError
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
from repro.papers.degeneracy_interp.llc import estimate_llc, localized_quadratic_llc
from repro.papers.degeneracy_interp.mlp import FlatMLP, train
from repro.papers.degeneracy_interp.modularity import block_mask, interaction_graph, module_recovery

VARIANTS = {"plain": (0, 0), "dead2": (2, 0), "dead4": (4, 0), "sync3": (0, 3), "sync5": (0, 5)}


def run(cfg: DictConfig, ctx: RunContext) -> list[dict]:
    unknown = sorted(set(cfg.free.variants) - set(VARIANTS))
    if unknown:
        raise ConfigError(f"paper.free.variants has unknown {unknown}; choose from {list(VARIANTS)}")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # small float64 problems: threads only add contention on a shared host
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            rows = []
            for seed in ctx.replicate_seeds():
                rows += ctx.unit(f"free-{seed}", lambda s=seed: free_direction_rows(cfg.free, s, ctx))
                rows += ctx.unit(f"basis-{seed}", lambda s=seed: basis_rows(cfg.basis, s))
                rows += ctx.unit(f"modularity-{seed}", lambda s=seed: modularity_rows(cfg.modularity, s))
                ctx.log.info("replicate %d done", seed)
            return rows
    finally:
        torch.set_num_threads(threads)


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


def free_direction_rows(cfg: DictConfig, seed: int, ctx: RunContext) -> list[dict]:
    generator = torch.Generator().manual_seed(seed % 2**31)
    x, y = teacher_data(cfg, generator)
    model = FlatMLP([cfg.input, *cfg.hidden, 1])
    theta = train(model, model.init(generator), x, y, cfg.steps, cfg.lr)
    rows = []
    for variant in cfg.variants:
        dead, synchronised = VARIANTS[variant]
        star = plant(model, theta, dead, synchronised, cfg.plant_bias)
        jac = per_sample_jacobians(model, star, x)
        tangents = tangent_vectors(model, star, x, cfg.rel_tol)
        hessian = gauss_newton(jac)
        measured = null_dimension(hessian, cfg.rel_tol)
        predicted = predicted_free_directions(tangents, cfg.rank_tol)
        target = model.forward(star, x).detach()

        def behavioural_loss(t: torch.Tensor, target: torch.Tensor = target) -> torch.Tensor:
            return ((model.forward(t, x) - target) ** 2).sum(-1).mean()

        # Step size from the stability limit of the stiffest direction: eps * n beta * max eig(H_B) = fraction.
        curvature = np.linalg.eigvalsh(hessian)
        eps = cfg.sgld.step_fraction / (cfg.n / np.log(cfg.n) * curvature[-1])
        llc = estimate_llc(behavioural_loss, star, cfg.n, eps, cfg.sgld.gamma, cfg.sgld.steps,
                           cfg.sgld.burn_in, cfg.sgld.chains, generator)
        rows.append({"part": "free", "variant": variant, "seed": seed, "n_params": model.size,
                     "train_mse": float(((model.forward(theta, x) - y) ** 2).mean()),
                     "free_predicted": predicted, "free_measured": measured, "free_gap": abs(measured - predicted),
                     "tangent_residual": tangent_residual(jac, tangents),
                     "llc_predicted": (model.size - measured) / 2, "llc_sgld": llc,
                     "llc_localized_quadratic": localized_quadratic_llc(curvature, cfg.n, cfg.sgld.gamma),
                     "sgld_eps": eps})
        ctx.log.info("free directions %s: predicted %d, measured %d, llc %.1f vs %.1f", variant, predicted,
                     measured, llc, (model.size - measured) / 2)
    return rows


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


def digits_network(cfg: DictConfig, seed: int) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
    digits = load_digits()
    x = torch.tensor(digits.data / 16.0)
    y = torch.nn.functional.one_hot(torch.tensor(digits.target), 10).double()
    generator = torch.Generator().manual_seed(seed % 2**31)
    model = FlatMLP([64, *cfg.hidden, 10])
    steps = cfg.epochs * (len(x) // cfg.batch)
    theta = train(model, model.init(generator), x, y, steps, cfg.lr, cfg.batch, generator)
    weights = [tuple(t.numpy() for t in model.unpack(theta, layer)) for layer in range(len(model.slices))]
    return weights, x.numpy()


def basis_rows(cfg: DictConfig, seed: int) -> list[dict]:
    weights, x = digits_network(cfg, seed)
    feats, maps = layer_features(weights, x, cfg.centre)
    bases = {"neuron": neuron_bases(feats), "pca": pca_bases(feats, cfg.tol),
             "interaction": interaction_bases(feats, maps, cfg.tol)}
    rows = [{"part": "sparsity", "basis": name, "seed": seed, "layer": f"{layer + 1}->{layer + 2}",
             "gini": gini(edge), "dim_in": edge.shape[1], "dim_out": edge.shape[0]}
            for name, basis in bases.items() for layer, edge in enumerate(edges(feats, maps, basis))]
    rng = np.random.default_rng(seed)
    moved = reparameterise(weights, rng, dead_inputs=(x == 0).all(0))
    feats_moved, maps_moved = layer_features(moved, x, cfg.centre)
    bases_moved = interaction_bases(feats_moved, maps_moved, cfg.tol)
    logits_change = float(np.abs(feats_moved[-1] - feats[-1]).max())
    for layer, (b0, b1) in enumerate(zip(bases["interaction"][:-1], bases_moved[:-1])):
        f0, f1 = feats[layer] @ b0.c, feats_moved[layer] @ b1.c
        top = min(cfg.compare_top, f0.shape[1], f1.shape[1])
        corr = [abs(np.corrcoef(f0[:, i], f1[:, i])[0, 1]) for i in range(top)]
        rows.append({"part": "invariance", "basis": "interaction", "seed": seed, "layer": f"hidden {layer + 1}",
                     "min_abs_corr": float(min(corr)), "logits_change": logits_change,
                     "weight_change": float(np.abs(moved[layer][0] - weights[layer][0]).max()),
                     "dim": f0.shape[1], "dim_moved": f1.shape[1]})
    return rows


def modularity_rows(cfg: DictConfig, seed: int) -> list[dict]:
    """x = [x_A; x_B] independent N(0, I) blocks, y = [teacher_A(x_A), teacher_B(x_B)]; block vs dense student."""
    generator = torch.Generator().manual_seed(seed % 2**31)
    x = torch.randn(cfg.n, 2 * cfg.block_input, generator=generator, dtype=torch.float64)
    ys = []
    for block in range(2):
        z = x[:, block * cfg.block_input:(block + 1) * cfg.block_input]
        w1 = torch.randn(cfg.block_input, cfg.teacher_hidden, generator=generator, dtype=torch.float64)
        w2 = torch.randn(cfg.teacher_hidden, 1, generator=generator, dtype=torch.float64)
        ys.append(torch.tanh(z @ w1) @ w2 / np.sqrt(cfg.teacher_hidden))
    y = torch.cat(ys, dim=1)
    model = FlatMLP([2 * cfg.block_input, *[2 * cfg.tower_width] * cfg.layers, 2])
    rows = []
    for network in ("block", "dense"):
        mask = block_mask(model, 2) if network == "block" else None
        theta = train(model, model.init(generator), x, y, cfg.steps, cfg.lr, mask=mask)
        weights = [tuple(t.numpy() for t in model.unpack(theta, layer)) for layer in range(len(model.slices))]
        graph, modules = interaction_graph(weights, x.numpy(), cfg.tol, blocks=2)
        rows.append({"part": "modularity", "network": network, "seed": seed,
                     "train_mse": float(((model.forward(theta, x) - y) ** 2).mean()),
                     **module_recovery(graph, modules, seed % 2**31)})
    return rows
