"""TinvNN: MDS against PCA (sklearn) and full eigh, exact invariance under random O(3) x scale x shift,
distance preservation (scipy pdist), permutation equivariance, the shared shape generator and the ModelNet40
parser on OFF files written in the real layout; TSP: Held-Karp against brute force over all tours (n <= 7), greedy
decoding against a nearest-neighbour loop, invariance of the edge scorer on TinvNN inputs."""

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.distance import pdist
from scipy.stats import ortho_group
from sklearn.decomposition import PCA

from repro.core.errors import DataUnavailableError
from repro.core.geometry import SHAPES, PointNet, fix_signs, load_modelnet40, sample_shape
from repro.papers.tinvnn.backbones import DGCNN, PointNetFull, knn_edges
from repro.papers.tinvnn.mds import classical_mds, tinvnn_coordinates
from repro.papers.tinvnn.tsp import (
    EdgeScorer,
    greedy_tours,
    held_karp,
    inputs,
    pairwise,
    tour_edges,
    tour_length,
    transform_instances,
)


def cloud(seed: int = 0, name: str = "l_shape", n: int = 200) -> np.ndarray:
    return sample_shape(name, n, np.random.default_rng(seed))


def rms_scaled(x: np.ndarray) -> np.ndarray:
    return x / np.sqrt((pdist(x) ** 2).mean())


