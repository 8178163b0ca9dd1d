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
from repro.papers.dp_similarity.kde import PrivateRFFKDE
from repro.papers.dp_similarity.l1 import STRUCTURES, DyadicTree
from repro.papers.dp_similarity.task import private_average_classifier, unit_rows


def flat_arrays(arrays: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """All released counts and all released sums, each as one vector."""
    return (np.concatenate([a[0].ravel() for a in arrays]), np.concatenate([a[1].ravel() for a in arrays]))


@pytest.mark.parametrize("name", sorted(STRUCTURES))
def test_sensitivity_over_neighbouring_sets(name: str) -> None:
    rng = np.random.default_rng(0)
    radius, dim = 3.0, 5
    structure = STRUCTURES[name](radius, 6)
    points = rng.uniform(0, radius, size=(40, dim))
    count_bound, sum_bound = structure.sensitivity(dim)
    full_counts, full_sums = flat_arrays(structure.exact_arrays(points))
    for removed in range(len(points)):
        counts, sums = flat_arrays(structure.exact_arrays(np.delete(points, removed, axis=0)))
        assert np.abs(full_counts - counts).sum() == pytest.approx(count_bound)   # every node a point touches
        assert np.abs(full_sums - sums).sum() <= sum_bound + 1e-9
    corner = np.vstack([points, np.full((1, dim), radius)])      # the worst case attains the sum bound
    counts, sums = flat_arrays(structure.exact_arrays(corner))
    assert np.abs(full_sums - sums).sum() == pytest.approx(sum_bound)


def test_laplace_noise_matches_the_calibrated_scale() -> None:
    rng = np.random.default_rng(1)
    points = rng.uniform(0, 2.0, size=(100, 4))
    tree, eps = DyadicTree(2.0, 8), 0.7
    exact = tree.exact_arrays(points)
    tree.build(points, eps, rng)
    noise_counts, noise_sums = flat_arrays([n - e for n, e in zip(tree.levels, exact)])
    count_bound, sum_bound = tree.sensitivity(4)
    # E|Laplace(b)| = b, with eps / 2 for each array
    assert np.mean(np.abs(noise_counts)) == pytest.approx(2 * count_bound / eps, rel=0.05)
    assert np.mean(np.abs(noise_sums)) == pytest.approx(2 * sum_bound / eps, rel=0.05)


@pytest.mark.parametrize("name", sorted(STRUCTURES))
def test_answers_become_exact_as_eps_grows(name: str) -> None:
    split = digits_split(300, 100, seed=0)                # integer pixels: no discretisation error
    private, queries = split.private, split.queries
    exact = cdist(private, queries, "cityblock").sum(0)
    structure = STRUCTURES[name](16.0, 12).build(private, 1e12, np.random.default_rng(2))
    assert np.allclose(structure.query(queries), exact, rtol=1e-6)
    noisy = STRUCTURES[name](16.0, 12).build(private, 1.0, np.random.default_rng(2)).query(queries)
    assert np.median(np.abs(noisy - exact) / exact) > 1e-3        # the noise is really there at eps = 1


def test_queries_read_only_released_arrays() -> None:
    split = digits_split(300, 100, seed=0)
    private, queries = split.private, split.queries
    tree = DyadicTree(16.0, 8).build(private.copy(), 1.0, np.random.default_rng(3))
    before = tree.query(queries)
    private[:] = 0.0                                                # destroying the data changes nothing
    assert np.array_equal(tree.query(queries), before)
    assert set(vars(tree)) == {"radius", "log_bins", "bins", "levels"}


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
