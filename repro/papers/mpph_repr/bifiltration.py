"""Scale x co-density bifiltrations on the normalised box [0, 1]^2.

A simplex s gets (radius(s) / radius_max, (max_{v in s} codensity(v) - lo) / (hi - lo)): the scale of the Rips
(or alpha) complex and the lower-star co-density, co-density = -log of a Gaussian kernel density estimate, so
both parameters grow along the filtration. The box is fixed per experiment so that images are comparable.
"""

from dataclasses import dataclass

import gudhi
import multipers as mp
import numpy as np
from sklearn.neighbors import KernelDensity


def codensity(points: np.ndarray, bandwidth: float) -> np.ndarray:
    """-log of the Gaussian KDE at each point (co-density increases where points are sparse)."""
    return -KernelDensity(bandwidth=bandwidth).fit(points).score_samples(points)


@dataclass
class Bifiltration:
    """A 2-skeleton with two filtration values per simplex, kept by dimension: ``simplices[k]`` is (m_k, k+1)
    vertex ids and ``values[k]`` (m_k, 2)."""

    simplices: list[np.ndarray]
    values: list[np.ndarray]

    def multi_tree(self) -> mp.SimplexTreeMulti:
        # multipers 2.3.2 cannot convert a gudhi 3.13 SimplexTree (segfault: different C++ layouts), so the
        # simplices are inserted directly, faces first.
        tree = mp.SimplexTreeMulti(num_parameters=2)
        for simplices, values in zip(self.simplices, self.values):
            if len(simplices):
                tree.insert_batch(np.ascontiguousarray(simplices.T, dtype=np.int32),
                                  np.ascontiguousarray(values, dtype=np.float64))
        return tree

    def scale_tree(self) -> gudhi.SimplexTree:
        """The one-parameter filtration by scale alone (the first parameter), as gudhi sees it."""
        tree = gudhi.SimplexTree()
        for simplices, values in zip(self.simplices, self.values):
            tree.insert_batch(np.ascontiguousarray(simplices.T, dtype=np.int32), values[:, 0].copy())
        return tree

    @property
    def num_simplices(self) -> int:
        return sum(len(s) for s in self.simplices)

    def jittered(self, eps: float, rng: np.random.Generator) -> "Bifiltration":
        """Every value moved by uniform noise in [-eps, eps], then raised to the max over the faces so that it
        is still a filtration; the result is within eps of the original in the sup norm (if f <= g on faces
        then max_faces(f + noise) <= f(s) + eps)."""
        values = []
        for k, (simplices, old) in enumerate(zip(self.simplices, self.values)):
            new = old + rng.uniform(-eps, eps, size=old.shape)
            if k > 0 and len(simplices):
                index = {tuple(s): i for i, s in enumerate(self.simplices[k - 1])}
                for drop in range(k + 1):
                    faces = np.delete(simplices, drop, axis=1)
                    rows = np.fromiter((index[tuple(f)] for f in faces), dtype=np.int64, count=len(faces))
                    new = np.maximum(new, values[k - 1][rows])
            values.append(new)
        return Bifiltration(self.simplices, values)


def _from_gudhi(tree: gudhi.SimplexTree, radius_of, codensity_values: np.ndarray, radius_max: float,
                codensity_box: tuple[float, float]) -> Bifiltration:
    by_dim: dict[int, list] = {0: [], 1: [], 2: []}
    for simplex, value in tree.get_simplices():
        by_dim[len(simplex) - 1].append((sorted(simplex), value))
    lo, hi = codensity_box
    simplices, values = [], []
    for k in range(3):
        ids = np.array([s for s, _ in by_dim[k]], dtype=np.int64).reshape(-1, k + 1)
        radius = radius_of(np.array([v for _, v in by_dim[k]], dtype=float)) / radius_max
        density = (codensity_values[ids].max(axis=1) - lo) / (hi - lo) if len(ids) else np.zeros(0)
        simplices.append(ids)
        values.append(np.stack([radius, density], axis=1).reshape(-1, 2))
    return Bifiltration(simplices, values)


def rips_codensity(points: np.ndarray, radius_max: float, codensity_values: np.ndarray,
                   codensity_box: tuple[float, float], radius_scale: float | None = None) -> Bifiltration:
    """Rips complex up to edge length ``radius_max`` (2-skeleton) x lower-star co-density; radii are divided by
    ``radius_scale`` (default ``radius_max``)."""
    tree = gudhi.RipsComplex(points=points, max_edge_length=radius_max).create_simplex_tree(max_dimension=2)
    return _from_gudhi(tree, lambda r: r, codensity_values, radius_scale or radius_max, codensity_box)


def alpha_codensity(points: np.ndarray, radius_max: float, codensity_values: np.ndarray,
                    codensity_box: tuple[float, float]) -> Bifiltration:
    """Alpha (Delaunay-Cech) complex, radius = sqrt of gudhi's squared alpha value, x lower-star co-density.
    Simplices above 1.5 radius_max are dropped (a subcomplex: faces enter first): near-flat triangles on the
    convex hull have huge circumradii that would stretch the module's box, and the images stop at radius_max."""
    tree = gudhi.AlphaComplex(points=points).create_simplex_tree()
    tree.prune_above_filtration((1.5 * radius_max) ** 2)
    return _from_gudhi(tree, np.sqrt, codensity_values, radius_max, codensity_box)