@pytest.mark.parametrize("seed", range(5))
def test_invariant_to_o3_scale_shift(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = cloud(seed)
    q = ortho_group.rvs(3, random_state=seed)
    moved = rng.uniform(0.5, 2) * x @ q.T + rng.normal(0, 2, size=3)
    y, y_moved = tinvnn_coordinates(x[None].astype(np.float64)), tinvnn_coordinates(moved[None])
    assert np.abs(y - y_moved).max() < 1e-5  # float32 output
    assert np.abs(x - moved).max() > 0.1  # the transform did move the cloud


def test_equals_pca_scores_up_to_signs() -> None:
    x = cloud(1)
    y = tinvnn_coordinates(x[None].astype(np.float64))[0]
    scores = PCA(n_components=3).fit_transform(rms_scaled(x))
    signs = np.sign((y * scores).sum(0))
    np.testing.assert_allclose(y, scores * signs, atol=1e-5)


def test_randomised_eigensolver_matches_full_eigh() -> None:
    x = torch.as_tensor(cloud(2), dtype=torch.float64)
    d = torch.cdist(x, x)
    coords, eigenvalues = classical_mds(d, 3)
    n = len(x)
    j = torch.eye(n, dtype=torch.float64) - 1.0 / n
    full = torch.linalg.eigvalsh(-0.5 * j @ d**2 @ j).flip(0)[:3]
    torch.testing.assert_close(eigenvalues, full, rtol=1e-10, atol=1e-10)


def test_distances_preserved() -> None:
    x = cloud(3)
    y = tinvnn_coordinates(x[None].astype(np.float64))[0].astype(np.float64)
    np.testing.assert_allclose(pdist(y), pdist(rms_scaled(x)), atol=1e-5)


def test_permutation_permutes_rows() -> None:
    x = cloud(4)
    perm = np.random.default_rng(0).permutation(len(x))
    y = tinvnn_coordinates(x[None].astype(np.float64))[0]
    np.testing.assert_allclose(tinvnn_coordinates(x[perm][None].astype(np.float64))[0], y[perm], atol=1e-5)


def test_chunked_mds_equals_one_batch_and_bounds_the_chunk(monkeypatch) -> None:
    """The memory cap only splits the clouds into chunks: the same coordinates as one batch, and at
    ModelNet40's N = 1024 a chunk holds 32 clouds (one (32, 1024, 1024) float64 matrix = 256 MB)."""
    from repro.papers.tinvnn import mds

    clouds = np.stack([cloud(seed, n=64) for seed in range(6)])
    whole = tinvnn_coordinates(clouds)
    monkeypatch.setattr(mds, "CHUNK_BYTES", 2 * 8 * 64 * 64)  # two clouds per chunk
    np.testing.assert_array_equal(tinvnn_coordinates(clouds), whole)
    monkeypatch.undo()
    sizes = []
    original = mds.classical_mds
    monkeypatch.setattr(mds, "classical_mds", lambda d, k: sizes.append(len(d)) or original(d, k))
    tinvnn_coordinates(np.random.default_rng(0).standard_normal((40, 1024, 3)))
    assert sizes == [32, 8]


def test_chunked_evaluation_equals_one_pass(monkeypatch) -> None:
    from repro.papers.tinvnn import task

    torch.manual_seed(0)
    net = PointNet(4, 3, (8, 16), (8,)).eval()
    clouds = torch.randn(10, 32, 3)
    with torch.no_grad():
        whole = net(clouds)
        monkeypatch.setattr(task, "CHUNK_POINTS", 3 * 32)  # 3 clouds per chunk: 4 chunks
        torch.testing.assert_close(task.in_chunks(net, clouds), whole)


def test_sign_rule_removes_flips() -> None:
    y = torch.as_tensor(cloud(5), dtype=torch.float64)
    flips = torch.tensor([-1.0, 1.0, -1.0], dtype=torch.float64)
    torch.testing.assert_close(fix_signs(y * flips), fix_signs(y))
    assert (fix_signs(y).pow(3).sum(0) > 0).all()


def test_backbone_becomes_invariant() -> None:
    torch.manual_seed(0)
    net = PointNet(8).eval()
    x = cloud(6)
    moved = 1.7 * x @ ortho_group.rvs(3, random_state=1).T + 3.0
    with torch.no_grad():
        a = net(torch.as_tensor(tinvnn_coordinates(x[None].astype(np.float64))))
        b = net(torch.as_tensor(tinvnn_coordinates(moved[None])))
        raw = net(torch.as_tensor(x[None]).float()) - net(torch.as_tensor(moved[None]).float())
    assert (a - b).abs().max() < 1e-4
    assert raw.abs().max() > 1e-2  # the raw backbone is not invariant: the test can fail


def trained_looking(net: torch.nn.Module) -> torch.nn.Module:
    """Random BatchNorm statistics and affine parameters, so that eval mode is not a plain identity map."""
    torch.manual_seed(1)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    return net.eval()


@pytest.mark.parametrize("backbone", [PointNetFull, DGCNN])
def test_paper_backbones_invariant_on_tinvnn_inputs_only(backbone) -> None:
    """The standard PointNet and DGCNN (eval mode) become O(3) x scale x shift invariant on TinvNN coordinates, are
    permutation invariant on any input, and are not invariant on raw xyz (the test can fail)."""
    torch.manual_seed(0)
    net = trained_looking(backbone(5))
    x = cloud(8, n=64)
    moved = 0.6 * x @ ortho_group.rvs(3, random_state=2).T - 1.5
    perm = np.random.default_rng(1).permutation(len(x))
    with torch.no_grad():
        a = net(torch.as_tensor(tinvnn_coordinates(x[None].astype(np.float64))))
        b = net(torch.as_tensor(tinvnn_coordinates(moved[None])))
        raw = net(torch.as_tensor(x[None]).float())
        shuffled = net(torch.as_tensor(x[perm][None]).float())
        raw_moved = net(torch.as_tensor(moved[None]).float())
    assert (a - b).abs().max() < 1e-4
    torch.testing.assert_close(shuffled, raw, atol=1e-5, rtol=1e-5)
    assert (raw - raw_moved).abs().max() > 1e-3  # 10x the tolerance of the invariant inputs


def test_dgcnn_edges_against_a_loop() -> None:
    """Edge inputs [h_j - h_i, h_i] over the k nearest j (i itself first), against a per-point numpy loop."""
    h = torch.randn(2, 4, 12, dtype=torch.float64)
    edges = knn_edges(h, 5).numpy()  # (B, 2C, N, k)
    for b in range(2):
        x = h[b].T.numpy()
        for i in range(12):
            nearest = np.argsort(np.linalg.norm(x - x[i], axis=1))[:5]
            np.testing.assert_allclose(edges[b, :4, i].T, x[nearest] - x[i], atol=1e-12)
            np.testing.assert_allclose(edges[b, 4:, i].T, np.broadcast_to(x[i], (5, 4)), atol=1e-12)
    assert (edges[:, :4, :, 0] == 0).all()  # the point itself is its nearest neighbour


def test_pointnet_transforms_start_at_identity_and_regulariser() -> None:
    """T-Nets start at the identity (zero last layer); the feature-transform loss is 0.001 ||I - A A^T||_F^2."""
    torch.manual_seed(0)
    net = trained_looking(PointNetFull(4))
    x = torch.randn(3, 3, 40)
    torch.testing.assert_close(net.input_transform(x), torch.eye(3).expand(3, 3, 3))
    with torch.no_grad():
        net(x.transpose(1, 2))
    assert float(net.aux_loss) == 0.0
    with torch.no_grad():
        net.feature_transform.out.bias.normal_(0, 0.1)
        net(x.transpose(1, 2))
        a = net.feature_transform(net.mlp1(torch.bmm(net.input_transform(x).transpose(1, 2), x))).numpy()
    expected = 0.001 * np.mean([((np.eye(64) - m @ m.T) ** 2).sum() for m in a])
    assert float(net.aux_loss) == pytest.approx(expected, rel=1e-4)
    assert expected > 1e-4


@pytest.mark.parametrize("name", SHAPES)
def test_shapes_centred_unit_rms(name: str) -> None:
    x = cloud(7, name, 300)
    np.testing.assert_allclose(x.mean(0), 0, atol=1e-12)
    assert np.isclose(np.sqrt((x**2).sum(1).mean()), 1.0)


def test_sphere_and_torus_surfaces() -> None:
    rng = np.random.default_rng(0)
    from repro.core.geometry import _canonical_shape

    assert np.allclose(np.linalg.norm(_canonical_shape("sphere", 100, rng), axis=1), 1)
    t = _canonical_shape("torus", 2000, rng)
    ring = np.hypot(t[:, 0], t[:, 1])
    assert np.allclose(np.hypot(ring - 0.8, t[:, 2]), 0.25)
    assert (ring > 0.8).mean() > 0.55  # area weighting: the outer half of the tube has more area (~0.66)


OFF_TETRA = "OFF\n4 4 0\n0 0 0\n1 0 0\n0 1 0\n0 0 1\n3 0 1 2\n3 0 1 3\n3 0 2 3\n3 1 2 3\n"


MODELNET_REQUIRED = ["bathtub", "bed", "chair", "desk", "dresser", "monitor", "night_stand", "sofa", "table", "toilet"]


def write_modelnet40_raw(root: Path, meshes: dict[str, dict[str, int]]) -> None:
    """ModelNet40's raw layout, root/modelnet40/raw/<category>/<split>/<category>_NNNN.off (PyG checks for the
    ModelNet10 folder names before parsing; sorted folders -> class index); ``meshes``: category -> split -> count
    of tetrahedra, stretched per mesh (category c by c + 1 along z) so that the classes differ."""
    rng = np.random.default_rng(0)
    tetra = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], float)
    for c, category in enumerate(MODELNET_REQUIRED):
        for split in ("train", "test"):
            folder = root / "modelnet40" / "raw" / category / split
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(meshes.get(category, {}).get(split, 0)):
                v = tetra * [1.0, 1.0, c + 1.0] * rng.uniform(0.8, 1.25, 3)
                body = "\n".join(" ".join(f"{a:.6f}" for a in row) for row in v)
                (folder / f"{category}_{i + 1:04d}.off").write_text(
                    f"OFF\n4 4 0\n{body}\n3 0 1 2\n3 0 1 3\n3 0 2 3\n3 1 2 3\n")


