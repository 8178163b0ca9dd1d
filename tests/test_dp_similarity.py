"""DP similarity structures against independent oracles: exact l1 sums (scipy cdist), the stated sensitivities
(exact check over neighbouring data sets), the Laplace scale (empirical), the Gaussian kernel (sklearn), and the
RDP accountant's closed form without subsampling."""

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.metrics.pairwise import rbf_kernel

from repro.core.errors import DataUnavailableError
from repro.papers.dp_similarity.data import digits_split, load_embeddings
from repro.papers.dp_similarity.dpsgd import (
    dpsgd_epsilon,
    noise_for_epsilon,
    predict_logreg,
    sampled_gaussian_rdp,
    train_dpsgd_logreg,
)
from repro.papers.dp_similarity.kde import PrivateRFFKDE, median_distance
from repro.papers.dp_similarity.l1 import (
    BINNED,
    STRUCTURES,
    BucketedCountTree,
    HuangRothGrid,
    PrefixSumTree,
    bucket_offsets,
    huang_roth_grid_points,
    make_structure,
)
from repro.papers.dp_similarity.task import private_average_classifier, unit_rows
from tests.helpers import compose_config


def group_vectors(arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Each released group (counts, sums, values) over all levels, as one vector."""
    return [np.concatenate([a[g].ravel() for a in arrays]) for g in range(arrays[0].shape[0])]


@pytest.mark.parametrize("name", STRUCTURES)
def test_sensitivity_over_neighbouring_sets(name: str) -> None:
    """Removing any one point changes each released group by at most its stated l1 sensitivity; the bound is
    attained (by every point for the counts, by a point at the corner R for sums and grid values)."""
    rng = np.random.default_rng(0)
    radius, dim = 3.0, 5
    structure = make_structure(name, radius, 6, 0.1, 40, dim, 1.0)
    points = rng.uniform(0, radius, size=(40, dim))
    bounds = structure.sensitivity(dim)
    full = group_vectors(structure.exact_arrays(points))
    for removed in range(len(points)):
        smaller = group_vectors(structure.exact_arrays(np.delete(points, removed, axis=0)))
        for bound, a, b in zip(bounds, full, smaller):
            assert np.abs(a - b).sum() <= bound + 1e-9
        if name in BINNED:
            assert np.abs(full[0] - smaller[0]).sum() == pytest.approx(bounds[0])   # every node a point touches
    corner = group_vectors(structure.exact_arrays(np.vstack([points, np.full((1, dim), radius)])))
    assert np.abs(corner[-1] - full[-1]).sum() == pytest.approx(bounds[-1])


@pytest.mark.parametrize("structure", [BucketedCountTree(2.0, 8, 0.1), PrefixSumTree(2.0, 8)])
def test_laplace_noise_matches_the_calibrated_scale(structure: BucketedCountTree | PrefixSumTree) -> None:
    rng = np.random.default_rng(1)
    points = rng.uniform(0, 2.0, size=(100, 4))
    eps = 0.7
    exact = structure.exact_arrays(points)
    structure.build(points, eps, rng)
    noise = group_vectors([n - e for n, e in zip(structure.levels, exact)])
    bounds = structure.sensitivity(4)
    for group, bound in zip(noise, bounds):       # E|Laplace(b)| = b, eps split equally over the groups
        assert np.mean(np.abs(group)) == pytest.approx(len(bounds) * bound / eps, rel=0.05)


@pytest.mark.parametrize("name", ["prefix_sums", "flat"])
def test_prefix_structures_become_exact_as_eps_grows(name: str) -> None:
    split = digits_split(300, 100, seed=0)                # integer pixels: no discretisation error
    private, queries = split.private, split.queries
    exact = cdist(private, queries, "cityblock").sum(0)
    structure = BINNED[name](16.0, 12).build(private, 1e12, np.random.default_rng(2))
    assert np.allclose(structure.query(queries), exact, rtol=1e-6)
    noisy = BINNED[name](16.0, 12).build(private, 1.0, np.random.default_rng(2)).query(queries)
    assert np.median(np.abs(noisy - exact) / exact) > 1e-3        # the noise is really there at eps = 1


def snapped(points: np.ndarray, radius: float, bins: int) -> np.ndarray:
    """Points moved to the centre of their bin (what the tree stores)."""
    return (np.clip((points / radius * bins).astype(int), 0, bins - 1) + 0.5) * radius / bins


def test_tree_range_counts_are_canonical_node_sums() -> None:
    """Noise-free, the count of bins [low, high) from the tree's canonical nodes equals a direct count. With noise,
    a dyadic interval is read from its one node (the root for [0, B), a leaf for one bin), not summed from leaves."""
    rng = np.random.default_rng(8)
    points = rng.uniform(0, 1.0, size=(500, 3))
    tree = BucketedCountTree(1.0, 7, 0.1).build(points, 1e15, rng)
    low = rng.integers(0, 129, size=(50, 3, 4))
    high = np.maximum(low, rng.integers(0, 129, size=(50, 3, 4)))
    index = np.clip((points * 128).astype(int), 0, 127)
    direct = np.array([[[((index[:, i] >= lo) & (index[:, i] < hi)).sum() for lo, hi in zip(low[q, i], high[q, i])]
                        for i in range(3)] for q in range(50)])
    coordinate = np.arange(3)[None, :, None]
    assert np.allclose(tree.range_count(coordinate, low, high), direct, atol=1e-6)
    noisy = BucketedCountTree(1.0, 7, 0.1).build(points, 1.0, rng)
    axes = np.arange(3)
    assert np.array_equal(noisy.range_count(axes, 0, 128), noisy.levels[0][0][:, 0])
    assert np.array_equal(noisy.range_count(axes, 64, 128), noisy.levels[1][0][:, 1])
    assert np.array_equal(noisy.range_count(axes, 5, 6), noisy.levels[7][0][:, 5])


def test_bucket_offsets_grow_by_at_most_one_plus_alpha() -> None:
    offsets = bucket_offsets(2**16, 0.1)
    assert offsets[0] == 1 and offsets[-1] >= 2**16 and offsets[-2] < 2**16
    gaps = offsets[1:] - offsets[:-1]
    assert np.all((gaps == 1) | (offsets[1:] <= 1.1 * offsets[:-1]))
    assert len(offsets) < 2 * np.log(2**16) / np.log(1.1)               # about alpha^-1 log B intervals


@pytest.mark.parametrize("alpha", [0.1, 0.5])
def test_tree_error_is_one_plus_alpha_multiplicative(alpha: float) -> None:
    """Noise-free, the paper's tree charges each point the nearest distance of its interval: it never overestimates
    the l1 sum of the snapped points, underestimates it by at most a factor (1 + alpha), and with alpha -> 0 (one
    bin per interval) is exact."""
    rng = np.random.default_rng(9)
    private, queries = rng.uniform(0, 16.0, size=(300, 8)), rng.uniform(0, 16.0, size=(40, 8))
    bins = 2**9
    exact = cdist(snapped(private, 16.0, bins), queries, "cityblock").sum(0)
    estimate = BucketedCountTree(16.0, 9, alpha).build(private, 1e15, rng).query(queries)
    assert np.all(estimate <= exact + 1e-6)
    assert np.all(estimate >= exact / (1 + alpha) - 1e-6)
    assert np.median(1 - estimate / exact) > alpha / 20                  # the multiplicative error is really used
    exact_tree = BucketedCountTree(16.0, 9, 1e-9).build(private, 1e15, rng)
    assert np.allclose(exact_tree.query(queries), exact, rtol=1e-9)


def test_huang_roth_grid_interpolates_the_distance_functions() -> None:
    """With a grid point at every integer, interpolation of the piecewise-linear F_i (kinks at the integer pixels)
    is exact; with 3 points it is not; the grid size balances n h / 2 against d k R / (2 eps)."""
    split = digits_split(300, 100, seed=0)
    private, queries = split.private, split.queries
    exact = cdist(private, queries, "cityblock").sum(0)
    fine = HuangRothGrid(16.0, 17).build(private, 1e15, np.random.default_rng(10))
    assert np.allclose(fine.query(queries), exact, rtol=1e-9)
    coarse = HuangRothGrid(16.0, 3).build(private, 1e15, np.random.default_rng(10))
    assert np.all(coarse.query(queries) >= exact - 1e-6)                # chords of a convex function lie above it
    assert np.median(coarse.query(queries) / exact - 1) > 1e-3
    k = huang_roth_grid_points(1200, 64, 1.0)
    assert k * (k - 1) == pytest.approx(1200 / 64, rel=0.5) and huang_roth_grid_points(10, 64, 0.1) == 2


@pytest.mark.parametrize("name", STRUCTURES)
def test_queries_read_only_released_arrays(name: str) -> None:
    split = digits_split(300, 100, seed=0)
    private, queries = split.private, split.queries[:50]
    structure = make_structure(name, 16.0, 8, 0.1, 300, 64, 1.0).build(private.copy(), 1.0, np.random.default_rng(3))
    before = structure.query(queries)
    private[:] = 0.0                                                # destroying the data changes nothing
    assert np.array_equal(structure.query(queries), before)
    released = {"levels", "cumulative", "values"} & set(vars(structure))
    assert len(released) == 1


def test_bandwidths_come_from_the_public_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The KDE and classifier bandwidths are median distances of the public split only, never of the queries."""
    import logging

    from repro.core.context import RunContext
    from repro.core.units import expand
    from repro.papers.dp_similarity import task
    cfg = compose_config(["paper=dp_similarity", "scale=smoke", "paper.classify.dpsgd.epochs=1",
                          "paper.classify.timing_repeats=1", "paper.classify.eps=[2.0]", "paper.kde.features=64",
                          "paper.classify.features=64", "paper.kde.timing_repeats=1"])
    seen = []
    monkeypatch.setattr(task, "median_distance", lambda points: seen.append(points) or median_distance(points))
    for unit in expand(task.units(cfg.paper), 1):
        if unit.experiment == "kde" or (unit.experiment == "classify" and unit.method != "centroid_nonprivate"):
            ctx = RunContext(cfg, tmp_path, "cpu", unit, logging.getLogger("test"))
            rows = task.run_unit(cfg.paper, ctx, unit)
            split = task.digits(cfg.paper, ctx)
            if unit.experiment == "kde":
                assert {row["bandwidth"] for row in rows} == {median_distance(split.public)}
    assert len(seen) == 2                                           # one KDE unit, one classification unit
    assert np.array_equal(seen[0], split.public) and np.array_equal(seen[1], unit_rows(split.public))


def test_random_fourier_features_estimate_the_gaussian_kernel() -> None:
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(20, 6)), rng.normal(size=(15, 6))
    sigma = 2.5
    kde = PrivateRFFKDE(6, 40000, sigma, None, rng)
    estimate = kde.feature_map(x) @ kde.feature_map(y).T
    oracle = rbf_kernel(x, y, gamma=1 / sigma**2)                  # exp(-||x - y||^2 / sigma^2)
    assert np.abs(estimate - oracle).max() < 0.03
    assert np.abs(kde.feature_map(x)).sum(1).max() <= kde.sensitivity   # ||z(x)||_1 <= sqrt(2 D)
    assert kde.build(x, 1e12, rng).query(y) == pytest.approx(estimate.sum(0), rel=1e-6)


