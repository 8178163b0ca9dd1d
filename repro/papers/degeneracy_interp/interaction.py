"""The interaction basis (Sec. 6) of a ReLU MLP, edge strengths between layers and their sparsity.

Layer features f_l = [h_l - E h_l; 1] (bias folded as a constant coordinate; centred as in the reference
library's configs, optional); the output layer's basis is the
eigenbasis of its Gram matrix. Backwards over the hidden layers:
    G_l = E[f_l f_l^T] = U D U^T (eigenvalues <= tol * max dropped),  f~ = D^-1/2 U^T f_l,
    J~(x) = d fhat_{l+1} / d f~ = C_{l+1}^T (d f_{l+1} / d f_l) U D^1/2,   M = E[J~^T J~] = V Lam V^T,
    fhat_l = C_l^T f_l,  C_l = U D^-1/2 V Lam^1/2   (point Jacobians, not the companion paper's integrated gradients).
Edges: E_ij = E_x[(d fhat_{l+1,i} / d fhat_{l,j} * fhat_{l,j})^2]; sparsity = Gini of the edge weights.
"""

from dataclasses import dataclass

import numpy as np


@dataclass
class Basis:
    """fhat = C^T f, and f = P fhat on the data's span (P a left inverse of C^T there); `modules` labels each
    basis vector with the module whose coordinates it lives on (all 0 when the layer is one module)."""
    c: np.ndarray
    p: np.ndarray
    strengths: np.ndarray
    modules: np.ndarray


def _eig_desc(matrix: np.ndarray, tol: float,
              modules: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eigenpairs in descending order, those below tol * max dropped, and each eigenvector's module. With `modules`
    (a label per coordinate) the eigenpairs are those of the module-diagonal part of `matrix`: coordinates of
    different modules count as uncorrelated, so no eigenvector mixes modules."""
    modules = np.zeros(len(matrix), dtype=int) if modules is None else np.asarray(modules)
    values, vectors, owners = [], [], []
    for module in np.unique(modules):
        index = np.flatnonzero(modules == module)
        evals, evecs = np.linalg.eigh(matrix[np.ix_(index, index)])
        embedded = np.zeros((len(matrix), len(index)))
        embedded[index] = evecs
        values.append(evals)
        vectors.append(embedded)
        owners.append(np.full(len(index), module))
    evals, evecs, owners = np.concatenate(values), np.hstack(vectors), np.concatenate(owners)
    order = np.argsort(evals)[::-1]
    evals, evecs, owners = evals[order], evecs[:, order], owners[order]
    keep = evals > tol * evals[0]
    return evals[keep], evecs[:, keep], owners[keep]


def layer_features(weights: list[tuple[np.ndarray, np.ndarray]], x: np.ndarray, centre: bool,
                   constant: bool = True) -> tuple[list, list]:
    """f_l = [h_l - c_l; 1] for the hidden layers (c_l = E h_l when `centre`, else 0), f_L = logits (centred alike);
    and the local maps A_l(x) = d f_{l+1} / d f_l, (n, out, in): the mean moves into the bias column. Without
    `constant` the coordinate 1 is left out (its node would carry only the biases, shared by every module)."""
    feats, maps = [], []
    h = x
    for layer, (w, b) in enumerate(weights):
        mean = h.mean(0) if centre and layer > 0 else np.zeros(h.shape[1])
        f = np.hstack([h - mean, np.ones((len(h), 1))])
        wb = np.hstack([w, (b + w @ mean)[:, None]])
        pre = f @ wb.T
        if layer == len(weights) - 1:
            out, local = pre - (pre.mean(0) if centre else 0), np.broadcast_to(wb, (len(h), *wb.shape))
        else:
            h = np.maximum(pre, 0)
            local = (pre > 0)[:, :, None] * wb[None]
            local = np.concatenate([local, np.zeros((len(h), 1, wb.shape[1]))], axis=1)   # constant row
        if layer > 0:
            feats.append(f)
        maps.append(local)
    feats.append(out)
    maps = maps[1:]
    if not constant:
        feats = [f[:, :-1] for f in feats[:-1]] + [feats[-1]]
        maps = [m[:, :-1, :-1] for m in maps[:-1]] + [maps[-1][:, :, :-1]]
    return feats, maps


def interaction_bases(feats: list[np.ndarray], maps: list[np.ndarray], tol: float,
                      modules: list[np.ndarray] | None = None) -> list[Basis]:
    """Bases for every layer in `feats` (hidden layers..., output), computed from the output backwards. With
    `modules` (per layer, a module label per coordinate) G_l and M are decomposed per module: statistics between
    modules, zero in the population when the modules are independent, are not allowed to rotate one into another."""
    modules = [None] * len(feats) if modules is None else modules
    n = len(feats[-1])
    d_out, u_out, owners = _eig_desc(feats[-1].T @ feats[-1] / n, tol, modules[-1])
    bases = [Basis(u_out, u_out, d_out, owners)]
    for f, local, labels in zip(feats[-2::-1], maps[::-1], modules[-2::-1]):
        d, u, owners = _eig_desc(f.T @ f / n, tol, labels)
        jac = bases[0].c.T @ local @ (u * np.sqrt(d))                 # J~(x), (n, k_{l+1}, k_l)
        flat = jac.reshape(-1, jac.shape[-1])
        lam, v, owners = _eig_desc(flat.T @ flat / n, tol, owners)
        c = u / np.sqrt(d) @ v * np.sqrt(lam)
        bases.insert(0, Basis(c, u * np.sqrt(d) @ v / np.sqrt(lam), lam, owners))
    return bases


def pca_bases(feats: list[np.ndarray], tol: float) -> list[Basis]:
    out = []
    for f in feats:
        d, u, owners = _eig_desc(f.T @ f / len(f), tol)
        out.append(Basis(u, u, d, owners))
    return out


def neuron_bases(feats: list[np.ndarray]) -> list[Basis]:
    return [Basis(np.eye(f.shape[1]), np.eye(f.shape[1]), np.ones(f.shape[1]), np.zeros(f.shape[1], dtype=int))
            for f in feats]


def edges(feats: list[np.ndarray], maps: list[np.ndarray], bases: list[Basis]) -> list[np.ndarray]:
    """E_ij between consecutive layers, (k_{l+1}, k_l) per transition."""
    out = []
    for f, local, here, nxt in zip(feats[:-1], maps, bases[:-1], bases[1:]):
        grad = nxt.c.T @ local @ here.p                                 # d fhat_{l+1} / d fhat_l
        out.append(np.mean((grad * (f @ here.c)[:, None, :]) ** 2, axis=0))
    return out


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative values (0 = uniform, -> 1 = one entry holds everything)."""
    v = np.sort(np.abs(values).ravel())
    n = v.size
    return float((2 * np.arange(1, n + 1) - n - 1) @ v / (n * v.sum()))