def write_dry_data(data_dir: Path) -> None:
    """ModelNet40 OFF meshes (3 classes, 4 train / 2 test meshes each) where scale=dry reads them; the TSP
    instances are generated."""
    write_modelnet40_raw(data_dir, {c: {"train": 4, "test": 2} for c in ("chair", "sofa", "table")})


def test_modelnet40_parser_on_off_files(tmp_path) -> None:
    for category in MODELNET_REQUIRED:
        for split in ("train", "test"):
            folder = tmp_path / "modelnet40" / "raw" / category / split
            folder.mkdir(parents=True)
            if category in ("chair", "table"):
                (folder / f"{category}_0001.off").write_text(OFF_TETRA)
    points, labels = load_modelnet40(tmp_path, 64, train=True, seed=0)
    assert points.shape == (2, 64, 3) and sorted(labels) == [2, 8]
    assert np.isclose(np.sqrt((points[0].astype(float) ** 2).sum(1).mean()), 1.0, atol=1e-5)
    # sampled points lie on the tetrahedron's faces: x, y, z >= 0 and x + y + z <= 1 before normalisation
    assert np.allclose(points[0].mean(0), 0, atol=1e-5)


@pytest.mark.parametrize("bad_off, problem", [
    ("OFF\n4 1 0\n0 0 0\n1 0 0\n0 1 0\n0 0 1\n3 0 1 9\n", "face indices outside"),
    ("OFF\n4 1 0\n0 0 0\nnan 0 0\n0 1 0\n0 0 1\n3 0 1 2\n", "non-finite vertex"),
])
def test_modelnet40_malformed_mesh_is_named(tmp_path, bad_off: str, problem: str) -> None:
    for category in MODELNET_REQUIRED:
        for split in ("train", "test"):
            (tmp_path / "modelnet40" / "raw" / category / split).mkdir(parents=True)
    for split in ("train", "test"):
        (tmp_path / "modelnet40" / "raw" / "chair" / split / "chair_0001.off").write_text(OFF_TETRA)
    (tmp_path / "modelnet40" / "raw" / "sofa" / "train" / "sofa_0001.off").write_text(bad_off)
    with pytest.raises(DataUnavailableError, match=problem):
        load_modelnet40(tmp_path, 64, train=True, seed=0)