def test_rdp_accountant() -> None:
    for order in (2, 5, 17):                                       # q = 1: the Gaussian mechanism, alpha / (2 s^2)
        assert sampled_gaussian_rdp(1.0, 1.7, order) == pytest.approx(order / (2 * 1.7**2))
        assert sampled_gaussian_rdp(0.05, 1.7, order) < sampled_gaussian_rdp(1.0, 1.7, order)
    q, steps = 0.05, 600
    assert dpsgd_epsilon(q, 2.0, steps, 1e-5) < dpsgd_epsilon(q, 1.0, steps, 1e-5)
    noise = noise_for_epsilon(q, steps, 2.0, 1e-5)
    assert dpsgd_epsilon(q, noise, steps, 1e-5) <= 2.0 < dpsgd_epsilon(q, noise / 1.01, steps, 1e-5)


def test_dpsgd_without_noise_learns_digits() -> None:
    private, labels, _, queries, query_labels = digits_split(1200, 197, seed=0)
    weights = train_dpsgd_logreg(unit_rows(private), labels, 10, 0.0, 64, 10, 1.0, 1e6, np.random.default_rng(5))
    assert (predict_logreg(weights, unit_rows(queries)) == query_labels).mean() > 0.9


def test_private_averages_become_exact_as_eps_grows() -> None:
    private, labels, _, queries, _ = digits_split(1200, 197, seed=0)
    private, queries = unit_rows(private), unit_rows(queries)
    classifier = private_average_classifier(lambda v: v, 8.0, private, labels, 1e12, 0.1, np.random.default_rng(6))
    centroids = np.array([private[labels == c].mean(0) for c in range(10)])
    assert np.array_equal(classifier(queries), (queries @ centroids.T).argmax(1))


