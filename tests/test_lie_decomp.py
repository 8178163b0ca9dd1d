"""lie_decomp: the polar-decomposition chart of GL+(2) and SL(2) against scipy's polar, expm and logm; the
elements of SL(2) that the chart reaches but the exponential does not; the Haar density in the chart; the
sampler's law; exact rotation equivariance of the group layers; the image warps against scipy.ndimage."""

import io
import math
import zipfile
from pathlib import Path

import numpy as np
import torch
from scipy import io as scipy_io
from scipy import ndimage
from scipy.linalg import expm, logm, polar

from repro.papers.lie_decomp.data import random_warps, read_affnist, warp
from repro.papers.lie_decomp.groups import (
    chart_coordinates,
    compose,
    decompose,
    sample_pair,
    symmetric_from_coordinates,
    traceless,
)
from repro.papers.lie_decomp.groups import polar as our_polar
from repro.papers.lie_decomp.models import (
    GroupConv,
    GroupLayerConfig,
    LiftingConv,
    SineLayer,
    build_model,
    layer_norm_3d,
)

SMALL_MODEL = {"width": 3, "samples": 4, "kernel_size": 5, "siren_hidden": 8, "siren_layers": 2, "siren_w0": 10.0,
               "siren_first_w0": 10.0, "spd_variance": 0.1, "rotation_bound": 1.0, "head_hidden": 8,
               "dropout": 0.3, "cnn_width": 3}


def write_dry_data(data_dir: Path) -> None:
    """affNIST's three .mat archives (affNISTdata: image 1600 x n uint8, label_int) and homNIST_test.mat
    (img_data n x 40 x 40, labels, hom_matrices 9 x n), with random digit-like blobs, where the loaders look."""
    rng = np.random.default_rng(0)

    def images(n: int) -> np.ndarray:
        canvas = np.zeros((n, 40, 40), dtype=np.uint8)
        canvas[:, 12:28, 14:26] = rng.integers(0, 256, (n, 16, 12))
        return canvas

    for folder, name, n in (("just_centered", "training.mat", 120), ("just_centered", "test.mat", 40),
                            ("transformed", "test.mat", 80)):
        buffer = io.BytesIO()
        pixels = images(n).reshape(n, 1600).T  # the loader reads the transpose back row-major
        scipy_io.savemat(buffer, {"affNISTdata": {"image": pixels, "label_int": np.arange(n) % 10}})
        (data_dir / "affnist" / folder).mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(data_dir / "affnist" / folder / f"{name}.zip", "w") as archive:
            archive.writestr(name, buffer.getvalue())
    (data_dir / "homNIST").mkdir(parents=True, exist_ok=True)
    scipy_io.savemat(data_dir / "homNIST" / "homNIST_test.mat",
                     {"img_data": images(40).astype(np.float64) / 255, "labels": np.arange(40) % 10,
                      "hom_matrices": np.tile(np.eye(3).reshape(9, 1), (1, 40))})


def random_gl2_plus(count: int, seed: int) -> np.ndarray:
    a = np.random.default_rng(seed).standard_normal((count, 2, 2))
    a[np.linalg.det(a) < 0, :, 0] *= -1  # flip a column: positive determinant
    return a


def test_polar_factors_match_scipy() -> None:
    for a in random_gl2_plus(20, 0):
        rotation_ref, spd_ref = polar(a, side="left")
        p, r = our_polar(torch.tensor(a, dtype=torch.float64))
        assert np.allclose(p.numpy(), spd_ref, atol=1e-10) and np.allclose(r.numpy(), rotation_ref, atol=1e-10)
        assert np.allclose((p @ r).numpy(), a, atol=1e-10)


def test_chart_round_trips_and_its_spd_factor_is_expm_of_a_symmetric_matrix() -> None:
    g = torch.tensor(random_gl2_plus(20, 1), dtype=torch.float64)
    x, theta = decompose(g)
    assert torch.allclose(x, x.transpose(-1, -2)) and torch.allclose(compose(x, theta), g, atol=1e-10)
    for xi, gi in zip(x.numpy(), g.numpy()):
        spd = expm(xi)
        assert np.allclose(spd @ spd.T, gi @ gi.T, atol=1e-10)  # (exp X)^2 = g g^T
        assert np.allclose(logm(spd).real, xi, atol=1e-8)


