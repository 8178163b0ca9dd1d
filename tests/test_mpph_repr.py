"""mpph_repr: the bifiltration and the MMA module against gudhi (fibered barcodes on horizontal lines), the
jitter's sup-norm bound, the orbit generator against multipers' own, and the UCR reader."""

from pathlib import Path

import gudhi
import multipers as mp
import numpy as np
import pytest
from multipers.data.synthetic import orbit as multipers_orbit
from omegaconf import OmegaConf
from scipy import stats
from scipy.spatial.distance import pdist

from repro.core.errors import DataUnavailableError
from repro.papers.mpph_repr import vectorise
from repro.papers.mpph_repr.bifiltration import alpha_codensity, codensity, rips_codensity
from repro.papers.mpph_repr.data import annulus, orbit, read_ucr_split, ucr_clouds
from repro.papers.mpph_repr.task import relative_change, rips_bifiltrations


def _cloud(seed: int = 0, n: int = 40) -> tuple[np.ndarray, np.ndarray, float]:
    points = orbit(n, 4.1, np.random.default_rng(seed))
    radius_max = float(np.quantile(np.linalg.norm(points[:, None] - points[None], axis=-1), 0.3))
    return points, codensity(points, 0.1), radius_max


def test_fibered_barcode_on_horizontal_lines_equals_gudhi_barcode_of_the_sublevel_complex() -> None:
    points, cod, radius_max = _cloud()
    box = (float(cod.min()), float(cod.max()))
    bif = rips_codensity(points, radius_max, cod, box)
    mod = vectorise.module(bif, nlines=100)
    rips = gudhi.RipsComplex(points=points, max_edge_length=radius_max).create_simplex_tree(max_dimension=2)
    checked = 0
    for level in (0.3, 0.6, 0.9):  # co-density threshold t, normalised
        t = np.quantile((cod - box[0]) / (box[1] - box[0]), level) + 1e-9
        fibered = mod.barcode2([0.0, t], direction=[1.0, 0.0], keep_inf=False)  # radius along {codensity = t}
        sub = gudhi.SimplexTree()  # the Rips filtration restricted to simplices whose vertices have co-density <= t
        for simplex, value in rips.get_simplices():
            if (cod[simplex].max() - box[0]) / (box[1] - box[0]) <= t:
                sub.insert(simplex, value / radius_max)
        sub.compute_persistence()
        for degree in (0, 1):
            expected = sub.persistence_intervals_in_dimension(degree).reshape(-1, 2)
            got = np.asarray(fibered[degree]).reshape(-1, 2)
            assert len(got) == len(expected)
            assert gudhi.bottleneck_distance(got, expected) < 1e-9
            checked += len(expected)
    assert checked > 20


def test_scale_filtration_is_gudhis_rips_persistence_rescaled() -> None:
    points, cod, radius_max = _cloud(1)
    bif = rips_codensity(points, radius_max, cod, (float(cod.min()), float(cod.max())))
    rips = gudhi.RipsComplex(points=points, max_edge_length=radius_max).create_simplex_tree(max_dimension=2)
    rips.compute_persistence()
    ours = vectorise.scale_diagrams(bif, [0, 1])
    assert bif.num_simplices == rips.num_simplices()
    for degree, diagram in zip((0, 1), ours):
        expected = np.minimum(rips.persistence_intervals_in_dimension(degree) / radius_max, 1.0)
        assert gudhi.bottleneck_distance(diagram, expected) < 1e-12


def test_jitter_stays_a_filtration_within_eps_in_sup_norm() -> None:
    points, cod, radius_max = _cloud(2)
    bif = rips_codensity(points, radius_max, cod, (float(cod.min()), float(cod.max())))
    eps = 0.02
    moved = bif.jittered(eps, np.random.default_rng(0))
    for old, new in zip(bif.values, moved.values):
        assert np.abs(new - old).max() <= eps + 1e-12
        assert np.abs(new - old).max() > eps / 2  # it does move
    for k in (1, 2):  # each face's value is below its coface's, in both parameters
        index = {tuple(s): i for i, s in enumerate(moved.simplices[k - 1])}
        for simplex, value in zip(moved.simplices[k], moved.values[k]):
            for drop in range(k + 1):
                face = tuple(np.delete(simplex, drop))
                assert (moved.values[k - 1][index[face]] <= value).all()


