"""SIE: relative rotations against scipy's conventions and an independent matrix construction, the renderer's
z-buffer and shading, the pentacube classes against scipy's octahedral group, the predictors, the VICReg terms
against numpy, and 3DIEBench reading from files in the real layout."""

import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image
from scipy import stats
from scipy.spatial.transform import Rotation
from sklearn.metrics import r2_score

from repro.core.errors import DataUnavailableError
from repro.papers.sie.data import LISTS, Benchmark, git_blob_id, load_benchmark, read_object_lists, sample_pairs
from repro.papers.sie.models import (
    HypernetworkPredictor,
    MLPPredictor,
    SSLModel,
    build_encoder,
    covariance_penalty,
    variance_hinge,
)
from repro.papers.sie.render import (
    Objects,
    draw_latents,
    pentacube_classes,
    relative_quaternion,
    render,
    surface_points,
)
from repro.papers.sie.task import pooled_r2, pose_error, target_ranks


def elementary(axis: int, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    i, j = (axis + 1) % 3, (axis + 2) % 3  # cyclic: x -> (y, z), y -> (z, x), z -> (x, y)
    m = np.eye(3)
    m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
    return m


def quaternion_of(matrix: np.ndarray) -> np.ndarray:
    """Scalar-last unit quaternion of a rotation matrix (Shepperd's method), sign fixed to w >= 0."""
    w = np.sqrt(max(0.0, 1 + np.trace(matrix))) / 2
    x = np.sqrt(max(0.0, 1 + matrix[0, 0] - matrix[1, 1] - matrix[2, 2])) / 2
    y = np.sqrt(max(0.0, 1 - matrix[0, 0] + matrix[1, 1] - matrix[2, 2])) / 2
    z = np.sqrt(max(0.0, 1 - matrix[0, 0] - matrix[1, 1] + matrix[2, 2])) / 2
    x = np.copysign(x, matrix[2, 1] - matrix[1, 2])
    y = np.copysign(y, matrix[0, 2] - matrix[2, 0])
    z = np.copysign(z, matrix[1, 0] - matrix[0, 1])
    return np.array([x, y, z, w])


def test_extrinsic_xyz_is_z_after_y_after_x() -> None:
    """Lowercase 'xyz' (extrinsic, 3DIEBench's convention) = Rz Ry Rx; intrinsic 'XYZ' = Rx Ry Rz."""
    angles = np.array([0.3, -0.7, 1.1])
    ex, ey, ez = (elementary(k, a) for k, a in enumerate(angles))
    assert np.allclose(Rotation.from_euler("xyz", angles).as_matrix(), ez @ ey @ ex)
    assert np.allclose(Rotation.from_euler("XYZ", angles).as_matrix(), ex @ ey @ ez)
    assert not np.allclose(ez @ ey @ ex, ex @ ey @ ez)


def test_relative_quaternion_is_r1_inverse_r2_from_matrices() -> None:
    rng = np.random.default_rng(0)
    first, second = rng.uniform(-np.pi / 2, np.pi / 2, (2, 20, 3))
    got = relative_quaternion(first, second)
    for a, b, q in zip(first, second, got):
        r1 = elementary(2, a[2]) @ elementary(1, a[1]) @ elementary(0, a[0])
        r2 = elementary(2, b[2]) @ elementary(1, b[1]) @ elementary(0, b[0])
        assert np.allclose(q, quaternion_of(r1.T @ r2), atol=1e-8)
        assert q[3] >= 0 and np.isclose(np.linalg.norm(q), 1)
    # The geodesic angle of the relative rotation is the angle between the two poses.
    angle = 2 * np.arccos(np.clip(got[:, 3], -1, 1))
    expected = (Rotation.from_euler("xyz", first).inv() * Rotation.from_euler("xyz", second)).magnitude()
    assert np.allclose(angle, expected)


def test_relative_rotation_maps_view_one_to_view_two() -> None:
    """R2 = R1 (R1^-1 R2): composing view 1's pose with the relative rotation gives view 2's pose."""
    first, second = np.array([[0.2, 0.4, -0.1]]), np.array([[-1.0, 0.3, 0.9]])
    relative = Rotation.from_quat(relative_quaternion(first, second))
    assert np.allclose((Rotation.from_euler("xyz", first) * relative).as_matrix(),
                       Rotation.from_euler("xyz", second).as_matrix())


def test_pentacubes_have_no_rotational_symmetry_and_are_distinct() -> None:
    """Against scipy's octahedral group (the cube's 24 rotations), independent of render.cube_rotations."""
    group = np.round(Rotation.create_group("O").as_matrix()).astype(int)
    shapes = pentacube_classes(10)

    def key(cubes: np.ndarray) -> tuple:
        return tuple(sorted(map(tuple, (cubes - cubes.min(0)).tolist())))

    keys = []
    for cubes in shapes:
        assert len({tuple(c) for c in cubes}) == 5
        assert all(np.abs(cubes[:, None] - cubes[None]).sum(-1)[i].tolist().count(1) >= 1 for i in range(5))
        assert sum(key(cubes @ g.T) == key(cubes) for g in group) == 1  # only the identity
        keys.append({key(cubes @ g.T) for g in group})
    for i in range(10):
        for j in range(i + 1, 10):
            assert not keys[i] & keys[j], "two classes are rotations of one another"


def test_render_keeps_the_nearest_point_and_shades_by_lambert() -> None:
    """Two points on one pixel: the one nearer the camera (larger z) wins; a normal facing the light gets
    colour x (ambient + 1), one facing away gets colour x ambient."""
    points = np.array([[[0.05, 0.05, 0.0], [0.05, 0.05, 1.0], [1.05, 0.05, 0.5]]])
    normals = np.array([[[0, 0, 1.0], [0, 0, 1.0], [0, 0, -1.0]]])
    colours = np.array([[[1.0, 0, 0], [0, 0.5, 0], [0, 0, 0.5]]])
    objects = Objects(points, normals, colours, np.array([0]))
    latent = np.array([[0, 0, 0, 0.0, 0.0, 0.0]])  # no rotation, light along +z
    image = render(objects, np.array([0]), latent, size=8, pixels_per_unit=1.0, ambient=0.3)[0]
    assert np.allclose(image[3, 4], [0, 0.5 * 1.3, 0])          # the nearer green point, lit head-on
    assert np.allclose(image[3, 5], [0, 0, 0.5 * 0.3])          # facing away: ambient only
    assert np.allclose(image[0, 0], image[7, 7])                # background elsewhere


def test_pairs_are_two_views_of_one_object() -> None:
    latents = np.random.default_rng(1).uniform(-1, 1, (12, 3))
    bench = Benchmark(np.zeros(12, int), np.repeat(np.arange(3), 4), latents, np.ones(3, bool), 4, lambda i: i)
    first, second, quaternion = sample_pairs(np.array([0, 2]), bench, 50, seed=3)
    assert (first // 4 == second // 4).all() and (first != second).all()
    assert set(first // 4) <= {0, 2}
    assert np.allclose(quaternion, relative_quaternion(latents[first], latents[second]))


def test_image_tensor_is_the_nchw_transpose_of_the_loaded_images() -> None:
    images = np.random.default_rng(2).random((5, 4, 6, 3)).astype(np.float32)  # H != W: a swap would show
    bench = Benchmark(np.zeros(5, int), np.arange(5), np.zeros((5, 3)), np.ones(5, bool), 1, lambda i: images[i])
    tensor = bench.image_tensor(np.array([3, 1]), "cpu")
    assert tensor.dtype == torch.float32
    assert torch.equal(tensor, torch.from_numpy(np.ascontiguousarray(images[[3, 1]].transpose(0, 3, 1, 2))))


def test_hypernetwork_weights_are_linear_in_the_quaternion() -> None:
    torch.manual_seed(0)
    predictor = HypernetworkPredictor(6)
    q1, q2, e = torch.randn(3, 4), torch.randn(3, 4), torch.randn(3, 6)

    def matrix(q: torch.Tensor) -> torch.Tensor:  # the official ParametrizedNet: hypernet(q) read as (dim, dim)
        return predictor.hypernet(q).view(-1, 6, 6)

    assert torch.allclose(matrix(q1 + q2), matrix(q1) + matrix(q2), atol=1e-6)
    expected = torch.einsum("bij,bj->bi", matrix(q1), e)   # W(q) e, one matrix per sample
    assert torch.allclose(predictor(e, q1), expected, atol=1e-6)
    assert torch.allclose(predictor(e, q1 + q2), predictor(e, q1) + predictor(e, q2), atol=1e-6)
    assert torch.allclose(predictor(e, torch.zeros(3, 4)), torch.zeros(3, 6))  # no bias: q = 0 -> 0


def test_mlp_predictor_takes_quaternion_then_embedding() -> None:
    torch.manual_seed(0)
    predictor = MLPPredictor(5)
    q, e = torch.randn(2, 4), torch.randn(2, 5)
    assert torch.allclose(predictor(e, q), predictor.linear(torch.cat([q, e], 1)))


def test_vicreg_terms_against_numpy() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(size=(32, 6)) * np.array([0.2, 0.5, 1.0, 2.0, 3.0, 0.1])
    cov = np.cov(z, rowvar=False)                       # normalised by n - 1
    off = cov - np.diag(np.diag(cov))
    expected_cov = (off ** 2).sum() / 6
    expected_var = np.maximum(0, 1 - np.sqrt(z.var(0, ddof=1) + 1e-4)).mean() / 2
    t = torch.from_numpy(z)
    assert covariance_penalty(t).item() == pytest.approx(expected_cov)
    assert variance_hinge(t).item() == pytest.approx(expected_var)


def test_split_sizes_follow_the_official_proportions() -> None:
    coefficients = {"sim": 10.0, "equi_factor": 0.45, "std": 10.0, "cov": 1.0}
    encoder = build_encoder("cnn", [4, 4], 8, 12)
    sie = SSLModel("sie", encoder, 12, 4, [24, 24], coefficients)
    assert (sie.inv, sie.equi) == (8, 4)
    assert sie.projector_inv[-1].out_features == 16 and sie.projector_equi[-1].out_features == 8
    assert sie.predictor.dim == 8
    only = SSLModel("sie_equi_only", build_encoder("cnn", [4, 4], 8, 12), 12, 4, [24, 24], coefficients)
    assert (only.inv, only.equi) == (0, 12) and only.predictor.dim == 24
    vicreg = SSLModel("vicreg", build_encoder("cnn", [4, 4], 8, 12), 12, 4, [24, 24], coefficients)
    assert (vicreg.inv, vicreg.equi) == (12, 0)
    x = torch.rand(6, 3, 8, 8)
    assert torch.isfinite(sie(x, x.flip(0), torch.randn(6, 4)))


def _write_3diebench(root: Path, objects: int, views: int) -> None:
    """<synset>/<object>/image_k.jpg + latent_k.npy (7 floats: angles, floor hue, light theta, phi, hue) and
    the four official list files (unicode object paths, int labels)."""
    rng = np.random.default_rng(0)
    paths = {"train": [], "val": []}
    for split in paths:
        for i in range(objects):
            rel = f"/0269115{i % 2}/{split}{i:04d}/"
            folder = root / rel.strip("/")
            folder.mkdir(parents=True)
            for k in range(views):
                Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(folder / f"image_{k}.jpg")
                np.save(folder / f"latent_{k}.npy", rng.uniform(-1.5, 1.5, 7).astype(np.float32))
            paths[split].append(rel)
        np.save(root / f"{split}_images.npy", np.array(paths[split]))
        np.save(root / f"{split}_labels.npy", np.arange(objects) % 55)


def write_dry_data(data_dir: Path) -> None:
    """5 training and 5 validation objects with 3 views each, in 3DIEBench's layout, where scale=dry reads them."""
    _write_3diebench(data_dir / "3DIEBench", objects=5, views=3)


def test_3diebench_reader_on_files_in_the_real_layout(tmp_path: Path) -> None:
    _write_3diebench(tmp_path / "3DIEBench", objects=3, views=2)
    normalize = {"mean": [0.5, 0.4, 0.3], "std": [0.1, 0.2, 0.3]}
    data = OmegaConf.create({"views": 2, "size": 16, "objects_per_split": None, "normalize": normalize,
                             "list_blobs": None})
    bench = load_benchmark(tmp_path / "3DIEBench", data, seed=0)
    assert bench.count == 12 and bench.train_object.tolist() == [True] * 3 + [False] * 3
    assert bench.label_of.tolist() == [0, 0, 1, 1, 2, 2] * 2
    latent = np.load(tmp_path / "3DIEBench" / "02691150" / "train0000" / "latent_1.npy")
    assert np.allclose(bench.latents[1], latent[:3])
    images = bench.image_tensor(np.array([0, 11]), "cpu")
    assert images.shape == (2, 3, 16, 16)
    # View 11 = the last view of the last validation object, standardised per channel as torchvision's Normalize.
    with Image.open(tmp_path / "3DIEBench" / "02691150" / "val0002" / "image_1.jpg") as image:
        raw = np.asarray(image.convert("RGB").resize((16, 16)), np.float32) / 255
    expected = (raw - np.array(normalize["mean"])) / np.array(normalize["std"])
    assert np.allclose(images[1].permute(1, 2, 0).numpy(), expected, atol=1e-5)


def test_3diebench_missing_lists_say_where_to_get_them(tmp_path: Path) -> None:
    data = OmegaConf.create({"views": 2, "size": 16, "objects_per_split": None, "list_blobs": None})
    with pytest.raises(DataUnavailableError, match="train_images.npy"):
        load_benchmark(tmp_path / "3DIEBench", data, seed=0)


def test_render_rotates_points_and_normals_extrinsically_and_lights_from_theta_phi() -> None:
    """One point p with normal n: it lands at the pixel of R p (R = Rz Ry Rx from elementary matrices, column
    = floor(x ppu + size / 2), row = floor(-y ppu + size / 2)) with colour c (ambient + max(0, R n . l)),
    l = (sin theta cos phi, sin theta sin phi, cos theta)."""
    p, n, c = np.array([1.0, 0.5, 0.2]), np.array([0.6, 0.0, 0.8]), np.array([0.9, 0.6, 0.3])
    angles, theta, phi = np.array([0.5, -0.3, 0.7]), 0.6, 2.0
    objects = Objects(p[None, None], n[None, None], c[None, None], np.array([0]))
    image = render(objects, np.array([0]), np.array([[*angles, 0.0, theta, phi]]), size=16, pixels_per_unit=4.0,
                   ambient=0.3)[0]
    r = elementary(2, angles[2]) @ elementary(1, angles[1]) @ elementary(0, angles[0])
    moved, normal = r @ p, r @ n
    light = np.array([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)])
    row, column = int(np.floor(-moved[1] * 4 + 8)), int(np.floor(moved[0] * 4 + 8))
    assert np.allclose(image[row, column], c * (0.3 + max(0.0, normal @ light)), atol=1e-6)
    background = image[(row + 8) % 16, (column + 8) % 16]
    assert (np.abs(image - background).sum(-1) > 1e-6).sum() == 1  # the point's pixel is the only one drawn


def test_surface_points_lie_on_the_exposed_faces_only() -> None:
    """Each point sits on a face of its cube (offset 1/2 along the normal, within 1/2 across it) whose
    neighbour cell is empty; every exposed face (6 per cube minus 2 per adjacent pair) is sampled."""
    cubes = pentacube_classes(1)[0]
    points, normals, cube = surface_points(cubes, 2000, np.random.default_rng(4))
    local = points + cubes.mean(0) - cubes[cube]
    assert np.allclose((local * normals).sum(1), 0.5)
    assert (np.abs(local * (normals == 0)) <= 0.5 + 1e-12).all()
    occupied = {tuple(v) for v in cubes.tolist()}
    faces = {(int(k), tuple(v)) for k, v in zip(cube, normals.astype(int).tolist())}
    assert all(tuple(np.add(cubes[k], v)) not in occupied for k, v in faces)
    adjacent = int((np.abs(cubes[:, None] - cubes[None]).sum(-1) == 1).sum()) // 2
    assert len(faces) == 6 * len(cubes) - 2 * adjacent


def test_latents_follow_the_3diebench_ranges() -> None:
    latents = draw_latents(3000, np.random.default_rng(5))
    laws = [stats.uniform(-np.pi / 2, np.pi)] * 3 + [stats.uniform(0, 1), stats.uniform(0, np.pi / 4),
                                                      stats.uniform(0, 2 * np.pi)]
    for column, law in zip(latents.T, laws):
        assert stats.kstest(column, law.cdf).pvalue > 1e-3


def _hinge(z: np.ndarray) -> float:
    return float(np.maximum(0, 1 - np.sqrt(z.var(0, ddof=1) + 1e-4)).mean() / 2)


def _covariance(z: np.ndarray) -> float:
    cov = np.cov(z, rowvar=False)
    return float(((cov - np.diag(np.diag(cov))) ** 2).sum() / z.shape[1])


@pytest.mark.parametrize("method,factor", [("sie", 0.45), ("sie_equi_only", 1.0), ("vicreg", None)])
def test_loss_is_the_official_weighted_sum_on_the_concatenated_embedding(method: str, factor: float | None) -> None:
    """10 MSE(inv1, inv2) + factor 10 MSE(W(q) equi1, equi2) + 10 var(W(q) equi1) + 10 (var(z1) + var(z2))
    + (cov(z1) + cov(z2)), z = [inv, equi], with the variance and covariance terms written in numpy."""
    coefficients = {"sim": 10.0, "equi_factor": 0.45, "std": 10.0, "cov": 1.0}
    torch.manual_seed(7)
    model = SSLModel(method, build_encoder("cnn", [4, 4], 8, 12), 12, 4, [24, 24], coefficients).double()
    first, second = torch.rand(2, 16, 3, 8, 8, dtype=torch.float64)
    quaternion = torch.randn(16, 4, dtype=torch.float64)
    with torch.no_grad():
        loss = float(model(first, second, quaternion))
        r1, r2 = model.encoder(first), model.encoder(second)
        expected, z1, z2 = 0.0, [], []
        if model.inv:
            i1, i2 = model.projector_inv(r1[:, :model.inv]).numpy(), model.projector_inv(r2[:, :model.inv]).numpy()
            expected += 10 * ((i1 - i2) ** 2).mean()
            z1, z2 = z1 + [i1], z2 + [i2]
        if model.equi:
            e1, e2 = model.projector_equi(r1[:, model.inv:]), model.projector_equi(r2[:, model.inv:]).numpy()
            predicted = model.predictor(e1, quaternion).numpy()
            expected += factor * 10 * ((predicted - e2) ** 2).mean() + 10 * _hinge(predicted)
            z1, z2 = z1 + [e1.numpy()], z2 + [e2]
    z1, z2 = np.concatenate(z1, 1), np.concatenate(z2, 1)
    expected += 10 * (_hinge(z1) + _hinge(z2)) + _covariance(z1) + _covariance(z2)
    assert loss == pytest.approx(expected, rel=1e-9)


def test_pooled_r2_is_sklearn_on_the_flattened_targets() -> None:
    """The official R^2 (eval_angle_prediction.py) centres on one mean over all components: sklearn's R^2 of the
    flattened arrays; with components of different means it differs from sklearn's uniform average."""
    rng = np.random.default_rng(0)
    target = rng.normal([0.0, 0.0, 0.0, 0.8], [0.3, 0.3, 0.3, 0.1], (200, 4))
    predicted = target + rng.normal(0, 0.1, target.shape)
    assert np.isclose(pooled_r2(target, predicted), r2_score(target.ravel(), predicted.ravel()))
    assert abs(pooled_r2(target, predicted) - r2_score(target, predicted)) > 0.05


def test_target_ranks_use_cosine_similarity() -> None:
    """Ranks against numpy's sort of cosine similarities, with candidates of unequal norms (so that ranking by
    dot product or by Euclidean distance gives other ranks for some pairs)."""
    rng = np.random.default_rng(1)
    predicted = rng.normal(size=(40, 6))
    candidates = rng.normal(size=(40, 7, 6)) * rng.uniform(0.2, 5, (40, 7, 1))
    target = rng.integers(0, 7, 40)
    cosine = np.einsum("pvd,pd->pv", candidates / np.linalg.norm(candidates, axis=-1, keepdims=True),
                       predicted / np.linalg.norm(predicted, axis=-1, keepdims=True))
    expected = 1 + np.argsort(np.argsort(-cosine, 1), 1)[np.arange(40), target]
    ranks = target_ranks(torch.from_numpy(predicted), torch.from_numpy(candidates), torch.from_numpy(target))
    assert ranks.tolist() == expected.tolist()
    euclidean = ((candidates - predicted[:, None]) ** 2).sum(-1)
    assert (1 + np.argsort(np.argsort(euclidean, 1), 1)[np.arange(40), target] != expected).any()
    dot = np.einsum("pvd,pd->pv", candidates, predicted)
    assert (1 + np.argsort(np.argsort(-dot, 1), 1)[np.arange(40), target] != expected).any()


def test_pose_error_is_the_squared_sine_of_half_the_angle_between_poses() -> None:
    """1 - <q, q'>^2 = sin^2(theta / 2), theta the geodesic angle (scipy's magnitude), whatever the signs of q."""
    first, second = Rotation.random(50, random_state=2), Rotation.random(50, random_state=3)
    signs = np.where(np.random.default_rng(4).random((50, 1)) < 0.5, -1.0, 1.0)
    angle = (first.inv() * second).magnitude()
    assert np.allclose(pose_error(first.as_quat() * signs, second.as_quat()), np.sin(angle / 2) ** 2)


def test_official_lists_are_checked_against_their_git_object_ids(tmp_path: Path) -> None:
    """The pinned checksum is git's object id: git_blob_id against `git hash-object`; lists whose ids match load,
    a list whose content differs from the pinned one fails naming the file (before any download is tried)."""
    root = tmp_path / "3DIEBench"
    _write_3diebench(root, objects=2, views=1)
    blobs = {name: subprocess.run(["git", "hash-object", str(root / f"{name}.npy")], capture_output=True, text=True,
                                  check=True).stdout.strip() for name in LISTS}
    assert all(git_blob_id(root / f"{name}.npy") == blob for name, blob in blobs.items())
    train_images, *_ = read_object_lists(root, OmegaConf.create(blobs))
    assert len(train_images) == 2
    np.save(root / "val_labels.npy", np.array([1, 0]))
    with pytest.raises(DataUnavailableError, match="val_labels.npy differs"):
        read_object_lists(root, OmegaConf.create(blobs))