def test_sl2_chart_keeps_determinant_one() -> None:
    x = traceless(torch.randn(30, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2)))
    x = 0.5 * (x + x.transpose(-1, -2))
    g = compose(x, torch.linspace(-3, 3, 30, dtype=torch.float64))
    assert torch.allclose(torch.linalg.det(g), torch.ones(30, dtype=torch.float64))


def test_the_chart_reaches_an_element_outside_the_image_of_exp() -> None:
    g = np.diag([-2.0, -0.5])
    # no real logarithm: scipy's principal logm is complex, and a real X in sl(2) has exp(X) with positive
    # eigenvalues or eigenvalues on the unit circle or trace >= -2 (trace(g) = -2.5 < -2)
    assert np.abs(logm(g).imag).max() > 1.0
    x, theta = decompose(torch.tensor(g))
    assert np.allclose(x.numpy(), np.diag([np.log(2.0), -np.log(2.0)]), atol=1e-12)
    assert np.isclose(abs(float(theta)), np.pi)
    assert np.allclose(compose(x, theta).numpy(), g, atol=1e-12)
    # the traces of exp(X) over a grid of X in sl(2) never go below -2
    grid = np.linspace(-3, 3, 7)
    traces = [np.trace(expm(np.array([[a, b + c], [b - c, -a]]))) for a in grid for b in grid for c in grid]
    assert min(traces) >= -2 - 1e-9


def haar_density_in_chart(coords: torch.Tensor, group: str) -> float:
    """|det| of u -> g^-1 dg/du (the Maurer-Cartan form, i.e. Haar |det g|^-2 dg on GL+(2)) at chart point u."""
    def chart(u: torch.Tensor) -> torch.Tensor:
        return compose(symmetric_from_coordinates(u[:-1], group), u[-1])

    jacobian = torch.autograd.functional.jacobian(chart, coords)  # (2, 2, d)
    forms = torch.linalg.inv(chart(coords)) @ jacobian.permute(2, 0, 1)  # g^-1 dg/du_k, (d, 2, 2)
    entries = forms.reshape(len(coords), 4)
    if group == "sl2":  # traceless: the (0,0), (0,1), (1,0) entries are coordinates of sl(2)
        entries = entries[:, :3]
    return float(torch.linalg.det(entries).abs())


def test_haar_measure_is_the_product_of_the_factor_measures() -> None:
    # In the chart (X, theta) the Haar measure is dmu(X) dtheta with dmu the GL-invariant measure of SPD(2) in
    # log coordinates, density sinh(d)/d in the eigenvalue gap d of X: independent of theta.
    rng = np.random.default_rng(4)
    for group, dim in (("gl2", 3), ("sl2", 2)):
        ratios = []
        for _ in range(12):
            coords = torch.tensor(np.append(rng.normal(0, 0.8, dim), rng.uniform(-np.pi, np.pi)))
            gap = np.ptp(np.linalg.eigvalsh(symmetric_from_coordinates(coords[:-1], group).numpy()))
            ratios.append(haar_density_in_chart(coords, group) / (np.sinh(gap) / gap))
        assert np.std(ratios) < 1e-8 * np.mean(ratios), (group, ratios)


def test_sampler_pairs_are_inverse_and_follow_the_reference_law() -> None:
    torch.manual_seed(5)
    for group in ("so2", "sl2", "gl2"):
        g, g_inverse = sample_pair(group, 8, 0.1, 1.0)
        assert torch.allclose(g @ g_inverse, torch.eye(2).expand(8, 2, 2), atol=1e-5)
    g, _ = sample_pair("sl2", 4, 0.1, 1.0)
    assert torch.allclose(torch.linalg.det(g), torch.ones(4), atol=1e-5)
    # the rotation factors sit on linspace(-pi, pi, n) (both ends the same rotation, as in the reference)
    assert torch.allclose(decompose(g.double())[1].abs(), torch.tensor([np.pi, np.pi / 3, np.pi / 3, np.pi],
                          dtype=torch.float64), atol=1e-5)
    # the SPD factor is S^{1/2} with log S ~ N(0, 0.1) per coordinate: log of the factor has variance 0.1 / 4
    g, _ = sample_pair("gl2", 20000, 0.1, 1.0)
    x = decompose(g.double())[0]
    assert abs(float(x[:, 0, 0].var()) - 0.025) < 0.002
    assert abs(float((math.sqrt(2) * x[:, 0, 1]).var()) - 0.025) < 0.002


