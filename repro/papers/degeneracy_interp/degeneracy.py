"""Free directions of a trained ReLU MLP: predicted from the network's internal structure vs the measured null
space of the behavioural Gauss-Newton matrix H_B = (1/n) sum_x J_theta(x)^T J_theta(x) (Sec. 3 of the paper).

Predicted tangent vectors (each keeps f_theta(x) fixed to first order on every data point):
- (a) activations of layer l-1 (with the constant 1 for the bias) confined to a subspace: any in-weight change
  of a unit along a null vector v of E[[h;1][h;1]^T 1(unit active)] (for a ReLU, only the points where it is
  active constrain its in-weights: our refinement of the layer-wise statement, needed for rarely active units);
- (b) Jacobians passed back to layer l confined to a subspace: the out-weights of input coordinate k of layer l
  along a null vector u of E[g g^T 1(h_k != 0)], g = df/dp_l (only the points where coordinate k is nonzero
  constrain its out-weights: the mirror image of the refinement in (a), needed where the units reading a rarely
  active unit are synchronised on its active points);
- rescaling of each alive ReLU (in-weights x (1 + e), out-weights x (1 - e));
- dead ReLUs (never active): all their in- and out-weights;
- (c) synchronised ReLUs (identical activation pattern on the data): the local GL(c) moves W_g -> (I + eM) W_g,
  A_g -> A_g (I - eM); for an always-active group also bias shifts absorbed by the next layer's bias.

Every null space and rank is decided by an SVD of the sample matrix itself (J, activations, backward Jacobians) at
float64 rounding level, never by a relative cut on the eigenvalues of a Gram matrix: Gram matrices square the
condition number, and with planted +-50 biases (columns of size 50 beside columns of size 1) their smallest genuine
eigenvalues fall below any fixed cut such as 1e-10 x max (they scale like bias^-4 relative to the largest).
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


def null_dimension(jac: torch.Tensor) -> int:
    """N - rank of the stacked per-sample Jacobians (the null space of H_B = J^T J / n), the rank decided on J itself
    at float64 rounding level (numpy's matrix_rank: singular values below sigma_max * max(rows, N) * eps are zero).
    Deciding on the eigenvalues of H_B instead squares J's condition number: a relative cut there must sit between
    H_B's rounding floor (~1e-16) and its smallest genuine eigenvalues, which reach ~1e-11 on trained students."""
    flat = jac.reshape(-1, jac.shape[-1]).numpy()
    return flat.shape[1] - int(np.linalg.matrix_rank(flat))


def _null_vectors(samples: np.ndarray) -> np.ndarray:
    """Columns spanning the null space of the rows of `samples` (of E[s s^T]), decided by the SVD of the samples at
    float64 rounding level, as in null_dimension (scipy's null_space, without its full m x m left factor)."""
    rows, dim = samples.shape
    padded = np.vstack([samples, np.zeros((max(dim - rows, 0), dim))])     # zero rows: the same row space, V square
    _, s, vt = np.linalg.svd(padded, full_matrices=False)
    return vt[s <= s.max() * max(rows, dim) * np.finfo(float).eps].T


def _vector(model: FlatMLP) -> np.ndarray:
    return np.zeros(model.size)


def tangent_vectors(model: FlatMLP, theta: torch.Tensor, x: torch.Tensor) -> np.ndarray:
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
            for v in _null_vectors(augmented[seen]).T:
                w_delta = np.zeros((fan_out, model.widths[layer]))
                b_delta = np.zeros(fan_out)
                w_delta[unit], b_delta[unit] = v[:-1], v[-1]
                out.append(put(layer, w_delta, b_delta))
    # (b) Jacobian-null directions: g_l = df/dp_l, computed backwards from the output (g = I there). Out-weights of
    # input coordinate k of layer l along null vectors u of g, taken over the points where coordinate k is nonzero
    # (the mirror image of the refinement in (a): g(x)^T u h_k(x) = 0 needs u orthogonal to g(x) only where
    # h_k(x) != 0; the constant coordinate of the bias is nonzero everywhere).
    g = np.broadcast_to(np.eye(model.widths[-1]), (len(x), model.widths[-1], model.widths[-1]))
    for layer in range(layers - 1, -1, -1):
        fan_out, fan_in = model.widths[layer + 1], model.widths[layer]
        for k in range(fan_in + 1):
            seen = inputs[layer][:, k] != 0 if k < fan_in else np.ones(len(x), dtype=bool)
            if not seen.any():
                continue                                   # a dead input unit: its out-weights are added below
            for u in _null_vectors(g[seen].reshape(-1, fan_out)).T:
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
