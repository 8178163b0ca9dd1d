"""Tensor representations of 3x3 orthogonal groups and the projectors onto their equivariant maps.

A layer's features are c_r tensors of each rank r (scalars, vectors, rank-2, rank-3 tensors, flattened
row-major) laid out rank by rank. A group element g acts on a rank-r tensor by
g^{(x)r}, so a block of a weight matrix from a rank-b to a rank-a channel transforms as a rank-(a+b)
tensor: W_ab -> g^{(x)a} W_ab (g^{(x)b})^T, i.e. vec(W_ab) -> g^{(x)(a+b)} vec(W_ab). The equivariant
maps are therefore the invariants of T(a+b) in every block, and the orthogonal projector onto the
equivariant linear maps applies P_{a+b} (the projector onto the invariants of T(a+b)) block by block.
P_r is built from the null space of the stacked constraints: the Lie-algebra generators
(d rho_r(A) q = 0) and one reflection per group (rho_r(h) q = q), as EMLP does.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

import numpy as np
import torch
from scipy.linalg import expm, null_space


def _rotation_generator(axis: int) -> np.ndarray:
    """The so(3) generator of rotations about coordinate axis ``axis`` (0 = x, 1 = y, 2 = z)."""
    i, j = [k for k in range(3) if k != axis]
    generator = np.zeros((3, 3))
    generator[j, i], generator[i, j] = 1.0, -1.0
    return generator


def _reflection(axis: int) -> np.ndarray:
    return np.diag([-1.0 if k == axis else 1.0 for k in range(3)])


@dataclass(frozen=True)
class Group:
    """A subgroup of O(3) given by its Lie-algebra generators and discrete generators (3x3 each)."""

    name: str
    generators: tuple[np.ndarray, ...]
    reflections: tuple[np.ndarray, ...]


# O(2) embedded in 3 dimensions acts on two coordinates and fixes the third (EMLP's Embed(O(2), 3, slice)):
# o2xy rotates the x-y plane (about z) and reflects x; o2yz rotates about x; o2xz rotates about y.
GROUPS = {
    "o3": Group("o3", tuple(_rotation_generator(a) for a in range(3)), (-np.eye(3),)),
    "o2xy": Group("o2xy", (_rotation_generator(2),), (_reflection(0),)),
    "o2yz": Group("o2yz", (_rotation_generator(0),), (_reflection(1),)),
    "o2xz": Group("o2xz", (_rotation_generator(1),), (_reflection(0),)),
}


def tensor_power(g: np.ndarray, rank: int) -> np.ndarray:
    out = np.ones((1, 1))
    for _ in range(rank):
        out = np.kron(out, g)
    return out


def lie_action(a: np.ndarray, rank: int) -> np.ndarray:
    """d rho_r(A) = sum over slots of I (x) ... (x) A (x) ... (x) I."""
    size = 3 ** rank
    out = np.zeros((size, size))
    for slot in range(rank):
        out += np.kron(np.kron(np.eye(3 ** slot), a), np.eye(3 ** (rank - slot - 1)))
    return out


def invariant_basis(group: Group, rank: int) -> np.ndarray:
    """An orthonormal basis Q (3^r, k) of the group-invariant rank-r tensors: the null space of the
    constraints. Q is orthonormal, so Q Q^T is the orthogonal projector onto them."""
    if rank == 0:
        return np.ones((1, 1))
    size = 3 ** rank
    constraints = [lie_action(a, rank) for a in group.generators]
    constraints += [tensor_power(h, rank) - np.eye(size) for h in group.reflections]
    return null_space(np.concatenate(constraints))


def invariant_projector(group: Group, rank: int) -> np.ndarray:
    basis = invariant_basis(group, rank)
    return basis @ basis.T


@cache
def named_basis(name: str, rank: int) -> np.ndarray:
    return invariant_basis(GROUPS[name], rank)


@dataclass(frozen=True)
class TensorRep:
    """counts[r] tensors of rank r (r = 0: scalars, 1: vectors, ...)."""

    counts: tuple[int, ...]

    @property
    def dims(self) -> list[int]:
        return [3 ** r for r in range(len(self.counts))]

    @property
    def size(self) -> int:
        return sum(c * d for c, d in zip(self.counts, self.dims))

    def gated(self) -> "TensorRep":
        """One extra scalar (a gate) per non-scalar channel; gates follow the rep's own scalars."""
        return TensorRep((self.counts[0] + sum(self.counts[1:]), *self.counts[1:]))

    def offsets(self) -> list[int]:
        return [int(o) for o in np.cumsum([0] + [c * d for c, d in zip(self.counts, self.dims)])[:-1]]

    def rho(self, g: np.ndarray) -> np.ndarray:
        """The (block-diagonal) action of a 3x3 group element on this representation."""
        out = np.zeros((self.size, self.size))
        start = 0
        for r, count in enumerate(self.counts):
            block = tensor_power(g, r)
            for _ in range(count):
                out[start:start + len(block), start:start + len(block)] = block
                start += len(block)
        return out