def test_chart_coordinates_read_the_factors() -> None:
    x = symmetric_from_coordinates(torch.tensor([0.3, -0.2], dtype=torch.float64), "sl2")
    coords = chart_coordinates(compose(x, torch.tensor(-1.0, dtype=torch.float64)), "sl2")
    assert torch.allclose(coords, torch.tensor([math.sqrt(2) * x[0, 1], 2 * math.pi - 1.0, math.sqrt(2) * x[0, 0]],
                                               dtype=torch.float64))
    assert torch.equal(chart_coordinates(torch.eye(2), "gl2"), torch.zeros(4))  # identity: angle 0, not 2 pi


def test_so2_network_is_invariant_to_quarter_turns() -> None:
    # C4 samples: rotating the input by 90 degrees permutes the sample axis cyclically, and the global max
    # over samples and space makes the logits invariant (exact up to float rounding in the SIREN kernels)
    torch.manual_seed(6)
    model = build_model("so2", SMALL_MODEL).eval()
    image = torch.randn(2, 1, 24, 24)
    _, g_inverse = sample_pair("so2", 4, 0.1, 1.0)  # rotations by 0, 90, 180, 270 degrees
    with torch.no_grad():
        lifted = model.stem(image, g_inverse)
        lifted_turned = model.stem(torch.rot90(image, 1, (2, 3)), g_inverse)
        logits, logits_turned = model(image), model(torch.rot90(image, 1, (2, 3)))
    shifted = torch.rot90(torch.roll(lifted, -1, dims=2), 1, (3, 4))
    assert torch.allclose(lifted_turned, shifted, atol=1e-4) or torch.allclose(
        lifted_turned, torch.rot90(torch.roll(lifted, 1, dims=2), 1, (3, 4)), atol=1e-4)
    assert torch.allclose(logits, logits_turned, atol=1e-3)
    cnn_logits = build_model("cnn", SMALL_MODEL).eval()
    with torch.no_grad():  # the plain CNN is not: the test can tell the two apart
        assert not torch.allclose(cnn_logits(image), cnn_logits(torch.rot90(image, 1, (2, 3))), atol=1e-3)


def test_warp_matches_scipy_ndimage_and_moves_ink_where_h_sends_it() -> None:
    rng = np.random.default_rng(7)
    image = np.zeros((24, 24), dtype=np.float32)
    image[6:18, 8:16] = rng.random((12, 8))
    theta, shear, sx, sy = 0.3, 0.15, 1.1, 0.9
    linear = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]]) @ np.array(
        [[1, shear], [0, 1]]) @ np.diag([sx, sy])
    h = np.eye(3)
    h[:2, :2], h[:2, 2] = linear, [1.5, -2.0]
    ours = warp(torch.tensor(image)[None, None], torch.tensor(h, dtype=torch.float32)[None])[0, 0].numpy()
    # scipy reads the input at matrix @ (row, col) + offset; in centred (x, y) = (col, row) - 11.5 that is H^-1
    inverse = np.linalg.inv(h)
    swap = np.array([[0, 1], [1, 0]])
    matrix = swap @ inverse[:2, :2] @ swap
    centre = np.array([11.5, 11.5])
    offset = centre + swap @ inverse[:2, 2] - matrix @ centre
    reference = ndimage.affine_transform(image, matrix, offset=offset, order=1, mode="grid-constant", cval=0.0)
    assert np.abs(ours - reference).max() < 1e-4
    shift = np.eye(3)
    shift[0, 2] = 3.0  # +3 pixels in x: ink moves 3 columns right
    moved = warp(torch.tensor(image)[None, None], torch.tensor(shift, dtype=torch.float32)[None])[0, 0].numpy()
    assert np.allclose(moved[:, 3:], image[:, :-3], atol=1e-5)