def test_modelnet40_processed_files_are_read_only_when_repro_wrote_them(tmp_path) -> None:
    """PyG retries a processed file with plain pickle when the safe loader refuses it: a planted file must be
    refused before PyG sees it, and an edited one after a clean first load too."""
    from tests.helpers import Payload

    for category in MODELNET_REQUIRED:
        for split in ("train", "test"):
            (tmp_path / "modelnet40" / "raw" / category / split).mkdir(parents=True)
    for split in ("train", "test"):
        (tmp_path / "modelnet40" / "raw" / "chair" / split / "chair_0001.off").write_text(OFF_TETRA)
    load_modelnet40(tmp_path, 16, train=True, seed=0)                       # processes and seals
    assert load_modelnet40(tmp_path, 16, train=False, seed=0)[0].shape == (1, 16, 3)   # the seal matches
    processed = tmp_path / "modelnet40" / "processed"
    marker = tmp_path / "ran"
    target = next(processed.glob("training*.pt"))
    torch.save(Payload(marker), target)                                     # edited after sealing
    with pytest.raises(DataUnavailableError, match="differ from those repro wrote"):
        load_modelnet40(tmp_path, 16, train=True, seed=0)
    (processed.with_name("processed.sha256.json")).unlink()                # planted without a seal
    with pytest.raises(DataUnavailableError, match="without the seal"):
        load_modelnet40(tmp_path, 16, train=True, seed=0)
    assert not marker.exists()


# --- TSP -------------------------------------------------------------------------------------------------------