def test_digits_split_is_a_partition() -> None:
    split = digits_split(1200, 197, seed=3)
    assert (len(split.private), len(split.public), len(split.queries)) == (1200, 197, 400)
    rows = np.vstack([split.private, split.public, split.queries])
    assert len(np.unique(rows, axis=0)) == len(np.unique(digits_split(1797, 0, seed=0).private, axis=0))
    again = digits_split(1200, 197, seed=3)
    assert np.array_equal(again.public, split.public) and np.array_equal(again.query_labels, split.query_labels)


def write_embeddings(path: Path, train: int = 600, test: int = 200, dim: int = 512) -> None:
    """A CIFAR-10-embeddings .npz as a user makes it (numpy.savez of four arrays): 10 clusters in R^dim."""
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(10, dim))
    train_y, test_y = np.arange(train) % 10, rng.integers(0, 10, test)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, train_x=(centres[train_y] + 2.0 * rng.normal(size=(train, dim))).astype(np.float32),
             train_y=train_y, test_x=(centres[test_y] + 2.0 * rng.normal(size=(test, dim))).astype(np.float32),
             test_y=test_y)


def write_dry_data(data_dir: Path) -> None:
    """The CIFAR-10 embeddings file scale=paper reads (data_dir/cifar10_embeddings.npz): 600 train and 200 test
    rows of 512 features. (Digits ship with scikit-learn and the mixtures are generated: no other file.)"""
    write_embeddings(data_dir / "cifar10_embeddings.npz")


