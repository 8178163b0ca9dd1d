"""Free directions of a trained ReLU MLP: predicted from the network's internal structure vs the measured null
space of the behavioural Gauss-Newton matrix H_B = (1/n) sum_x J_theta(x)^T J_theta(x) (Sec. 3 of the paper).

Predicted tangent vectors (each keeps f_theta(x) fixed to first order on every data point):
- (a) activations of layer l-1 (with the constant 1 for the bias) confined to a subspace: any in-weight change
  of a unit along a null vector v of E[[h;1][h;1]^T 1(unit active)] (for a ReLU, only the points where it is
  active constrain its in-weights: our refinement of the layer-wise statement, needed for rarely active units);
- (b) Jacobians passed back to layer l confined to a subspace: any out-weight change along a null vector u of
  E[g g^T], g = df/dp_l, for any input coordinate of layer l;
- rescaling of each alive ReLU (in-weights x (1 + e), out-weights x (1 - e));
- dead ReLUs (never active): all their in- and out-weights;
- (c) synchronised ReLUs (identical activation pattern on the data): the local GL(c) moves W_g -> (I + eM) W_g,
  A_g -> A_g (I - eM); for an always-active group also bias shifts absorbed by the next layer's bias.
"""

import numpy as np
import torch
from torch.func import jacrev, vmap

from repro.papers.degeneracy_interp.mlp import FlatMLP