def test_random_warps_keep_the_ink_on_the_canvas() -> None:
    images = torch.zeros(200, 1, 24, 24)
    images[:, :, 4:20, 4:20] = 1.0
    ranges = {"rotation_deg": 20.0, "shear": 0.2, "scale": [0.8, 1.2], "translation": 4.0}
    matrices = random_warps(images, ranges, 0.0, torch.Generator().manual_seed(8))
    warped = warp(images, matrices)
    kept = warped.sum((1, 2, 3)) / (256 * torch.linalg.det(matrices[:, :2, :2]))
    assert kept.min() > 0.97  # the whole ink square (mass 256 |det|) is still on the canvas
    assert matrices[:, :2, 2].abs().max() <= 4.0 and matrices[:, :2, 2].std() > 0.5


def test_affnist_reader_reads_the_dry_files_and_rejects_bad_labels(tmp_path) -> None:
    write_dry_data(tmp_path)
    with zipfile.ZipFile(tmp_path / "affnist" / "transformed" / "test.mat.zip") as archive:
        (tmp_path / "test.mat").write_bytes(archive.read("test.mat"))
    images, labels = read_affnist(tmp_path / "test.mat")
    assert images.shape == (80, 1, 40, 40) and images.dtype == torch.uint8 and labels.max() == 9
    assert images[:, 0, :12].sum() == 0 and images[:, 0, 12:28, 14:26].sum() > 0  # the blob where it was drawn
    scipy_io.savemat(tmp_path / "bad.mat", {"affNISTdata": {"image": np.zeros((1600, 3), np.uint8),
                                                            "label_int": np.array([0, 1, 12])}})
    try:
        read_affnist(tmp_path / "bad.mat")
    except Exception as error:
        assert "0..9" in str(error)
    else:
        raise AssertionError("a label of 12 was accepted")


def test_chart_bases_are_orthonormal_in_the_trace_metric() -> None:
    for group, dim in (("sl2", 2), ("gl2", 3)):
        basis = symmetric_from_coordinates(torch.eye(dim, dtype=torch.float64), group)
        gram = torch.einsum("aij,bij->ab", basis, basis)  # <X, Y> = tr(X^T Y)
        assert torch.allclose(gram, torch.eye(dim, dtype=torch.float64), atol=1e-15), group


# R maps centred pixel coordinates (x, y) = (column, row) to (y, -x): torch.rot90(image, 1, (-2, -1)) sends the
# pixel at u to R u, so the turned image is I(R^-1 u).
QUARTER = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])


def test_lifting_and_group_convolution_commute_with_quarter_turns_on_sl2_and_gl2() -> None:
    """With the group samples moved along, f(g, x) = sum_y k(g^-1 (y - x)) I(y) gives
    lift(I o R^-1, samples g) = lift(I, samples R^-1 g) o R^-1, and the group convolution (kernel read at
    (g_out^-1 offsets, xi^-1(g_out^-1 g_in))) gives conv(f o R^-1, R g_in, R g_out) = conv(f, g_in, g_out) o R^-1,
    exactly: the quarter turn maps the pixel grid and the 5 x 5 offsets onto themselves."""
    torch.manual_seed(10)
    for group in ("sl2", "gl2"):
        model = build_model(group, SMALL_MODEL).eval()
        g, g_inverse = sample_pair(group, 3, 0.3, 0.5)
        image = torch.randn(1, 1, 14, 14)
        with torch.no_grad():
            lifted = model.stem(image, g_inverse @ QUARTER)
            turned = model.stem(torch.rot90(image, 1, (2, 3)), g_inverse)
            assert torch.allclose(turned, torch.rot90(lifted, 1, (3, 4)), atol=1e-5), group
            features = torch.randn(1, 3, 3, 10, 10)
            g_out, g_out_inverse = sample_pair(group, 3, 0.3, 0.5)
            conv = model.block_conv1(features, g, g_out_inverse)
            conv_turned = model.block_conv1(torch.rot90(features, 1, (3, 4)), QUARTER @ g,
                                            g_out_inverse @ QUARTER.T)
            assert torch.allclose(conv_turned, torch.rot90(conv, 1, (3, 4)), atol=1e-5), group