def test_embeddings_parser(tmp_path: Path) -> None:
    with pytest.raises(DataUnavailableError, match="numpy.savez"):
        load_embeddings(tmp_path / "absent.npz")
    rng = np.random.default_rng(7)
    np.savez(tmp_path / "emb.npz", train_x=rng.normal(size=(6, 4)), train_y=np.arange(6) % 3,
             test_x=rng.normal(size=(2, 4)), test_y=np.array([0, 2]))
    private, labels, queries, query_labels = load_embeddings(tmp_path / "emb.npz")
    assert private.shape == (6, 4) and queries.shape == (2, 4) and list(query_labels) == [0, 2]
    write_embeddings(tmp_path / "dry.npz")
    assert load_embeddings(tmp_path / "dry.npz")[0].shape == (600, 512)


@pytest.mark.parametrize("change, message", [
    ({"train_x": None}, r"lacks arrays \['train_x'\]"),
    ({"train_x": np.zeros(6)}, "expected a non-empty numeric"),
    ({"test_x": np.full((2, 4), np.nan)}, "8 non-finite values"),
    ({"train_y": np.arange(5)}, "one label per row"),
    ({"train_y": np.arange(6) + 5}, r"integer labels in 0..9"),
    ({"test_y": np.array([0.5, 1.0])}, r"integer labels in 0..9"),
    ({"test_x": np.zeros((2, 3))}, "same network"),
    ({"test_y": np.array(["a", "b"], dtype=object)}, "not a readable .npz"),   # object arrays need pickle
])
def test_embeddings_are_validated(tmp_path: Path, change: dict, message: str) -> None:
    arrays = {"train_x": np.ones((6, 4)), "train_y": np.arange(6), "test_x": np.ones((2, 4)),
              "test_y": np.array([0, 2])}
    arrays = {k: v for k, v in {**arrays, **change}.items() if v is not None}
    np.savez(tmp_path / "emb.npz", **arrays)
    with pytest.raises(DataUnavailableError, match=message) as error:
        load_embeddings(tmp_path / "emb.npz")
    assert str(tmp_path / "emb.npz") in str(error.value)


def test_embeddings_not_an_npz(tmp_path: Path) -> None:
    (tmp_path / "emb.npz").write_text("train_x,train_y\n")
    with pytest.raises(DataUnavailableError, match="not a readable .npz"):
        load_embeddings(tmp_path / "emb.npz")