def test_orbit_generator_is_the_link_twist_map_of_multipers() -> None:
    ours = orbit(50, 4.3, np.random.default_rng(3))
    theirs = multipers_orbit(n=50, r=4.3, x0=list(ours[0]))
    assert np.allclose(ours, theirs, atol=1e-12)


def test_hilbert_signed_measure_integrates_to_gudhis_betti_numbers() -> None:
    """The Hilbert signed measure mu satisfies mu({p <= x}) = dim H_k at x; at x = (radius a, co-density b) that is
    the number of gudhi bars alive at a in the Rips filtration restricted to co-density <= b."""
    points, cod, radius_max = _cloud(4)
    box = (float(cod.min()), float(cod.max()))
    bif = rips_codensity(points, radius_max, cod, box)
    measures = mp.signed_measure(bif.multi_tree(), degrees=[0, 1], invariant="hilbert", n_jobs=1)
    normalised = (cod - box[0]) / (box[1] - box[0])
    compared = 0
    for b in (0.25, 0.5, 0.75, 1.0):
        sub = gudhi.SimplexTree()
        for simplices, values in zip(bif.simplices, bif.values):
            for simplex, (radius, density) in zip(simplices, values):
                if density <= b:
                    sub.insert(simplex.tolist(), radius)
        sub.compute_persistence()
        for degree, (locations, weights) in zip((0, 1), measures):
            bars = sub.persistence_intervals_in_dimension(degree).reshape(-1, 2)
            for a in (0.1, 0.4, 0.7):
                alive = int(((bars[:, 0] <= a) & (bars[:, 1] > a)).sum())
                below = (np.asarray(locations) <= [a, b]).all(axis=1)
                assert round(float(np.asarray(weights)[below].sum())) == alive
                compared += alive
    assert compared > 10 and normalised.max() == 1.0


def _write_ucr(root: Path, name: str, rows_per_class: int, length: int) -> None:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    t = np.linspace(0, 4 * np.pi, length)
    rng = np.random.default_rng(0)
    for split in ("TRAIN", "TEST"):
        lines = []
        for label, shape in ((1, np.sin(t)), (2, np.sign(np.sin(t)))):
            for _ in range(rows_per_class):
                series = shape + 0.05 * rng.normal(size=length)
                lines.append("\t".join([str(label), *(f"{v:.6f}" for v in series)]))
        (folder / f"{name}_{split}.tsv").write_text("\n".join(lines) + "\n")


def write_dry_data(data_dir: Path) -> None:
    """GunPoint in the UCR 2018 layout (UCR/GunPoint/GunPoint_{TRAIN,TEST}.tsv): 4 + 4 series of 40 values."""
    _write_ucr(data_dir / "UCR", "GunPoint", rows_per_class=4, length=40)


