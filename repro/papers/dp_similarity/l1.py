"""Pure eps-DP structures answering F(y) = sum_{x in X} ||x - y||_1 for any number of queries y, X in [0, R]^d.

Per coordinate, with C(y) the number of points below y and S(y) their sum, n the count and T the total,
    sum_x |x_i - y| = y (2 C(y) - n) - 2 S(y) + T.
Both structures bin [0, R] into B = 2^L bins and release noisy counts and coordinate sums; queries read only the
released arrays (the raw data can be deleted after `build`).

- DyadicTree (the paper's): counts and sums of every dyadic interval (L + 1 levels), so a prefix is a sum of at
  most L noisy nodes. One point touches h = L + 1 nodes per coordinate: add/remove l1 sensitivity d h for the
  counts and d h R for the sums.
- FlatHistogram (baseline): counts and sums of the B bins; h = 1; a prefix sums up to B noisy bins.
Budget: eps / 2 for the counts (Laplace(2 d h / eps)) and eps / 2 for the sums (Laplace(2 d h R / eps)), pure
eps-DP by composition. (One Laplace scale d h (1 + R) / eps for both arrays is also eps-DP but puts R times too much
noise on the counts, which the query multiplies by y <= R.)
Points in the query's own bin count as above it (error <= 2 x bin width per such point).
"""

import numpy as np


def bin_index(values: np.ndarray, radius: float, bins: int) -> np.ndarray:
    return np.clip((values / radius * bins).astype(np.int64), 0, bins - 1)


def laplace_scales(sensitivity: tuple[float, float], eps: float) -> np.ndarray:
    """Laplace scales of the (counts, sums) arrays, eps / 2 each, shaped to broadcast over (2, d, nodes)."""
    return (2 * np.asarray(sensitivity, dtype=float) / eps)[:, None, None]


class DyadicTree:
    """levels[l] holds (counts, sums), each (d, 2^l): node j of level l covers bins [j 2^(L-l), (j+1) 2^(L-l))."""

    def __init__(self, radius: float, log_bins: int) -> None:
        self.radius, self.log_bins, self.bins = radius, log_bins, 2**log_bins

    def sensitivity(self, dim: int) -> tuple[float, float]:
        """(counts, sums) l1 sensitivities: d (L + 1) and d (L + 1) R."""
        return dim * (self.log_bins + 1), dim * (self.log_bins + 1) * self.radius

    def exact_arrays(self, points: np.ndarray) -> list[np.ndarray]:
        """Pre-noise released arrays: per level, stack of (counts, sums) with shape (2, d, 2^l)."""
        points = np.clip(points, 0, self.radius)
        index = bin_index(points, self.radius, self.bins)                            # (n, d)
        arrays = []
        for level in range(self.log_bins + 1):
            node = index >> (self.log_bins - level)
            flat = node + (np.arange(points.shape[1]) * 2**level)[None, :]        # distinct ids per coordinate
            size = points.shape[1] * 2**level
            counts = np.bincount(flat.ravel(), minlength=size)
            sums = np.bincount(flat.ravel(), weights=points.ravel(), minlength=size)
            arrays.append(np.stack([counts, sums]).reshape(2, points.shape[1], 2**level).astype(float))
        return arrays

    def build(self, points: np.ndarray, eps: float, rng: np.random.Generator) -> "DyadicTree":
        scales = laplace_scales(self.sensitivity(points.shape[1]), eps)
        self.levels = [a + rng.laplace(size=a.shape) * scales for a in self.exact_arrays(points)]
        return self

    def prefix(self, below: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Noisy (count, sum) of bins [0, k) per query and coordinate; below: (q, d) bin counts k < B."""
        coordinate = np.arange(below.shape[1])[None, :]
        count, total = np.zeros(below.shape), np.zeros(below.shape)
        for bit in range(self.log_bins):                  # bit j: a node of 2^j bins at level L - j
            shifted = below >> bit
            use = (shifted & 1).astype(bool)
            node = np.maximum(shifted - 1, 0)
            counts, sums = self.levels[self.log_bins - bit]
            count += np.where(use, counts[coordinate, node], 0.0)
            total += np.where(use, sums[coordinate, node], 0.0)
        return count, total

    def totals(self) -> tuple[np.ndarray, np.ndarray]:
        return self.levels[0][0][:, 0], self.levels[0][1][:, 0]

    def query(self, queries: np.ndarray) -> np.ndarray:
        return l1_from_prefix(self, np.clip(queries, 0, self.radius))


class FlatHistogram:
    """counts, sums: (d, B) noisy bin statistics; prefixes by cumulative sums of noisy bins."""

    def __init__(self, radius: float, log_bins: int) -> None:
        self.radius, self.bins = radius, 2**log_bins

    def sensitivity(self, dim: int) -> tuple[float, float]:
        """(counts, sums) l1 sensitivities: d and d R."""
        return dim, dim * self.radius

    def exact_arrays(self, points: np.ndarray) -> list[np.ndarray]:
        points = np.clip(points, 0, self.radius)
        index = bin_index(points, self.radius, self.bins) + (np.arange(points.shape[1]) * self.bins)[None, :]
        size = points.shape[1] * self.bins
        counts = np.bincount(index.ravel(), minlength=size)
        sums = np.bincount(index.ravel(), weights=points.ravel(), minlength=size)
        return [np.stack([counts, sums]).reshape(2, points.shape[1], self.bins).astype(float)]

    def build(self, points: np.ndarray, eps: float, rng: np.random.Generator) -> "FlatHistogram":
        (exact,) = self.exact_arrays(points)
        noisy = exact + rng.laplace(size=exact.shape) * laplace_scales(self.sensitivity(points.shape[1]), eps)
        zero = np.zeros(noisy.shape[:2] + (1,))
        self.cumulative = np.concatenate([zero, np.cumsum(noisy, axis=2)], axis=2)  # (2, d, B + 1)
        return self

    def prefix(self, below: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        coordinate = np.arange(below.shape[1])[None, :]
        return self.cumulative[0][coordinate, below], self.cumulative[1][coordinate, below]

    def totals(self) -> tuple[np.ndarray, np.ndarray]:
        return self.cumulative[0][:, -1], self.cumulative[1][:, -1]

    def query(self, queries: np.ndarray) -> np.ndarray:
        return l1_from_prefix(self, np.clip(queries, 0, self.radius))


def l1_from_prefix(structure: DyadicTree | FlatHistogram, queries: np.ndarray) -> np.ndarray:
    """sum_i [y_i (2 C_i - n_i) - 2 S_i + T_i] per query, from released prefix statistics only."""
    below = bin_index(queries, structure.radius, structure.bins)
    count, total = structure.prefix(below)
    n, grand_total = structure.totals()
    return (queries * (2 * count - n) - 2 * total + grand_total).sum(1)


STRUCTURES = {"tree": DyadicTree, "flat": FlatHistogram}