def per_sample_jacobians(model: FlatMLP, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """J[i] = d f_theta(x_i) / d theta, shape (n, d_out, N)."""
    return vmap(jacrev(model.forward), in_dims=(None, 0))(theta, x)


def gauss_newton(jac: torch.Tensor) -> np.ndarray:
    """H_B = (1/n) sum_i J_i^T J_i, (N, N) float64."""
    flat = jac.reshape(-1, jac.shape[-1])
    return (flat.T @ flat).numpy() / jac.shape[0]


def null_dimension(matrix: np.ndarray, rel_tol: float) -> int:
    """Eigenvalues below rel_tol * max count as zero."""
    evals = np.linalg.eigvalsh(matrix)
    return int(np.sum(evals < rel_tol * evals.max()))


def _null_vectors(samples: np.ndarray, rel_tol: float) -> np.ndarray:
    """Columns spanning the null space of E[s s^T] for rows s of `samples`."""
    gram = samples.T @ samples / len(samples)
    evals, evecs = np.linalg.eigh(gram)
    return evecs[:, evals < rel_tol * max(evals.max(), 1e-300)]


def _vector(model: FlatMLP) -> np.ndarray:
    return np.zeros(model.size)


def tangent_vectors(model: FlatMLP, theta: torch.Tensor, x: torch.Tensor, rel_tol: float) -> np.ndarray:
    """All predicted free directions as rows, (count, N)."""
    inputs, pre = model.activations(theta, x)
    inputs = [h.numpy() for h in inputs]
    active = [(p > 0).numpy() for p in pre]
    layers = len(model.slices)
    weights = [[t.numpy() for t in model.unpack(theta, layer)] for layer in range(layers)]
    out: list[np.ndarray] = []

    def put(layer: int, w_delta: np.ndarray | None = None, b_delta: np.ndarray | None = None,
            target: np.ndarray | None = None) -> np.ndarray:
        v = _vector(model) if target is None else target
        w, b = model.slices[layer]
        if w_delta is not None:
            v[w] += w_delta.ravel()
        if b_delta is not None:
            v[b] += b_delta
        return v

    # (a) activation-null directions: in-weights of a unit of layer l along null vectors of [h; 1], taken over
    # the points where the unit is active (all points for the linear output layer; a ReLU active on few points
    # sees a smaller subspace than the layer does).
    for layer in range(layers):
        fan_out = model.widths[layer + 1]
        augmented = np.hstack([inputs[layer], np.ones((len(x), 1))])
        for unit in range(fan_out):
            seen = active[layer][:, unit] if layer < layers - 1 else np.ones(len(x), dtype=bool)
            if not seen.any():
                continue                                   # dead: all its weights are added below
            for v in _null_vectors(augmented[seen], rel_tol).T:
                w_delta = np.zeros((fan_out, model.widths[layer]))
                b_delta = np.zeros(fan_out)
                w_delta[unit], b_delta[unit] = v[:-1], v[-1]
                out.append(put(layer, w_delta, b_delta))
    # (b) Jacobian-null directions: g_l = df/dp_l, computed backwards from the output (g = I there).
    g = np.broadcast_to(np.eye(model.widths[-1]), (len(x), model.widths[-1], model.widths[-1]))
    for layer in range(layers - 1, -1, -1):
        fan_out, fan_in = model.widths[layer + 1], model.widths[layer]
        for u in _null_vectors(g.reshape(-1, fan_out), rel_tol).T:
            for k in range(fan_in + 1):
                w_delta, b_delta = np.zeros((fan_out, fan_in)), np.zeros(fan_out)
                if k < fan_in:
                    w_delta[:, k] = u
                else:
                    b_delta = u.copy()
                out.append(put(layer, w_delta, b_delta))
        if layer > 0:
            g = (g @ weights[layer][0]) * active[layer - 1][:, None, :]
    # Per hidden layer: rescalings, dead units, synchronised groups.
    for layer in range(layers - 1):
        w_in, b_in = weights[layer]
        w_out = weights[layer + 1][0]
        patterns: dict[bytes, list[int]] = {}
        for unit in range(model.widths[layer + 1]):
            pattern = active[layer][:, unit]
            if not pattern.any():
                for k in range(model.widths[layer] + 1):
                    w_delta, b_delta = np.zeros_like(w_in), np.zeros_like(b_in)
                    if k < model.widths[layer]:
                        w_delta[unit, k] = 1.0
                    else:
                        b_delta[unit] = 1.0
                    out.append(put(layer, w_delta, b_delta))
                for k in range(model.widths[layer + 2]):
                    w_delta = np.zeros_like(w_out)
                    w_delta[k, unit] = 1.0
                    out.append(put(layer + 1, w_delta))
                continue
            patterns.setdefault(pattern.tobytes(), []).append(unit)
            w_delta, b_delta = np.zeros_like(w_in), np.zeros_like(b_in)
            w_delta[unit], b_delta[unit] = w_in[unit], b_in[unit]
            out_delta = np.zeros_like(w_out)
            out_delta[:, unit] = -w_out[:, unit]
            out.append(put(layer + 1, out_delta, target=put(layer, w_delta, b_delta)))
        for group in patterns.values():
            always = bool(active[layer][:, group[0]].all())
            for a in group:
                for c in group:
                    if a == c:
                        continue
                    w_delta, b_delta = np.zeros_like(w_in), np.zeros_like(b_in)
                    w_delta[a], b_delta[a] = w_in[c], b_in[c]
                    out_delta = np.zeros_like(w_out)
                    out_delta[:, c] = -w_out[:, a]
                    out.append(put(layer + 1, out_delta, target=put(layer, w_delta, b_delta)))
                if always:
                    b_delta = np.zeros_like(b_in)
                    b_delta[a] = 1.0
                    out.append(put(layer + 1, None, -w_out[:, a], target=put(layer, None, b_delta)))
    return np.array(out) if out else np.zeros((0, model.size))


def predicted_free_directions(tangents: np.ndarray, rel_tol: float) -> int:
    """Dimension of the span of the tangent vectors."""
    if len(tangents) == 0:
        return 0
    s = np.linalg.svd(tangents / np.linalg.norm(tangents, axis=1, keepdims=True), compute_uv=False)
    return int(np.sum(s > rel_tol * s.max()))


def tangent_residual(jac: torch.Tensor, tangents: np.ndarray) -> float:
    """max_v ||J v|| / (||v|| ||J||): how far the predicted directions are from exactly free (0 = free)."""
    flat = jac.reshape(-1, jac.shape[-1]).numpy()
    if len(tangents) == 0:
        return 0.0
    moved = np.linalg.norm(flat @ tangents.T, axis=0) / np.linalg.norm(tangents, axis=1)
    return float(moved.max() / np.linalg.norm(flat, 2))