def test_multiparameter_landscape_is_the_landscape_of_gudhis_barcode_on_the_diagonal_line() -> None:
    """lambda_k(x) = sup{eps : k summands contain both x - eps (1, 1) and x + eps (1, 1)}. On the diagonal line
    x + t (1, 1) a simplex with values (a, b) enters at t = max(a - x0, b - x1), so lambda_k(x) is the k-th largest
    min(-birth, death) over gudhi's barcode of that one-parameter filtration. The module is approximated along 100
    lines, so single pixels may be off by a few line spacings; on average the landscape must sit within 0.02
    of the oracle. Pixel (i, j) is x = (grid[i], grid[j]) with grid = linspace(0, 1, resolution)."""
    points, cod, radius_max = _cloud(0)
    bif = rips_codensity(points, radius_max, cod, (float(cod.min()), float(cod.max())))
    c = OmegaConf.create({"degrees": [0, 1], "landscapes": 2, "resolution": 19})
    ours = vectorise.mp_landscape(vectorise.module(bif, nlines=100), c).reshape(2, 2, 19, 19)
    grid = np.linspace(0.0, 1.0, 19)
    errors = {0: [], 1: []}
    for i in range(0, 19, 3):
        for j in range(0, 19, 3):
            line = gudhi.SimplexTree()
            for simplices, values in zip(bif.simplices, bif.values):
                line.insert_batch(np.ascontiguousarray(simplices.T, dtype=np.int32),
                                  np.maximum(values[:, 0] - grid[i], values[:, 1] - grid[j]))
            line.compute_persistence()
            for degree in (0, 1):
                bars = line.persistence_intervals_in_dimension(degree).reshape(-1, 2)
                heights = sorted(np.maximum(0.0, np.minimum(-bars[:, 0], bars[:, 1])), reverse=True) + [0.0, 0.0]
                errors[degree] += [abs(ours[degree, k, i, j] - heights[k]) for k in range(2)]
    for degree in (0, 1):
        assert np.mean(errors[degree]) < 0.02, degree


def test_ucr_reader_and_delay_embedding(tmp_path: Path) -> None:
    _write_ucr(tmp_path, "Toy", rows_per_class=3, length=20)
    series, labels = read_ucr_split(tmp_path / "Toy" / "Toy_TRAIN.tsv")
    assert series.shape == (6, 20) and labels.tolist() == [1, 1, 1, 2, 2, 2]
    train, y_train, test, _ = ucr_clouds(tmp_path, "Toy", dimension=3, delay=2, skip=1)
    assert len(train) == 6 and train[0].shape == (20 - 2 * 2, 3)
    assert np.allclose(train[0][:, 1], series[0, 2:18]) and np.allclose(train[0][:, 2], series[0, 4:20])


def test_ucr_reader_messages(tmp_path: Path) -> None:
    with pytest.raises(DataUnavailableError, match="GunPoint_TRAIN.tsv is missing"):
        ucr_clouds(tmp_path, "GunPoint", 3, 1, 1)
    bad = tmp_path / "Bad" / "Bad_TRAIN.tsv"
    bad.parent.mkdir()
    bad.write_text("1.5\t0.1\t0.2\n")
    with pytest.raises(DataUnavailableError, match="integer class labels"):
        read_ucr_split(bad)


def test_rips_radius_axis_is_the_edge_length_over_the_given_scale() -> None:
    points, cod, radius_max = _cloud(5, n=25)
    bif = rips_codensity(points, radius_max, cod, (float(cod.min()), float(cod.max())), radius_scale=3.0)
    edges, values = bif.simplices[1], bif.values[1]
    lengths = np.linalg.norm(points[edges[:, 0]] - points[edges[:, 1]], axis=1)
    assert len(edges) == int((pdist(points) <= radius_max).sum())
    assert np.allclose(values[:, 0], lengths / 3.0, atol=1e-12)


def test_alpha_radius_of_a_gabriel_edge_is_half_its_length() -> None:
    """An edge whose diametral disc holds no other point enters the alpha (Delaunay-Cech) filtration at radius
    |e| / 2 (gudhi stores the squared radius); nothing above 1.5 radius_max is kept."""
    points = np.random.default_rng(6).uniform(size=(30, 2))
    cod = codensity(points, 0.1)
    bif = alpha_codensity(points, 0.2, cod, (float(cod.min()), float(cod.max())))
    gabriel = 0
    for (i, j), (radius, _) in zip(bif.simplices[1], bif.values[1]):
        centre, half = (points[i] + points[j]) / 2, np.linalg.norm(points[i] - points[j]) / 2
        others = np.delete(points, [i, j], axis=0)
        if (np.linalg.norm(others - centre, axis=1) > half).all():
            assert radius == pytest.approx(half / 0.2, rel=1e-9)
            gabriel += 1
    assert gabriel > 10
    assert all((v[:, 0] <= 1.5 + 1e-12).all() for v in bif.values)


