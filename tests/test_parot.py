"""PaRot: FPS and kNN against brute force, orientation matrices (O O^T = I, det +1), Haar rotations against scipy,
rotation invariance of the patch sampling, PCA canonicalisation, permutation invariance of the networks."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation
from sklearn.metrics import jaccard_score

from repro.core.errors import DataUnavailableError
from repro.core.geometry import pca_canonicalise, sample_shape
from repro.papers.parot.data import (
    PART_START,
    SHAPENET_PARTS,
    load_modelnet40_h5,
    load_scanobjectnn,
    load_shapenetpart,
    part_miou,
)
from repro.papers.parot.models import (
    DGCNN,
    PaRotLite,
    PaRotSeg,
    farthest_point_sampling,
    knn,
    orientation,
    pose_relation,
    random_rotation_matrices,
)


def clouds(b: int = 3, n: int = 64, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.as_tensor(np.stack([sample_shape("l_shape", n, rng) for _ in range(b)]))


def brute_fps(x: np.ndarray, m: int) -> list[int]:
    chosen = [int(np.linalg.norm(x - x.mean(0), axis=1).argmax())]
    while len(chosen) < m:
        d = np.min([np.linalg.norm(x - x[c], axis=1) for c in chosen], axis=0)
        chosen.append(int(d.argmax()))
    return chosen


def test_fps_matches_brute_force() -> None:
    x = clouds()
    idx = farthest_point_sampling(x, 10)
    for b in range(len(x)):
        assert idx[b].tolist() == brute_fps(x[b].numpy(), 10)


def reference_fps(points: torch.Tensor, m: int) -> torch.Tensor:
    """The implementation before issue 11 (advanced indexing per step, two calls for M and G): the reference."""
    b, n, _ = points.shape
    chosen = torch.empty(b, m, dtype=torch.long)
    chosen[:, 0] = (points - points.mean(1, keepdim=True)).norm(dim=-1).argmax(-1)
    distance = torch.full((b, n), float("inf"))
    rows = torch.arange(b)
    for i in range(1, m):
        distance = torch.minimum(distance, ((points - points[rows, chosen[:, i - 1]].unsqueeze(1)) ** 2).sum(-1))
        chosen[:, i] = distance.argmax(-1)
    return chosen


def test_fps_matches_the_previous_implementation_at_paper_sizes() -> None:
    """1024-point clouds, 256 centres (the paper's local patches) and 32 anchors: the same indices, and the
    prefix of one call equals the shorter call (so one FPS serves both scales)."""
    x = torch.as_tensor(np.random.default_rng(3).standard_normal((4, 1024, 3)), dtype=torch.float32)
    full = farthest_point_sampling(x, 256)
    assert torch.equal(full, reference_fps(x, 256))
    assert torch.equal(full[:, :32], farthest_point_sampling(x, 32))
    assert full.device == x.device and len(set(full[0].tolist())) == 256


def test_parot_samples_once_for_both_scales() -> None:
    """The patch features come from one FPS call whose prefixes are the centres and the anchors."""
    calls = []
    import repro.papers.parot.models as models

    original = models.farthest_point_sampling
    models.farthest_point_sampling = lambda p, m: calls.append(m) or original(p, m)
    try:
        torch.manual_seed(0)
        PaRotLite(8, 8, 8, 12, 2, 16, 32).eval()(clouds().float())
    finally:
        models.farthest_point_sampling = original
    assert calls == [12]


def test_knn_matches_brute_force() -> None:
    x = clouds()
    idx = knn(x[:, :5], x, 7)
    for b in range(len(x)):
        for q in range(5):
            expected = np.argsort(np.linalg.norm(x[b].numpy() - x[b, q].numpy(), axis=1))[:7]
            assert set(idx[b, q].tolist()) == set(expected.tolist())


def test_sampling_is_rotation_invariant() -> None:
    x = clouds()
    r = torch.as_tensor(Rotation.random(random_state=0).as_matrix())
    assert torch.equal(farthest_point_sampling(x, 12), farthest_point_sampling(x @ r.T, 12))
    assert torch.equal(knn(x[:, :4], x, 5), knn(x[:, :4] @ r.T, x @ r.T, 5))


def test_orientation_is_a_rotation() -> None:
    g = torch.Generator().manual_seed(0)
    d1, d2 = torch.randn(2, 100, 3, dtype=torch.float64, generator=g)
    o = orientation(d1, d2)
    eye = torch.eye(3, dtype=torch.float64).expand(100, 3, 3)
    torch.testing.assert_close(o @ o.transpose(-2, -1), eye, atol=1e-6, rtol=0)  # eps = 1e-8 in the norms
    torch.testing.assert_close(torch.linalg.det(o), torch.ones(100, dtype=torch.float64), atol=1e-6, rtol=0)
    assert torch.isfinite(orientation(d1, 2 * d1)).all()  # parallel directions stay finite
    r = torch.as_tensor(Rotation.random(random_state=1).as_matrix())
    torch.testing.assert_close(orientation(d1 @ r.T, d2 @ r.T), r @ o, atol=1e-6, rtol=0)  # equivariant


def test_random_rotations_are_haar() -> None:
    r = random_rotation_matrices((20000,), torch.Generator().manual_seed(0)).double()
    torch.testing.assert_close(r @ r.transpose(-2, -1), torch.eye(3, dtype=torch.float64).expand_as(r),
                               atol=1e-5, rtol=0)
    assert torch.allclose(torch.linalg.det(r), torch.ones(20000, dtype=torch.float64), atol=1e-5)
    # Haar SO(3): E[trace] = 0, E[trace^2] = 1 (scipy's sampler agrees)
    trace = r.diagonal(dim1=-2, dim2=-1).sum(-1)
    scipy_trace = np.trace(Rotation.random(20000, random_state=0).as_matrix(), axis1=1, axis2=2)
    assert abs(trace.mean()) < 0.03 and abs(scipy_trace.mean()) < 0.03
    assert abs((trace**2).mean() - 1) < 0.05 and abs((scipy_trace**2).mean() - 1) < 0.05


def test_pca_canonicalisation_is_invariant() -> None:
    x = clouds().numpy()
    r = Rotation.random(3, random_state=2).as_matrix()
    moved = np.einsum("bij,bnj->bni", r, x) + 1.5
    np.testing.assert_allclose(pca_canonicalise(moved), pca_canonicalise(x), atol=1e-5)


@pytest.mark.parametrize("model", [lambda: PaRotLite(8, 8, 8, 4, 2, 16, 32), lambda: DGCNN(8, 5, 16, 32)])
def test_networks_permutation_invariant(model) -> None:
    torch.manual_seed(0)
    net = model().eval()
    x = clouds().float()
    perm = torch.randperm(x.shape[1])
    with torch.no_grad():
        torch.testing.assert_close(net(x[:, perm]), net(x), atol=1e-5, rtol=0)


def test_siamese_losses_in_training_only() -> None:
    torch.manual_seed(0)
    net = PaRotLite(8, 8, 8, 4, 2, 16, 32)
    net(clouds().float())
    assert set(net.aux_losses) == {"local", "global"} and all(v > 0 for v in net.aux_losses.values())
    no_siamese = PaRotLite(8, 8, 8, 4, 2, 16, 32, siamese=False)
    no_siamese(clouds().float())
    assert no_siamese.aux_losses == {}


class EquivariantOracle(torch.nn.Module):
    """An exactly invariant/equivariant stand-in for a trained disentanglement net: f = MLP of the sorted point
    norms (invariant), d1, d2 = sums of the points weighted by two functions of their norms (equivariant)."""

    def __init__(self, k: int, width: int) -> None:
        super().__init__()
        self.features, self.weights = torch.nn.Linear(k, width), torch.nn.Linear(1, 2)

    def forward(self, patch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        norms = patch.norm(dim=-1, keepdim=True)
        w = torch.tanh(self.weights(norms))  # (..., k, 2)
        d = (w.unsqueeze(-1) * patch.unsqueeze(-2)).sum(-3)  # (..., 2, 3)
        return torch.tanh(self.features(norms[..., 0].sort(-1).values)), d[..., 0, :], d[..., 1, :]


def generic_cloud(n: int, seed: int) -> torch.Tensor:
    """A cloud without near-ties: every FPS choice and kNN boundary is decided by a margin far above float64
    round-off, so the patches of a rotated copy are exactly the rotated patches (checked by the test)."""
    return torch.as_tensor(np.random.default_rng(seed).standard_normal((1, n, 3)) * [1.0, 0.7, 0.4])


@pytest.mark.parametrize("pose_restoration", [True, False])
def test_parot_invariant_given_equivariant_disentanglement(pose_restoration: bool) -> None:
    """Everything after the disentanglement (patch relations, pose restoration, inter-scale fusion, head) is exactly
    rotation invariant: with invariant f and equivariant directions the logits agree under a random rotation."""
    torch.manual_seed(0)
    net = PaRotLite(8, 8, 8, 4, 3, 16, 32, pose_restoration=pose_restoration).double()
    net.local_net, net.global_net = EquivariantOracle(8, 32).double(), EquivariantOracle(4, 32).double()  # f: 2 width
    net.eval()
    x = generic_cloud(64, 3)
    for seed in range(3):
        r = torch.as_tensor(Rotation.random(random_state=seed).as_matrix())
        moved = x @ r.T
        assert torch.equal(farthest_point_sampling(moved, 8), farthest_point_sampling(x, 8))  # same patches
        assert torch.equal(knn(x, x, 9).sort(-1).values, knn(moved, moved, 9).sort(-1).values)
        with torch.no_grad():
            torch.testing.assert_close(net(moved), net(x), atol=1e-9, rtol=0)
            assert net.direction_equivariance(x, r[None]) == pytest.approx(1.0, abs=1e-12)


def test_disentanglement_equivariance_is_learned_not_built_in() -> None:
    """The disentanglement nets are plain PointNets on raw patch coordinates (as in the paper's code), so an
    untrained net's directions are not equivariant, d(R P) != R d(P): invariance has to come from siamese training."""
    torch.manual_seed(0)
    net = PaRotLite(8, 8, 8, 4, 3, 16, 32).double().eval()
    patches = generic_cloud(64, 3)[0, :32].view(4, 8, 3)
    r = torch.as_tensor(Rotation.random(random_state=0).as_matrix())
    with torch.no_grad():
        _, d, _ = net.local_net(patches)
        _, d_moved, _ = net.local_net(patches @ r.T)
    cosine = (d_moved * (d @ r.T)).sum(-1)
    assert cosine.min() < 0.9
    with torch.no_grad():
        assert net.direction_equivariance(generic_cloud(64, 3), r[None]) < 0.99


def test_pose_relation_detects_a_wrong_frame() -> None:
    """The relation is invariant when both frames and the offset rotate together, and changes when only one does
    (so the invariance test above could fail)."""
    g = torch.Generator().manual_seed(0)
    o_a, o_b = (orientation(*torch.randn(2, 5, 3, dtype=torch.float64, generator=g)) for _ in range(2))
    offset = torch.randn(5, 3, dtype=torch.float64, generator=g)
    r = torch.as_tensor(Rotation.random(random_state=4).as_matrix())
    torch.testing.assert_close(pose_relation(r @ o_a, r @ o_b, offset @ r.T), pose_relation(o_a, o_b, offset))
    assert (pose_relation(r @ o_a, o_b, offset @ r.T) - pose_relation(o_a, o_b, offset)).abs().max() > 1e-2


# --- paper-scale data: parsers on tiny files in the real layouts, the mIoU metric --------------------------------


def write_shapenetpart_raw(root: Path, shapes: dict[str, int]) -> None:
    """torch_geometric's ShapeNet layout: raw/<synset>/<id>.txt rows 'x y z nx ny nz part' (``shapes``: synset/id ->
    part within its category) and raw/train_test_split/shuffled_{train,val,test}_file_list.json (a, c train;
    d val; b test)."""
    import json

    from torch_geometric.datasets import ShapeNet

    raw = root / "shapenetpart" / "raw"
    for synset in ShapeNet.category_ids.values():
        (raw / synset).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, part in shapes.items():
        category = name.split("/")[0]
        points = rng.standard_normal((30, 3)) * [1.0, 0.2, 0.5]  # y is the thin axis (y-up files)
        labels = np.full(30, PART_START[list(ShapeNet.category_ids.values()).index(category)] + part)
        np.savetxt(raw / f"{name}.txt", np.column_stack([points, np.zeros((30, 3)), labels]))
    (raw / "train_test_split").mkdir()
    lists = {"train": ["shape_data/02691156/a", "shape_data/03001627/c"], "val": ["shape_data/03001627/d"],
             "test": ["shape_data/02691156/b"]}
    for split, names in lists.items():
        (raw / "train_test_split" / f"shuffled_{split}_file_list.json").write_text(json.dumps(names))


def test_shapenetpart_parser_on_raw_files(tmp_path) -> None:
    """Clouds come back z-up, resampled, normalised, with their categories and part labels."""
    write_shapenetpart_raw(tmp_path, {"02691156/a": 0, "02691156/b": 1, "03001627/c": 3, "03001627/d": 2})
    x, categories, parts = load_shapenetpart(tmp_path, 64, True, seed=0)
    assert x.shape == (3, 64, 3) and parts.shape == (3, 64)  # trainval = train + val
    assert categories.tolist() == [0, 4, 4] and parts[:, 0].tolist() == [0, 15, 14] and (parts == parts[:, :1]).all()
    np.testing.assert_allclose(x.mean(1), 0, atol=1e-6)
    np.testing.assert_allclose((x**2).sum(-1).mean(-1), 1, rtol=1e-5)
    assert (x[..., 2].std(1) < x[..., 1].std(1)).all()  # the thin y axis became z
    x_test, categories_test, _ = load_shapenetpart(tmp_path, 16, False, seed=0)
    assert x_test.shape == (1, 16, 3) and categories_test.tolist() == [0]


def test_shapenetpart_refuses_a_part_outside_its_category(tmp_path) -> None:
    # plane "a" labelled with its category's part 4: planes own parts 0-3 only (PART_START[1] = 4 is a bag's)
    write_shapenetpart_raw(tmp_path, {"02691156/a": 4, "02691156/b": 1, "03001627/c": 3, "03001627/d": 2})
    with pytest.raises(DataUnavailableError, match="shape 0 has 30 points, category 0, parts \\[4\\].*fetch"):
        load_shapenetpart(tmp_path, 64, True, seed=0)


def test_scanobjectnn_parser_on_h5_files(tmp_path) -> None:
    h5py = pytest.importorskip("h5py")
    folder = tmp_path / "scanobjectnn" / "main_split"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, n in (("training_objectdataset.h5", 3), ("test_objectdataset.h5", 2)):
        with h5py.File(folder / name, "w") as f:
            f["data"] = (rng.standard_normal((n, 2048, 3)) * [1.0, 0.2, 0.5]).astype(np.float32)
            f["label"] = np.arange(n, dtype=np.uint8)
            f["mask"] = np.zeros((n, 2048), dtype=np.int8)
    x, y = load_scanobjectnn(tmp_path, 256, True)
    assert x.shape == (3, 256, 3) and y.tolist() == [0, 1, 2]
    assert (x[..., 2].std(1) < x[..., 1].std(1)).all()  # y-up to z-up
    assert load_scanobjectnn(tmp_path, 256, False)[0].shape == (2, 256, 3)


def test_scanobjectnn_refuses_labels_out_of_range(tmp_path) -> None:
    h5py = pytest.importorskip("h5py")
    folder = tmp_path / "scanobjectnn" / "main_split"
    folder.mkdir(parents=True)
    with h5py.File(folder / "training_objectdataset.h5", "w") as f:
        f["data"] = np.ones((2, 2048, 3), dtype=np.float32)
        f["label"] = np.array([0, 15], dtype=np.uint8)
    with pytest.raises(DataUnavailableError, match="training_objectdataset.h5: 2 labels .* 0..15 \\(expected 0..14"):
        load_scanobjectnn(tmp_path, 256, True)


def test_scanobjectnn_missing_names_the_files(tmp_path) -> None:
    with pytest.raises(DataUnavailableError, match="training_objectdataset.h5"):
        load_scanobjectnn(tmp_path, 256, True)


def test_part_miou_matches_sklearn_jaccard() -> None:
    rng = np.random.default_rng(0)
    categories = np.array([0, 4, 10, 15])
    parts = np.stack([PART_START[c] + rng.integers(0, SHAPENET_PARTS[c], 50) for c in categories])
    pred = np.where(rng.random(parts.shape) < 0.7, parts, np.stack(
        [PART_START[c] + rng.integers(0, SHAPENET_PARTS[c], 50) for c in categories]))
    pred[0, :] = PART_START[0]  # a part predicted everywhere; others absent from the prediction
    expected = [jaccard_score(t, p, labels=range(PART_START[c], PART_START[c] + SHAPENET_PARTS[c]), average="macro",
                              zero_division=1.0) for t, p, c in zip(parts, pred, categories)]
    np.testing.assert_allclose(part_miou(pred, parts, categories), expected)
    assert part_miou(parts, parts, categories).tolist() == [1.0] * 4


def test_segmentation_head_shapes_and_invariance_given_equivariant_disentanglement() -> None:
    torch.manual_seed(0)
    net = PaRotSeg(16, 50, local_patches=8, local_k=8, global_points=4, neighbours=3, width=16, embedding=32).double()
    net.local_net, net.global_net = EquivariantOracle(8, 32).double(), EquivariantOracle(4, 32).double()  # f: 2 width
    net.eval()
    x, categories = generic_cloud(64, 5), torch.tensor([3])
    r = torch.as_tensor(Rotation.random(random_state=5).as_matrix())
    with torch.no_grad():
        logits = net(x, categories)
        assert logits.shape == (1, 64, 50)
        torch.testing.assert_close(net(x @ r.T, categories), logits, atol=1e-9, rtol=0)


def write_modelnet40_h5(data_dir: Path, clouds_per_file: dict[str, list[int]]) -> None:
    """The HDF5 release's layout: data_dir/modelnet40_ply_hdf5_2048/ply_data_<split><i>.h5, ``data`` (M, 2048, 3)
    float32 and ``label`` (M, 1) uint8; cloud c of a file is a stretched Gaussian blob of class c % 3 (elongated
    along x, y or z), so that the classes differ."""
    import h5py

    folder = data_dir / "modelnet40_ply_hdf5_2048"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split, counts in clouds_per_file.items():
        for i, n in enumerate(counts):
            labels = np.arange(n) % 3
            axes = np.where(np.eye(3)[labels] == 1, 1.0, 0.3)[:, None, :]  # (n, 1, 3)
            with h5py.File(folder / f"ply_data_{split}{i}.h5", "w") as f:
                f["data"] = (rng.standard_normal((n, 2048, 3)) * axes).astype(np.float32)
                f["label"] = labels[:, None].astype(np.uint8)


def write_dry_data(data_dir: Path) -> None:
    """ModelNet40 HDF5 files (train: two files of 6 and 3 clouds, test: one of 3; 3 classes) where scale=dry reads
    them."""
    write_modelnet40_h5(data_dir, {"train": [6, 3], "test": [3]})


def test_modelnet40_h5_reader(tmp_path) -> None:
    """Files of a split concatenated in name order, the first n points of each cloud, labels flattened."""
    import h5py

    write_modelnet40_h5(tmp_path, {"train": [4, 2], "test": [3]})
    x, y = load_modelnet40_h5(tmp_path, 1024, True)
    assert x.shape == (6, 1024, 3) and x.dtype == np.float32
    assert y.tolist() == [0, 1, 2, 0, 0, 1]
    with h5py.File(tmp_path / "modelnet40_ply_hdf5_2048" / "ply_data_train1.h5") as f:
        np.testing.assert_array_equal(x[4:], f["data"][:, :1024])
    assert load_modelnet40_h5(tmp_path, 512, False)[0].shape == (3, 512, 3)


def test_modelnet40_h5_refuses_bad_files(tmp_path) -> None:
    import h5py

    with pytest.raises(DataUnavailableError, match="no ModelNet40 train files .*modelnet40_ply_hdf5_2048.zip"):
        load_modelnet40_h5(tmp_path, 1024, True)
    write_modelnet40_h5(tmp_path, {"train": [2]})
    with pytest.raises(DataUnavailableError, match="expected \\(clouds, >= 4096 points, 3\\)"):
        load_modelnet40_h5(tmp_path, 4096, True)
    with h5py.File(tmp_path / "modelnet40_ply_hdf5_2048" / "ply_data_train0.h5", "r+") as f:
        f["label"][0] = 40
    with pytest.raises(DataUnavailableError, match="labels outside 0..39"):
        load_modelnet40_h5(tmp_path, 1024, True)


def test_modelnet40_h5_without_h5py_says_so_in_one_line(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "h5py", None)  # import h5py now raises ImportError
    with pytest.raises(DataUnavailableError, match="^reading ModelNet40's HDF5 release needs h5py: pip install h5py$"):
        load_modelnet40_h5(tmp_path, 1024, True)


def test_paper_widths_match_the_official_model() -> None:
    """At width 64 (scale=paper): invariant feature 128, EdgeConv input 288 -> 128, fusion 288 -> 256 -> 512 ->
    1024, head 1024 -> 512 -> 256 -> 40."""
    net = PaRotLite(40, width=64, embedding=1024, head=(512, 256))
    linears = lambda module: [(m.in_features, m.out_features) for m in module.modules()  # noqa: E731
                              if isinstance(m, torch.nn.Linear)]
    assert linears(net.local_net.invariant) == [(128, 128), (128, 128)]
    assert linears(net.edge) == [(288, 128), (128, 128), (128, 128)]
    assert linears(net.fusion) == [(288, 256), (256, 512), (512, 1024)]
    assert linears(net.head) == [(1024, 512), (512, 256), (256, 40)]
    assert linears(net.relation_embed) == [(16, 32)]


def test_pose_relation_against_its_formula() -> None:
    """[O_a^T O_b (row-major, 9), O_a^T u (3), O_b^T u (3), |offset| (1)] with u = offset / |offset|, in numpy."""
    rng = np.random.default_rng(0)
    o_a, o_b = Rotation.random(4, random_state=1).as_matrix(), Rotation.random(4, random_state=2).as_matrix()
    offset = rng.standard_normal((4, 3)) * 2.5
    dist = np.linalg.norm(offset, axis=-1, keepdims=True)
    u = offset / dist
    expected = np.concatenate([np.einsum("bki,bkj->bij", o_a, o_b).reshape(4, 9), np.einsum("bki,bk->bi", o_a, u),
                               np.einsum("bki,bk->bi", o_b, u), dist], -1)
    got = pose_relation(torch.as_tensor(o_a), torch.as_tensor(o_b), torch.as_tensor(offset))
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-12)


def test_siamese_losses_vanish_for_equivariant_directions_but_orthogonality() -> None:
    """With exactly equivariant directions, R^T d(R P) = d(P) in both branches: the direction-consistency loss is
    0 and each scale's loss is its weight (0.2 local, 0.1 global) times mean cos^2(d1(P), d2(P)) over its patches,
    computed here from brute-force FPS centres/anchors and the oracle's directions on the unrotated patches."""
    torch.manual_seed(0)
    net = PaRotLite(8, 6, 8, 4, 3, 16, 32)  # float32: the training branch draws float32 rotations
    net.local_net, net.global_net = EquivariantOracle(8, 32), EquivariantOracle(4, 32)
    x = generic_cloud(64, 3).float()
    net.train()
    net(x.expand(2, -1, -1))  # two copies: training BatchNorm needs more than one cloud
    chosen = brute_fps(x[0].numpy(), 6)
    centres, anchors = x[0, chosen], x[0, chosen[:4]]
    order = torch.cdist(centres, x[0]).argsort(-1)[:, :8]
    local = x[0][order] - centres[:, None]
    global_ = anchors[None] - centres[:, None]

    def mean_cos2(patches: torch.Tensor, oracle: torch.nn.Module) -> float:
        _, d1, d2 = oracle(patches)
        return float((torch.nn.functional.cosine_similarity(d1, d2, dim=-1) ** 2).mean())

    assert float(net.aux_losses["local"]) == pytest.approx(0.2 * mean_cos2(local, net.local_net), rel=1e-4)
    assert float(net.aux_losses["global"]) == pytest.approx(0.1 * mean_cos2(global_, net.global_net), rel=1e-4)


def test_parot_translation_invariant_given_equivariant_disentanglement() -> None:
    """Patches are relative to their centres and the local-to-global offset to the centroid: shifting the cloud
    changes nothing."""
    torch.manual_seed(0)
    net = PaRotLite(8, 8, 8, 4, 3, 16, 32).double()
    net.local_net, net.global_net = EquivariantOracle(8, 32).double(), EquivariantOracle(4, 32).double()
    net.eval()
    x = generic_cloud(64, 4)
    with torch.no_grad():
        torch.testing.assert_close(net(x + torch.tensor([3.0, -2.0, 1.5], dtype=torch.float64)), net(x),
                                   atol=1e-9, rtol=0)


def test_dgcnn_edge_conv_against_a_per_point_loop() -> None:
    """EdgeConv (Wang et al.): h_i = max over the k nearest j (by numpy distances, i itself included) of
    MLP([h_i, h_j - h_i])."""
    torch.manual_seed(0)
    net = DGCNN(8, 5, 16, 32).double().eval()
    x = generic_cloud(20, 6)
    with torch.no_grad():
        got = net.edge_conv(x, net.conv1)[0]
        points = x[0].numpy()
        expected = []
        for i in range(20):
            near = np.argsort(np.linalg.norm(points - points[i], axis=1))[:5]
            pairs = torch.cat([x[0, i].expand(5, 3), x[0, near] - x[0, i]], -1)
            expected.append(net.conv1(pairs).amax(0))
    torch.testing.assert_close(got, torch.stack(expected))


def test_to_z_up_is_the_rotation_by_90_degrees_about_x() -> None:
    from repro.papers.parot.data import to_z_up

    points = np.random.default_rng(0).standard_normal((2, 10, 3))
    np.testing.assert_allclose(to_z_up(points), Rotation.from_euler("x", 90, degrees=True).apply(
        points.reshape(-1, 3)).reshape(2, 10, 3), atol=1e-12)
