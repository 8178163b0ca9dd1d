"""Pure eps-DP structures answering F(y) = sum_{x in X} ||x - y||_1 for any number of queries y, X in [0, R]^d.

All four decompose F into d one-dimensional problems, F(y) = sum_i F_i(y_i) with F_i(t) = sum_x |x_i - t|, and
spend eps / d-worth of sensitivity on each coordinate (the l1 sensitivity is summed over all coordinates).
Queries read only the released arrays (the raw data can be deleted after `build`).

- BucketedCountTree ("tree", the paper's structure, Section 4): per coordinate a balanced binary tree over
  B = 2^L bins of [0, R] holding Laplace-noised COUNTS of every dyadic interval. A query y splits the line
  around y into intervals whose distance from y grows geometrically by (1 + alpha); each interval's count is
  the sum of the O(L) noisy tree nodes of its canonical decomposition, and every point of an interval is
  charged the interval's nearest distance. Error: a (1 + alpha) multiplicative factor plus an additive
  O(eps^-1 alpha^-1/2 d^1.5 R polylog) term (independent noise over ~alpha^-1 log B intervals).
- PrefixSumTree ("prefix_sums", the later design of arXiv 2409.01688, a labelled baseline): the same dyadic
  tree with noisy counts AND noisy coordinate sums, so the exact identity
      F_i(t) = t (2 C(t) - n) - 2 S(t) + T     (C, S: count and sum of the points below t; T: total)
  answers from two prefix queries, with no multiplicative error.
- FlatHistogram ("flat", baseline): counts and sums of the B bins (no tree); prefixes add up to B noisy bins.
- HuangRothGrid ("huang_roth", baseline after Huang and Roth 2014): the noisy values of F_i on a uniform grid of
  k points of [0, R], linearly interpolated; k balances the worst-case interpolation error against the noise.

Points are snapped to the centre of their bin (B bins; error <= R / (2B) per point and coordinate).
"""

import numpy as np


def bin_index(values: np.ndarray, radius: float, bins: int) -> np.ndarray:
    return np.clip((values / radius * bins).astype(np.int64), 0, bins - 1)


def laplace_scales(sensitivity: tuple[float, ...], eps: float) -> np.ndarray:
    """Laplace scale of each released group (counts, sums, ...): eps split equally, eps / G per group."""
    return (len(sensitivity) * np.asarray(sensitivity, dtype=float) / eps)[:, None, None]


def dyadic_arrays(points: np.ndarray, radius: float, log_bins: int, with_sums: bool) -> list[np.ndarray]:
    """Per level l = 0..L, the exact (counts[, sums]) of the 2^l dyadic intervals per coordinate: (G, d, 2^l).
    Node j of level l covers bins [j 2^(L-l), (j+1) 2^(L-l))."""
    points = np.clip(points, 0, radius)
    index = bin_index(points, radius, 2**log_bins)                                   # (n, d)
    dim = points.shape[1]
    arrays = []
    for level in range(log_bins + 1):
        flat = (index >> (log_bins - level)) + (np.arange(dim) * 2**level)[None, :]  # distinct ids per coordinate
        groups = [np.bincount(flat.ravel(), minlength=dim * 2**level)]
        if with_sums:
            groups.append(np.bincount(flat.ravel(), weights=points.ravel(), minlength=dim * 2**level))
        arrays.append(np.stack(groups).reshape(len(groups), dim, 2**level).astype(float))
    return arrays


def bucket_offsets(bins: int, alpha: float) -> np.ndarray:
    """Distances from the query's bin, in bins, where the paper's intervals start: t_0 = 1 and
    t_(j+1) = max(t_j + 1, floor((1 + alpha) t_j)), up to B. Bins at offsets [t_j, t_(j+1)) form interval j; all
    their distances lie within a factor t_(j+1) / t_j <= 1 + alpha of t_j (for t_j >= 1 / alpha; below, every
    interval is a single bin and exact)."""
    offsets = [1]
    while offsets[-1] < bins:
        offsets.append(max(offsets[-1] + 1, int(np.floor((1 + alpha) * offsets[-1]))))
    return np.array(offsets)