@pytest.mark.parametrize("order", [2, 3, 6])
def test_rdp_of_the_sampled_gaussian_against_numerical_integration(order: int) -> None:
    """RDP(alpha) = log int mu^alpha / mu_0^(alpha - 1) / (alpha - 1) for mu = (1 - q) N(0, s^2) + q N(1, s^2) and
    mu_0 = N(0, s^2) (the add/remove case of Mironov, Talwar and Zhang 2019), by scipy.integrate.quad; at
    alpha = 2 also the closed form log(1 + q^2 (exp(1 / s^2) - 1))."""
    from scipy import integrate, stats

    q, sigma = 0.05, 1.3
    base, shifted = stats.norm(0, sigma), stats.norm(1, sigma)

    def integrand(x: float) -> float:
        mixture = (1 - q) * base.pdf(x) + q * shifted.pdf(x)
        return base.pdf(x) * (mixture / base.pdf(x)) ** order

    value = integrate.quad(integrand, -30, 30, epsabs=0, epsrel=1e-12, limit=200)[0]
    assert sampled_gaussian_rdp(q, sigma, order) == pytest.approx(np.log(value) / (order - 1), rel=1e-8)
    if order == 2:
        assert sampled_gaussian_rdp(q, sigma, 2) == pytest.approx(np.log1p(q**2 * np.expm1(1 / sigma**2)), rel=1e-10)


def test_rdp_to_dp_conversion_closed_form() -> None:
    """No subsampling, one step: eps = min_alpha alpha / (2 s^2) + log(1 / delta) / (alpha - 1). With s = 1 and
    delta = e^-8 the minimiser alpha = 1 + sqrt(2 s^2 log(1 / delta)) = 5 is an integer: eps = 5/2 + 8/4 = 4.5."""
    assert dpsgd_epsilon(1.0, 1.0, 1, float(np.exp(-8))) == pytest.approx(4.5, rel=1e-12)


def test_dpsgd_noise_is_sigma_c_per_step_and_clipping_bounds_each_gradient() -> None:
    """With all-zero features only the bias row gets gradients, so the feature rows of W are the summed noise:
    after T full-batch steps (q = 1) their entries have variance T (lr sigma C / B)^2. One example with
    x~ = (3, 4, 1), two classes and W = 0: p - e_y = (-1/2, 1/2), ||g|| = sqrt(26) / sqrt(2) = sqrt(13), clipped to
    C = 1, so W = -lr x~ (p - e_y)^T / sqrt(13)."""
    features, labels = np.zeros((50, 1000)), np.arange(50) % 2
    weights = train_dpsgd_logreg(features, labels, 2, 2.0, 50, 4, 0.5, 3.0, np.random.default_rng(11))
    expected = np.sqrt(4) * 0.5 * 2.0 * 3.0 / 50
    assert weights[:-1].std() == pytest.approx(expected, rel=0.1)
    single = train_dpsgd_logreg(np.array([[3.0, 4.0]]), np.array([0]), 2, 0.0, 1, 1, 0.1, 1.0,
                                np.random.default_rng(12))
    np.testing.assert_allclose(single, -0.1 * np.outer([3.0, 4.0, 1.0], [-0.5, 0.5]) / np.sqrt(13), rtol=1e-12)


def test_rff_sensitivity_bounds_the_largest_feature_vector() -> None:
    """||z(x)||_1 <= sqrt(2 / D) D = sqrt(2 D) because |cos| <= 1, and the bound is attained: with D = 1 feature
    some x gives |z(x)| = sqrt(2) (a smaller sensitivity would not bound one point's contribution)."""
    kde = PrivateRFFKDE(1, 1, 1.0, None, np.random.default_rng(13))
    line = np.linspace(-50, 50, 200_001)[:, None]
    largest = np.abs(kde.feature_map(line)).sum(1).max()
    assert largest <= kde.sensitivity * (1 + 1e-12)
    assert largest == pytest.approx(np.sqrt(2), rel=1e-6)


class RecordingLaplace:
    """An rng stand-in that records the Laplace scales it is asked for and returns zero noise."""

    def __init__(self) -> None:
        self.scales = []

    def laplace(self, scale: float, size: int | None = None) -> np.ndarray | float:
        self.scales.append(scale)
        return np.zeros(size) if size is not None else 0.0


def test_private_averages_spend_exactly_eps_per_class() -> None:
    """Per class, the Laplace mechanism on the sum (l1 sensitivity Delta) and on the count (sensitivity 1) spend
    Delta / b_sum + 1 / b_count; basic composition within a class, parallel composition over classes: = eps."""
    private, labels, _, _, _ = digits_split(300, 100, seed=0)
    rng = RecordingLaplace()
    private_average_classifier(lambda v: v, 8.0, unit_rows(private), labels, 0.7, 0.25, rng)
    sums, counts = rng.scales[0::2], rng.scales[1::2]
    assert len(sums) == len(counts) == 10
    for b_sum, b_count in zip(sums, counts):
        assert 8.0 / b_sum + 1 / b_count == pytest.approx(0.7, rel=1e-12)