def test_jitter_is_symmetric_on_vertices() -> None:
    """Vertices have no faces, so their move is the raw noise, uniform on [-eps, eps] (Kolmogorov-Smirnov)."""
    points, cod, radius_max = _cloud(7, n=200)
    bif = rips_codensity(points, 0.05, cod, (float(cod.min()), float(cod.max())))
    eps = 0.01
    moved = (bif.jittered(eps, np.random.default_rng(1)).values[0] - bif.values[0]).ravel()
    assert stats.kstest(moved, stats.uniform(-eps, 2 * eps).cdf).pvalue > 1e-3


def test_annulus_is_uniform_in_area_and_outliers_uniform_in_the_enlarged_square() -> None:
    r1, r2 = 1.0, 2.0
    points = annulus(4000, 4000, np.random.default_rng(8), r1, r2)
    ring, noise = points[:4000], points[4000:]
    radius = np.linalg.norm(ring, axis=1)
    # P(|x| <= r) is the fraction of the annulus' area inside radius r
    assert stats.kstest(radius, lambda r: (r ** 2 - r1 ** 2) / (r2 ** 2 - r1 ** 2)).pvalue > 1e-3
    assert stats.kstest(np.arctan2(ring[:, 1], ring[:, 0]), stats.uniform(-np.pi, 2 * np.pi).cdf).pvalue > 1e-3
    for axis in (0, 1):
        assert stats.kstest(noise[:, axis], stats.uniform(-2.2, 4.4).cdf).pvalue > 1e-3


def test_gaussian_convolution_is_an_isotropic_gaussian_on_the_ij_pixel_grid() -> None:
    """Pixel i * resolution + j sits at (grid[i], grid[j]); a unit mass at p gives exp(-|x - p|^2 / (2 sigma^2)),
    i.e. 2 pi sigma^2 times the product of two normal densities (scipy)."""
    sigma, resolution = 0.1, 11
    centre = np.array([[0.2, 0.7]])
    image = vectorise.gaussian_convolution(centre, np.array([2.0]), resolution, sigma).reshape(resolution,
                                                                                                 resolution)
    grid = np.linspace(0.0, 1.0, resolution)
    expected = 2.0 * 2 * np.pi * sigma ** 2 * np.outer(stats.norm.pdf(grid, 0.2, sigma), stats.norm.pdf(grid, 0.7,
                                                                                                          sigma))
    assert np.allclose(image, expected, atol=1e-12)


def test_rips_box_depends_on_training_clouds_only() -> None:
    """The radius axis is scaled by the median over training clouds of each cloud's distance quantile (numpy),
    the co-density axis by the training min and max; changing the test clouds changes neither."""
    f = OmegaConf.create({"rips_quantile": 0.3, "kde_bandwidth": 0.1})
    rng = np.random.default_rng(9)
    train = [rng.uniform(size=(20, 2)) for _ in range(3)]
    test_a, test_b = [rng.uniform(size=(20, 2))], [5.0 * rng.uniform(size=(20, 2))]
    scale = float(np.median([np.quantile(pdist(x), 0.3) for x in train]))
    first, second = rips_bifiltrations(f, train, test_a), rips_bifiltrations(f, train, test_b)
    for x, bif in zip(train, first):
        edges = bif.simplices[1]
        assert np.allclose(bif.values[1][:, 0], np.linalg.norm(x[edges[:, 0]] - x[edges[:, 1]], axis=1) / scale)
    for a, b in zip(first[:3], second[:3]):
        assert all(np.array_equal(u, v) for u, v in zip(a.values, b.values))


def test_relative_change_is_the_norm_ratio() -> None:
    old = np.array([3.0, 4.0])
    assert relative_change(old + np.array([0.0, 1.0]), old) == pytest.approx(1 / 5)