def uniform_rep(channels: int) -> TensorRep:
    """EMLP's uniform_rep heuristic for d = 3: the highest rank r with (r + 1) 3^r <= channels, then rounds
    of [3^r scalars, 3^(r-1) vectors, ..., 1 rank-r tensor] until the channels are used up."""
    max_rank = 0
    while (max_rank + 1) * 3 ** max_rank <= channels:
        max_rank += 1
    max_rank -= 1
    counts = np.zeros(max_rank + 1, dtype=int)
    while channels > 0:
        counts += [3 ** (max_rank - r) for r in range(max_rank + 1)]
        channels -= (max_rank + 1) * 3 ** max_rank
    return TensorRep(tuple(int(c) for c in counts))


class WeightProjector:
    """The orthogonal projectors onto the equivariant maps rep_in -> rep_out of several groups.

    The flattened weight is gathered once into blocks (rank a <- rank b, every copy pair (i, j) a row of
    length 3^(a+b)); each block is projected with P_{a+b} = Q Q^T, Q the orthonormal basis of the rank-(a+b)
    invariants of a group (zero-padded to a common width across the groups), then scattered back.
    """

    def __init__(self, rep_out: TensorRep, rep_in: TensorRep, group_names: list[str], device: str) -> None:
        self.shape = (rep_out.size, rep_in.size)
        index = np.arange(rep_out.size * rep_in.size).reshape(self.shape)
        gathered, self.blocks = [], []
        for a, (ma, oa, da) in enumerate(zip(rep_out.counts, rep_out.offsets(), rep_out.dims)):
            for b, (mb, ob, db) in enumerate(zip(rep_in.counts, rep_in.offsets(), rep_in.dims)):
                if ma == 0 or mb == 0:
                    continue
                block = index[oa:oa + ma * da, ob:ob + mb * db].reshape(ma, da, mb, db).transpose(0, 2, 1, 3)
                gathered.append(block.reshape(-1))
                bases = [named_basis(name, a + b) for name in group_names]
                width = max(basis.shape[1] for basis in bases)
                padded = np.zeros((len(bases), da * db, width))
                for k, basis in enumerate(bases):
                    padded[k, :, :basis.shape[1]] = basis
                q = torch.tensor(padded, dtype=torch.float32, device=device) if width else None
                self.blocks.append((ma * mb, da * db, q))
        order = np.concatenate(gathered)
        self.order = torch.tensor(order, device=device)
        self.inverse = torch.tensor(np.argsort(order), device=device)
        self.groups = len(group_names)

    def blocks_of(self, w: torch.Tensor) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(block (rows, width), its projections P_G block (groups, rows, width)) for every block of w; a rank
        with no invariants projects to zero."""
        flat, start = w.reshape(-1)[self.order], 0
        for rows, width, q in self.blocks:
            block = flat[start:start + rows * width].reshape(rows, width)
            start += rows * width
            yield block, (block.new_zeros(self.groups, rows, width) if q is None else (block @ q) @ q.transpose(1, 2))

    def __call__(self, w: torch.Tensor) -> torch.Tensor:
        """P_G w for every group: (out, in) -> (groups, out, in)."""
        parts = [projected.reshape(self.groups, -1) for _, projected in self.blocks_of(w)]
        return torch.cat(parts, dim=1)[:, self.inverse].reshape(self.groups, *self.shape)

    def residuals(self, w: torch.Tensor) -> torch.Tensor:
        """1/2 ||w - P_G w||^2 for every group: (groups,), summed block by block where the blocks lie (a sum of
        squares needs no scatter back to the weight's layout)."""
        return sum(0.5 * ((block - projected) ** 2).sum((-2, -1)) for block, projected in self.blocks_of(w))


def bias_projector(rep: TensorRep, group_names: list[str], device: str) -> torch.Tensor:
    """The projectors onto the invariant vectors of rep (the only biases an equivariant map may have),
    dense (groups, size, size): block-diagonal in P_r over the channels of rank r."""
    out = np.zeros((len(group_names), rep.size, rep.size))
    for k, name in enumerate(group_names):
        start = 0
        for r, count in enumerate(rep.counts):
            basis = named_basis(name, r)
            for _ in range(count):
                out[k, start:start + 3 ** r, start:start + 3 ** r] = basis @ basis.T
                start += 3 ** r
    return torch.tensor(out, dtype=torch.float32, device=device)


def sample_elements(group: Group, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Group elements as the reference samples them: exp of a Gaussian Lie-algebra element, times a
    reflection with probability 1/2."""
    out = []
    for _ in range(count):
        g = expm(sum(rng.standard_normal() * a for a in group.generators))
        for h in group.reflections:
            if rng.integers(2):
                g = g @ h
        out.append(g)
    return out