class BucketedCountTree:
    """levels[l]: (1, d, 2^l) noisy counts. Add/remove l1 sensitivity: d (L + 1) (one node per level and coordinate)."""

    def __init__(self, radius: float, log_bins: int, alpha: float) -> None:
        self.radius, self.log_bins, self.bins, self.alpha = radius, log_bins, 2**log_bins, alpha

    def sensitivity(self, dim: int) -> tuple[float]:
        return (dim * (self.log_bins + 1),)

    def exact_arrays(self, points: np.ndarray) -> list[np.ndarray]:
        return dyadic_arrays(points, self.radius, self.log_bins, with_sums=False)

    def build(self, points: np.ndarray, eps: float, rng: np.random.Generator) -> "BucketedCountTree":
        scales = laplace_scales(self.sensitivity(points.shape[1]), eps)
        self.levels = [a + rng.laplace(size=a.shape) * scales for a in self.exact_arrays(points)]
        return self

    def range_count(self, coordinate: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
        """Noisy count of bins [low, high) of `coordinate` (arrays broadcast together): the sum of the nodes of the
        canonical decomposition (at most 2 per level; disjoint intervals use disjoint nodes)."""
        coordinate, low, high = np.broadcast_arrays(coordinate, low, high)
        low, high, total = low.copy(), high.copy(), np.zeros(low.shape)
        for level in range(self.log_bins, -1, -1):                 # leaves first, one level up per pass
            counts = self.levels[level][0]
            last = 2**level - 1
            take = ((low & 1) == 1) & (low < high)
            total += np.where(take, counts[coordinate, np.minimum(low, last)], 0.0)
            low = low + take
            take = ((high & 1) == 1) & (low < high)
            high = high - take
            total += np.where(take, counts[coordinate, np.minimum(high, last)], 0.0)
            low, high = low >> 1, high >> 1
        return total

    def query(self, queries: np.ndarray) -> np.ndarray:
        """sum_i [ |delta| C_own + sum_j C_right_j (t_j w - delta) + C_left_j (t_j w + delta) ] with delta = y_i minus
        the centre of y_i's bin b: a point in bin b + k sits at distance k w - delta (k >= 1), and every point of
        interval j is charged the distance of its nearest bin, offset t_j. The interval counts depend only on
        (coordinate, b), so they are summed once per distinct pair: the answer is |delta| C_own + P + delta Q with
        P = sum_j (C_right_j + C_left_j) t_j w and Q = sum_j (C_left_j - C_right_j)."""
        queries = np.clip(queries, 0, self.radius)
        width = self.radius / self.bins
        own = bin_index(queries, self.radius, self.bins)                           # (q, d)
        delta = queries - (own + 0.5) * width
        pairs, where = np.unique(own + np.arange(queries.shape[1]) * self.bins, return_inverse=True)
        coordinate, b = (pairs // self.bins)[:, None], (pairs % self.bins)[:, None]
        offsets = bucket_offsets(self.bins, self.alpha)
        start, stop = offsets[:-1], offsets[1:]
        right = self.range_count(coordinate, np.clip(b + start, 0, self.bins), np.clip(b + stop, 0, self.bins))
        left = self.range_count(coordinate, np.clip(b - stop + 1, 0, self.bins), np.clip(b - start + 1, 0, self.bins))
        here = self.range_count(coordinate, b, b + 1)[:, 0][where.reshape(own.shape)]
        charged = start * width
        distant = ((right + left) * charged).sum(1)[where.reshape(own.shape)]
        tilt = (left - right).sum(1)[where.reshape(own.shape)]
        return (np.abs(delta) * here + distant + delta * tilt).sum(1)


class PrefixSumTree:
    """levels[l]: (2, d, 2^l) noisy (counts, sums). Sensitivities d (L + 1) and d (L + 1) R, eps / 2 each."""

    def __init__(self, radius: float, log_bins: int) -> None:
        self.radius, self.log_bins, self.bins = radius, log_bins, 2**log_bins

    def sensitivity(self, dim: int) -> tuple[float, float]:
        return dim * (self.log_bins + 1), dim * (self.log_bins + 1) * self.radius

    def exact_arrays(self, points: np.ndarray) -> list[np.ndarray]:
        return dyadic_arrays(points, self.radius, self.log_bins, with_sums=True)

    def build(self, points: np.ndarray, eps: float, rng: np.random.Generator) -> "PrefixSumTree":
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
    """counts, sums: (d, B) noisy bin statistics (sensitivities d and d R); prefixes by cumulative sums."""

    def __init__(self, radius: float, log_bins: int) -> None:
        self.radius, self.bins = radius, 2**log_bins

    def sensitivity(self, dim: int) -> tuple[float, float]:
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


def l1_from_prefix(structure: PrefixSumTree | FlatHistogram, queries: np.ndarray) -> np.ndarray:
    """sum_i [y_i (2 C_i - n_i) - 2 S_i + T_i] per query, from released prefix statistics only."""
    below = bin_index(queries, structure.radius, structure.bins)
    count, total = structure.prefix(below)
    n, grand_total = structure.totals()
    return (queries * (2 * count - n) - 2 * total + grand_total).sum(1)


def huang_roth_grid_points(count: int, dim: int, eps: float) -> int:
    """k with k (k - 1) = n eps / d: F_i is convex with slopes in [-n, n], so linear interpolation on cells of
    width h = R / (k - 1) errs by at most n h / 2, while each released value carries Laplace(d k R / (2 eps))
    noise; the two are equal at this k. (n, the data set's size, is treated as public, as in Huang and Roth's
    average-distance queries.)"""
    return max(2, int(round(0.5 + np.sqrt(0.25 + count * eps / dim))))


class HuangRothGrid:
    """values: (d, k) noisy F_i(g_m) on the grid g_m = m R / (k - 1). Adding or removing x changes F_i(g_m) by
    |x_i - g_m|; sum_m |x_i - g_m| is convex in x_i, largest at x_i in {0, R}: k R / 2 on this symmetric grid, so
    the add/remove l1 sensitivity is d k R / 2."""

    def __init__(self, radius: float, grid_points: int) -> None:
        self.radius, self.grid_points = radius, grid_points
        self.grid = np.linspace(0, radius, grid_points)

    def sensitivity(self, dim: int) -> tuple[float]:
        return (dim * self.grid_points * self.radius / 2,)

    def exact_arrays(self, points: np.ndarray) -> list[np.ndarray]:
        points = np.clip(points, 0, self.radius)
        values = np.stack([np.abs(points - g).sum(0) for g in self.grid], axis=1)      # (d, k)
        return [values[None]]

    def build(self, points: np.ndarray, eps: float, rng: np.random.Generator) -> "HuangRothGrid":
        (exact,) = self.exact_arrays(points)
        self.values = (exact + rng.laplace(size=exact.shape) * laplace_scales(self.sensitivity(points.shape[1]),
                                                                              eps))[0]
        return self

    def query(self, queries: np.ndarray) -> np.ndarray:
        position = np.clip(queries, 0, self.radius) / self.radius * (self.grid_points - 1)
        cell = np.minimum(position.astype(np.int64), self.grid_points - 2)
        weight = position - cell
        coordinate = np.arange(queries.shape[1])[None, :]
        return ((1 - weight) * self.values[coordinate, cell] + weight * self.values[coordinate, cell + 1]).sum(1)


BINNED = {"tree": BucketedCountTree, "prefix_sums": PrefixSumTree, "flat": FlatHistogram}
STRUCTURES = (*BINNED, "huang_roth")


def make_structure(name: str, radius: float, log_bins: int | None, alpha: float, count: int, dim: int, eps: float,
                   ) -> BucketedCountTree | PrefixSumTree | FlatHistogram | HuangRothGrid:
    """A structure before `build`: the binned ones over 2^log_bins bins, Huang-Roth on its balanced grid."""
    if name == "tree":
        return BucketedCountTree(radius, log_bins, alpha)
    if name == "huang_roth":
        return HuangRothGrid(radius, huang_roth_grid_points(count, dim, eps))
    return BINNED[name](radius, log_bins)