def instances(b: int, n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((b, n, 2))


@pytest.mark.parametrize("n", [4, 5, 6, 7])
def test_held_karp_matches_brute_force(n: int) -> None:
    points = instances(12, n, seed=n)
    lengths, tours = held_karp(pairwise(points))
    every_tour = np.array([[0, *perm] for perm in itertools.permutations(range(1, n))])
    for b in range(len(points)):
        brute = tour_length(np.broadcast_to(points[b], (len(every_tour), n, 2)), every_tour).min()
        assert lengths[b] == pytest.approx(brute, rel=1e-12)
        assert sorted(tours[b].tolist()) == list(range(n)) and tours[b, 0] == 0  # a permutation from city 0
    np.testing.assert_allclose(tour_length(points, tours), lengths, rtol=1e-12)


def test_optimal_tour_follows_the_transform() -> None:
    """x -> s Q x + t scales every tour by s, so the optimal length scales by s and the optimal tour is kept."""
    points = instances(20, 8, seed=1)
    moved, scales = transform_instances(points, np.random.default_rng(2), (0.5, 2.0), 2.0)
    lengths, tours = held_karp(pairwise(points))
    moved_lengths, moved_tours = held_karp(pairwise(moved))
    np.testing.assert_allclose(moved_lengths, scales * lengths, rtol=1e-10)
    np.testing.assert_array_equal(tour_edges(moved_tours), tour_edges(tours))  # same cycle (either direction)


def test_tour_edges_and_greedy_decoding() -> None:
    points = instances(30, 9, seed=3)
    _, tours = held_karp(pairwise(points))
    edges = tour_edges(tours)
    np.testing.assert_array_equal(edges, edges.transpose(0, 2, 1))
    np.testing.assert_array_equal(edges.sum(2), 2)
    # scores = -distance makes greedy decoding the nearest-neighbour heuristic; check it against a plain loop
    greedy = greedy_tours(torch.as_tensor(-pairwise(points)))
    for b in range(len(points)):
        tour, left = [0], set(range(1, 9))
        while left:
            tour.append(min(left, key=lambda j: np.linalg.norm(points[b, j] - points[b, tour[-1]])))
            left.remove(tour[-1])
        assert greedy[b].tolist() == tour
    assert (tour_length(points, greedy) >= held_karp(pairwise(points))[0] - 1e-12).all()  # never below optimal


def test_edge_scorer_symmetric_and_permutation_equivariant() -> None:
    torch.manual_seed(0)
    model = EdgeScorer(16, 2).double()
    x = torch.as_tensor(instances(4, 7))
    perm = torch.randperm(7)
    with torch.no_grad():
        logits = model(x)
        torch.testing.assert_close(logits, logits.transpose(1, 2))
        torch.testing.assert_close(model(x[:, perm]), logits[:, perm][:, :, perm])


def test_tsp_backbone_invariant_only_on_tinvnn_inputs() -> None:
    """The same backbone's edge scores are unchanged by O(2) x scale x shift on TinvNN inputs, not on raw ones."""
    torch.manual_seed(0)
    model = EdgeScorer(16, 2)
    points = instances(16, 10, seed=4)
    moved, _ = transform_instances(points, np.random.default_rng(5), (0.5, 2.0), 2.0)
    with torch.no_grad():
        same = model(inputs("tinvnn", moved)) - model(inputs("tinvnn", points))
        raw = model(inputs("raw", moved)) - model(inputs("raw", points))
    assert same.abs().max() < 1e-4
    assert raw.abs().max() > 1e-2


class _NegativeDistance(torch.nn.Module):
    """An edge scorer that prefers near cities: greedy decoding becomes the nearest-neighbour heuristic."""

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        return -torch.cdist(coords, coords)


def test_tsp_gaps_of_a_similarity_invariant_scorer(monkeypatch, tmp_path) -> None:
    """Nearest-neighbour tours depend on the instance only through distance ratios, so on raw and on TinvNN inputs
    (distances kept up to scale) and on the s Q x + t copies they are the same tours: every gap equals the
    nearest-neighbour gap computed here by a plain loop over brute-force optimal tours, and the transformed gap
    (against s times the optimal length) equals the original one."""
    import logging

    from omegaconf import OmegaConf

    from repro.core.context import RunContext
    from repro.core.units import Unit
    from repro.papers.tinvnn import tsp

    cfg = OmegaConf.create({"seed": 0, "scale": {"name": "test"}, "data_dir": str(tmp_path),
                            "data": {"test_scale": [0.5, 2.0], "test_shift_std": 2.0},
                            "tsp": {"cities": 6, "train_instances": 4, "val_instances": 4, "test_instances": 12,
                                    "methods": ["raw", "tinvnn"]}})
    ctx = RunContext(cfg, tmp_path, "cpu", Unit("tsp", None), logging.getLogger("test"))
    monkeypatch.setattr(tsp, "train_scorer", lambda *args: _NegativeDistance())
    rows = tsp.run_tsp(cfg, ctx)
    rng = np.random.default_rng(ctx.data_seed("tsp"))  # the instances as run_tsp draws them: train, then test
    rng.random((4, 6, 2))
    test = rng.random((12, 6, 2))
    every_tour = [(0, *p) for p in itertools.permutations(range(1, 6))]

    def length(points: np.ndarray, tour: tuple) -> float:
        return sum(np.linalg.norm(points[a] - points[b]) for a, b in zip(tour, tour[1:] + tour[:1]))

    gaps = []
    for points in test:
        tour, left = [0], set(range(1, 6))
        while left:
            tour.append(min(left, key=lambda j: np.linalg.norm(points[j] - points[tour[-1]])))
            left.remove(tour[-1])
        gaps.append(length(points, tuple(tour)) / min(length(points, t) for t in every_tour) - 1)
    for row in rows:
        assert row["tsp/gap"] == pytest.approx(np.mean(gaps), rel=1e-6)
        assert row["tsp/gap_transformed"] == pytest.approx(row["tsp/gap"], rel=1e-6)


def test_pointnet_input_transform_acts_on_row_vectors() -> None:
    """The official PointNet multiplies the points as rows by the T-Net's matrix, x_i^T A: a network whose T-Net
    outputs A must equal the same network with an identity T-Net fed the points times A."""
    torch.manual_seed(0)
    net = trained_looking(PointNetFull(4))
    a = torch.tensor([[1.0, 0.5, 0.0], [0.0, 1.0, -0.3], [0.2, 0.0, 0.8]])
    points = torch.randn(3, 40, 3)
    with torch.no_grad():
        net.input_transform.out.bias.copy_((a - torch.eye(3)).flatten())
        net.input_transform.out.weight.zero_()
        transformed = net(points)
        net.input_transform.out.bias.zero_()
        torch.testing.assert_close(transformed, net(points @ a), atol=1e-5, rtol=1e-5)


def test_invariance_probe_measures_coordinate_change_and_distance_recovery() -> None:
    """On TinvNN coordinates of generic clouds: the coordinate change under O(3) x scale x shift and the distance
    recovery error |pdist(Y) - pdist(X) / RMS(pdist(X))| (scipy) are both at float32 round-off."""
    from repro.papers.tinvnn.task import invariance_probe

    x = np.stack([cloud(seed, n=64) for seed in range(4)])
    rng = np.random.default_rng(0)
    moved = np.stack([rng.uniform(0.5, 2) * c @ ortho_group.rvs(3, random_state=s).T + rng.normal(0, 2, 3)
                      for s, c in enumerate(x)])
    rows = invariance_probe({"tests": {"aligned": x, "o3_scale_shift": moved},
                             "labels": {"aligned": np.array([0, 0, 1, 1])}})
    assert [r["class"] for r in rows[:-1]] == [0, 1] and rows[-1]["probe"] == "distances"
    assert all(r["max_coord_change"] < 1e-5 for r in rows[:-1])
    assert rows[-1]["max_distance_error"] < 1e-5


def test_sweep_rotation_about_x_matches_scipy() -> None:
    from scipy.spatial.transform import Rotation

    from repro.papers.tinvnn.task import about_x

    x = cloud(9, n=20)
    np.testing.assert_allclose(about_x(x, 70.0), Rotation.from_euler("x", 70.0, degrees=True).apply(x), atol=1e-12)


class _FixedLogits(torch.nn.Module):
    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        return self.logits[: len(coords)]


def test_edge_scorer_loss_weighs_tour_edges_by_the_negatives_to_positives_ratio(monkeypatch, tmp_path) -> None:
    """The scorer's training loss (as train_scorer hands it to the training loop) on fixed logits against a numpy
    weighted BCE over the off-diagonal entries, the positive weight counted from the optimal tours' adjacency:
    (#non-tour pairs) / (#tour pairs) = (n (n - 1) - 2 n) / (2 n) = (n - 3) / 2."""
    import logging

    from omegaconf import OmegaConf

    from repro.core.context import RunContext
    from repro.core.units import Unit
    from repro.papers.tinvnn import tsp

    cities = 8
    cfg = OmegaConf.create({"seed": 0, "scale": {"name": "test"}, "data_dir": str(tmp_path),
                            "tsp": {"cities": cities, "width": 4, "layers": 1, "epochs": 1, "batch_size": 4,
                                    "lr": 1e-3}})
    ctx = RunContext(cfg, tmp_path, "cpu", Unit("tsp", None), logging.getLogger("test"))
    handed = []
    monkeypatch.setattr(tsp, "fit", lambda ctx, name, model, optimizer, batches, loss_fn, *args, **kwargs:
                        handed.append(loss_fn))
    rng = np.random.default_rng(0)
    points = rng.random((3, cities, 2))
    edges = tour_edges(held_karp(pairwise(points))[1]).astype(float)
    x = torch.as_tensor(points, dtype=torch.float32)
    tsp.train_scorer(cfg, ctx, "raw", x, torch.as_tensor(edges, dtype=torch.float32), (x, torch.zeros(3)))
    logits = rng.normal(0, 2, size=edges.shape)
    got = float(handed[0](_FixedLogits(torch.as_tensor(logits, dtype=torch.float32)),
                          (x, torch.as_tensor(edges, dtype=torch.float32))))
    off = ~np.eye(cities, dtype=bool)
    y, z = edges[:, off], logits[:, off]
    weight = (y == 0).sum() / (y == 1).sum()
    assert weight == (cities - 3) / 2
    log_sigmoid = -np.logaddexp(0, -z)
    expected = -np.mean(weight * y * log_sigmoid + (1 - y) * (log_sigmoid - z))  # log(1 - s(z)) = log s(z) - z
    assert got == pytest.approx(expected, rel=1e-5)