class ConstantKernel(torch.nn.Module):
    def forward(self, points: torch.Tensor) -> torch.Tensor:
        return torch.ones(*points.shape[:-1], 1, dtype=points.dtype)


def test_gl2_layers_carry_the_haar_factors_and_the_soft_disc() -> None:
    """With the kernel k = 1 and a unit impulse, GL+(2) at g = 2 I: the lift returns |det g^-1| m(g^-1 u) and the
    group convolution (g_in = g_out = 2 I, so xi^-1(g_out^-1 g_in) = 0) m(g_out^-1 u) / |det g_in|, with the soft
    disc m(p) = sigmoid(2 (1 - |p|)) over the 5 x 5 offsets u at pixel centres of [-1, 1]^2."""
    spec = GroupLayerConfig("gl2", 5, 8, 2, 10.0, 10.0)
    lift, conv = LiftingConv(spec, 1, 1), GroupConv(spec, 1, 1, padding=0)
    lift.kernel = conv.kernel = ConstantKernel()
    centres = np.array([-0.8, -0.4, 0.0, 0.4, 0.8])
    radius = np.hypot(*np.meshgrid(centres, centres))
    disc = 1 / (1 + np.exp(-2 * (1 - 0.5 * radius)))
    impulse = torch.zeros(1, 1, 9, 9)
    impulse[..., 4, 4] = 1.0
    half, double = 0.5 * torch.eye(2)[None], 2 * torch.eye(2)[None]
    with torch.no_grad():
        lifted = lift(impulse, half)[0, 0, 0].numpy()
        convolved = conv(impulse[:, :, None], double, half)[0, 0, 0].numpy()
    assert np.allclose(lifted, 0.25 * disc, atol=1e-6)
    assert np.allclose(convolved, disc / 4, atol=1e-6)


def test_layernorm3d_normalises_over_channels_samples_and_space() -> None:
    x = torch.randn(2, 3, 4, 5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(11))
    a = x.numpy()
    mean, var = a.mean(axis=(1, 2, 3, 4), keepdims=True), a.var(axis=(1, 2, 3, 4), keepdims=True)
    assert np.allclose(layer_norm_3d(x).numpy(), (a - mean) / np.sqrt(var + 1e-5), atol=1e-10)


def test_siren_layers_are_sines_of_w0_times_affine_maps_with_siren_initialisation() -> None:
    torch.manual_seed(12)
    first, hidden = SineLayer(20, 400, 10.0, first=True), SineLayer(20, 400, 10.0, first=False)
    for layer, bound in ((first, 1 / 20), (hidden, math.sqrt(6 / 20) / 10.0)):
        weight = layer.linear.weight.detach().numpy()
        assert weight.max() <= bound and weight.min() >= -bound and np.abs(weight).max() > 0.98 * bound
    assert torch.equal(hidden.linear.bias, torch.zeros(400))
    x = torch.randn(3, 20)
    w, b = first.linear.weight.detach().numpy(), first.linear.bias.detach().numpy()
    assert np.allclose(first(x).detach().numpy(), np.sin(10.0 * (x.numpy() @ w.T + b)), atol=1e-5)


def test_random_warp_linear_part_is_rotation_shear_scale_in_that_order() -> None:
    images = torch.zeros(6, 1, 24, 24)
    images[:, :, 8:16, 8:16] = 1.0
    ranges = {"rotation_deg": 20.0, "shear": 0.2, "scale": [0.8, 1.2], "translation": 4.0}
    matrices = random_warps(images, ranges, 0.0, torch.Generator().manual_seed(13))
    draws = torch.Generator().manual_seed(13)  # the same uniform draws, in the order theta, s, (sx, sy)
    theta = (-1 + 2 * torch.rand(6, generator=draws).double().numpy()) * math.radians(20.0)
    shear = -0.2 + 0.4 * torch.rand(6, generator=draws).double().numpy()
    scales = 0.8 + 0.4 * torch.rand(6, 2, generator=draws).double().numpy()
    for m, t, s, (sx, sy) in zip(matrices.numpy(), theta, shear, scales):
        expected = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]) @ np.array([[1, s], [0, 1]]) @ \
            np.diag([sx, sy])
        assert np.allclose(m[:2, :2], expected, atol=1e-6) and np.allclose(m[2], [0, 0, 1])
