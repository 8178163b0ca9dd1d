"""enf2enf: the potential-flow generator against independent oracles (Kutta-Joukowski lift from the integrated
surface pressure, zero pressure drag, the stagnation point, the Kutta condition, the complex potential, the far
field), the signed distance against a k-d tree, the ENF's exact translation equivariance, the Meta-SGD inner loop,
and the AirfRANS loader on files written in PyTorch Geometric's raw format."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.path import Path as PolygonPath
from omegaconf import OmegaConf
from scipy.spatial import cKDTree

from repro.core.errors import DataUnavailableError
from repro.papers.enf2enf import data as data_module
from repro.papers.enf2enf.data import airfrans_splits, joukowski_fields, joukowski_splits
from repro.papers.enf2enf.joukowski import (
    CUSP_EXCLUSION,
    Airfoil,
    drag_from_pressure,
    lift_from_pressure,
    signed_distance,
)
from repro.papers.enf2enf.models import (
    EquivariantCrossAttention,
    EquivariantNeuralField,
    ModulatedFourierField,
    fit_latents,
)
from repro.papers.enf2enf.task import Normalizer, RangeScaler, Shapes, Surrogate, relative_l2

FOILS = [Airfoil(0.05, 0.0, np.deg2rad(-4.0)), Airfoil(0.1, 0.05, np.deg2rad(6.0)),
         Airfoil(0.15, 0.1, np.deg2rad(10.0))]
COUNT = 256


def surface_zeta(foil: Airfoil, count: int = COUNT) -> np.ndarray:
    return foil.mu + foil.radius * np.exp(1j * foil.surface_angles(count))


@pytest.mark.parametrize("foil", FOILS)
def test_lift_from_integrated_pressure_matches_kutta_joukowski(foil: Airfoil) -> None:
    """-closed-integral Cp n ds, projected normal to the free stream, equals 2 Gamma / c; its drag part is zero."""
    cp = foil.pressure(surface_zeta(foil))
    exact = 8 * np.pi * foil.radius * np.sin(foil.alpha + foil.beta) / foil.chord(COUNT)
    assert lift_from_pressure(cp, foil, COUNT) == pytest.approx(exact, rel=1e-9)
    assert abs(drag_from_pressure(cp, foil, COUNT)) < 1e-9 * abs(exact) + 1e-12


@pytest.mark.parametrize("foil", FOILS)
def test_kutta_condition_and_stagnation_point(foil: Airfoil) -> None:
    # Kutta: the circle-plane velocity vanishes at zeta = 1, the image of the cusped trailing edge ...
    assert abs(foil.circle_velocity(np.array([1.0 + 0j]))[0]) < 1e-12
    # ... so the airfoil-plane velocity stays finite there: upper and lower surfaces leave the cusp with the same
    # velocity, w'(1) / 2 by l'Hopital (w'(zeta) = 2 R^2 e^{i alpha} / r^3 - i Gamma / (2 pi r^2), r = zeta - mu)
    r = 1 - foil.mu
    limit = (2 * foil.radius**2 * np.exp(1j * foil.alpha) / r**3 - 1j * foil.circulation / (2 * np.pi * r**2)) / 2
    for side in (+1, -1):
        zeta = foil.mu + foil.radius * np.exp(1j * (-foil.beta + side * 1e-5))
        assert foil.velocity(np.array([zeta]))[0] == pytest.approx(limit, abs=1e-4)
    # leading stagnation point: Cp = 1 exactly
    zeta_s = foil.mu + foil.radius * np.exp(1j * foil.stagnation_angle())
    assert foil.pressure(np.array([zeta_s]))[0] == pytest.approx(1.0, abs=1e-12)
    # far field: |u - iv| -> U = 1
    far = foil.velocity(np.array([1e5 * np.exp(0.3j)]))[0]
    assert abs(far) == pytest.approx(1.0, abs=1e-4)


def test_velocity_is_the_derivative_of_the_complex_potential_and_tangent_to_the_wall() -> None:
    foil = FOILS[1]
    potential = lambda z: (np.exp(-1j * foil.alpha) * (z - foil.mu) + foil.radius**2 * np.exp(1j * foil.alpha)  # noqa: E731
                           / (z - foil.mu) + 1j * foil.circulation / (2 * np.pi) * np.log(z - foil.mu))
    zeta = np.array([2.5 + 0.7j, -1.8 - 1.1j, 0.3 + 2.0j])
    h = 1e-6
    numeric = (potential(zeta + h) - potential(zeta - h)) / (2 * h)
    np.testing.assert_allclose(foil.circle_velocity(zeta), numeric, rtol=1e-7)
    # the wall is a streamline: (u - iv) dz/dtheta is real on the surface
    angles = foil.surface_angles(COUNT)
    on_wall = surface_zeta(foil)
    tangent = (1 - 1 / on_wall**2) * 1j * foil.radius * np.exp(1j * angles)
    flux = foil.velocity(on_wall) * tangent
    assert np.abs(flux.imag).max() < 1e-10 * np.abs(flux).max()


def test_signed_distance_against_kdtree_and_point_in_polygon() -> None:
    foil = FOILS[2]
    polyline = foil.surface(COUNT)
    rng = np.random.default_rng(0)
    points = rng.uniform(-3, 3, 400) + 1j * rng.uniform(-1.5, 1.5, 400)
    # oracle: nearest of a 200-times refined polyline (cKDTree), sign from matplotlib's point-in-polygon
    t = np.linspace(0, 1, 200, endpoint=False)
    dense = (polyline[:, None] + t * (np.roll(polyline, -1) - polyline)[:, None]).ravel()
    distance, _ = cKDTree(np.stack([dense.real, dense.imag], 1)).query(np.stack([points.real, points.imag], 1))
    inside = PolygonPath(np.stack([polyline.real, polyline.imag], 1)).contains_points(
        np.stack([points.real, points.imag], 1))
    expected = np.where(inside, -distance, distance)
    sdf = signed_distance(points, polyline)
    np.testing.assert_allclose(sdf, expected, atol=5e-4)
    assert (sdf < 0).any() and (sdf > 0).any()


def small_config(**overrides: object) -> OmegaConf:
    base = dict(train=3, val=1, test=2, ood=1, points=200, resolutions=[64], resolution_shapes=1, surface_points=64,
                a_range=[0.05, 0.15], ood_a_range=[0.15, 0.2], b_range=[0.0, 0.1], alpha_deg=[-4.0, 10.0],
                s_range=[0.005, 3.0], cp_clip=[-6.0, 1.0], coordinate_scale=0.25)
    return OmegaConf.create({**base, **overrides})


def test_generated_samples_are_outside_the_body_off_the_cusp_and_exact() -> None:
    cfg = small_config()
    splits = joukowski_splits(cfg, seed=3)
    assert {len(v) for v in splits.values()} >= {1, 2, 3}
    for sample in splits["train"] + splits["ood"]:
        foil = sample["foil"]
        z = (sample["coords"][:, 0] + 1j * sample["coords"][:, 1]) / cfg.coordinate_scale
        # invert z = zeta + 1/zeta on the root outside the circle, then check the stored fields are the exact ones
        roots = np.stack([(z + np.sqrt(z - 2) * np.sqrt(z + 2)) / 2, (z - np.sqrt(z - 2) * np.sqrt(z + 2)) / 2])
        zeta = np.where(np.abs(roots[0] - foil.mu) > np.abs(roots[1] - foil.mu), roots[0], roots[1])
        assert (np.abs(zeta - foil.mu) >= foil.radius * (1 + 0.004)).all()
        assert (np.abs(zeta - 1) >= CUSP_EXCLUSION * 0.999).all()
        velocity = foil.velocity(zeta)
        np.testing.assert_allclose(sample["target"][:, 1], velocity.real, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(sample["target"][:, 0], np.clip(1 - np.abs(velocity) ** 2, -6, 1), atol=1e-3)
        assert (sample["sdf"] > -0.01).all()
    ood_a = [s["foil"].a for s in splits["ood"]]
    assert min(ood_a) >= 0.15


def enf(self_layers: int = 1) -> EquivariantNeuralField:
    torch.manual_seed(0)
    return EquivariantNeuralField(4, 16, 2, self_layers, 3, (1.0, 0.5), 3, [[-0.6, 0.6], [-0.3, 0.3]], True).double()


def test_enf_is_exactly_translation_equivariant() -> None:
    """Shifting the queries and the whole latent point cloud together leaves the field unchanged (it sees only
    x - p_i); shifting the queries alone does not."""
    field = enf()
    x, a = torch.rand(2, 50, 2, dtype=torch.float64), torch.randn(2, 9, 4, dtype=torch.float64)
    shift = torch.tensor([0.37, -1.2], dtype=torch.float64)
    reference = field(x, a)
    moved = field(x + shift, a, positions=field.positions + shift)
    torch.testing.assert_close(moved, reference, rtol=1e-10, atol=1e-12)
    assert (field(x + shift, a) - reference).abs().max() > 1e-3
    # the global-latent field reads absolute coordinates: no such symmetry
    torch.manual_seed(0)
    baseline = ModulatedFourierField(8, 16, 2, 3, 8, 0.5).double()
    code = torch.randn(2, 8, dtype=torch.float64)
    assert (baseline(x + shift, code) - baseline(x, code)).abs().max() > 1e-3


def test_enf_locality_a_far_latent_barely_matters() -> None:
    """The Gaussian window makes a latent's influence decay with distance: changing the context of the latent
    farthest from a query moves that query's output much less than changing the nearest one."""
    field = enf(self_layers=0)
    x = torch.tensor([[[-0.6, -0.3]]], dtype=torch.float64)  # on the first grid latent
    a = torch.randn(1, 9, 4, dtype=torch.float64)
    nearest, farthest = a.clone(), a.clone()
    nearest[0, 0] += 1.0
    farthest[0, 8] += 1.0
    base = field(x, a)
    assert (field(x, farthest) - base).abs().max() < 0.2 * (field(x, nearest) - base).abs().max()


def test_meta_sgd_inner_loop_fits_and_differentiates_through_its_steps() -> None:
    torch.manual_seed(0)
    field = EquivariantNeuralField(4, 16, 1, 0, 1, (1.0, 1.0), 3, [[-0.6, 0.6], [-0.3, 0.3]], False)
    coords = torch.rand(2, 64, 2) - 0.5
    target = coords.norm(dim=-1, keepdim=True) - 0.2  # a circle's SDF
    init = torch.ones(9, 4)
    step_sizes = torch.full((4,), 0.5, requires_grad=True)
    inner = [(coords, target)] * 3
    before = (field(coords, init.expand(2, 9, 4)) - target).pow(2).mean()
    latents = fit_latents(field, init, step_sizes, inner, second_order=True)
    after = (field(coords, latents) - target).pow(2).mean()
    assert after < before
    (gradient,) = torch.autograd.grad(after, step_sizes)
    assert gradient.abs().sum() > 0  # the outer loss reaches the Meta-SGD step sizes through the inner steps
    first_order = fit_latents(field, init, step_sizes.detach(), inner, second_order=False)
    torch.testing.assert_close(first_order, latents.detach())


# ---- AirfRANS in PyTorch Geometric's raw format ----------------------------------------------------------------

def naca0012(count: int) -> np.ndarray:
    x = (1 - np.cos(np.linspace(0, np.pi, count // 2))) / 2
    thickness = 0.6 * (0.2969 * np.sqrt(x) - 0.126 * x - 0.3516 * x**2 + 0.2843 * x**3 - 0.1036 * x**4)
    upper, lower = x[::-1] + 1j * thickness[::-1], x[1:-1] - 1j * thickness[1:-1]
    return np.concatenate([upper, lower])


def airfrans_simulation(rng: np.random.Generator, nodes: int = 400) -> dict:
    """One simulation: mesh nodes outside a NACA 0012 plus its surface nodes, inlet velocity, SDF, normals,
    smooth fields (u, v, p, nu_t)."""
    polyline = naca0012(80)
    volume = rng.uniform(-2, 4, 4 * nodes) + 1j * rng.uniform(-1.5, 1.5, 4 * nodes)
    volume = volume[signed_distance(volume, polyline) > 1e-3][: nodes - polyline.size]
    points = np.concatenate([polyline, volume])
    surf = np.arange(points.size) < polyline.size
    speed, angle = rng.uniform(30, 90), np.deg2rad(rng.uniform(-5, 15))
    sdf = np.where(surf, 0.0, signed_distance(points, polyline))
    tangent = np.roll(polyline, -1) - np.roll(polyline, 1)
    normal = np.where(surf, np.concatenate([-1j * tangent / np.abs(tangent), np.zeros(volume.size)]), 0)
    u = speed * np.cos(angle) * (1 - np.exp(-20 * sdf))
    v = speed * np.sin(angle) * (1 - np.exp(-20 * sdf))
    p = 0.5 * speed**2 * (1 - (u**2 + v**2) / speed**2)
    x = np.stack([np.full(points.size, speed * np.cos(angle)), np.full(points.size, speed * np.sin(angle)), sdf,
                  normal.real, normal.imag], 1)
    y = np.stack([u, v, p, 1e-4 * np.exp(-sdf)], 1)
    return {"pos": torch.tensor(np.stack([points.real, points.imag], 1), dtype=torch.float32),
            "x": torch.tensor(x, dtype=torch.float32), "y": torch.tensor(y, dtype=torch.float32),
            "surf": torch.tensor(surf)}


def write_dry_data(data_dir: Path, train: int = 10, test: int = 4) -> None:
    """data/airfrans/AirfRANS.pt (a list of per-simulation dicts of tensors) and manifest.json, as in the archive."""
    root = Path(data_dir) / "airfrans"
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    train_names = [f"airFoil2D_SST_{50 + i}.0_{i}.0_0.0_0.0_12.0" for i in range(train)]
    test_names = [f"airFoil2D_SST_{70 + i}.0_{i}.5_0.0_0.0_12.0" for i in range(test)]
    torch.save([airfrans_simulation(rng) for _ in train_names + test_names], root / "AirfRANS.pt")
    manifest = {"full_train": train_names, "full_test": test_names, "scarce_train": train_names[:2],
                "reynolds_train": train_names, "reynolds_test": test_names, "aoa_train": train_names,
                "aoa_test": test_names}
    (root / "manifest.json").write_text(json.dumps(manifest))


def test_airfrans_loader_reads_the_raw_format(tmp_path: Path) -> None:
    write_dry_data(tmp_path)
    splits = airfrans_splits(tmp_path / "airfrans", "full", 0.1, None)
    assert [len(splits[k]) for k in ("train", "val", "test")] == [9, 1, 4]
    sample = splits["test"][0]
    assert sample["coords"].shape[1] == 2 and sample["target"].shape[1] == 4 and sample["cond"].shape == (2,)
    assert sample["on_surface"].sum() == naca0012(80).size and np.all(sample["sdf"][sample["on_surface"]] == 0)
    assert len(airfrans_splits(tmp_path / "airfrans", "scarce", 0.5, None)["test"]) == 4


def test_airfrans_loader_rejects_bad_files_and_fails_offline(tmp_path: Path, monkeypatch) -> None:
    write_dry_data(tmp_path, train=3, test=1)
    root = tmp_path / "airfrans"
    simulations = torch.load(root / "AirfRANS.pt", weights_only=True)
    simulations[1]["y"][0, 2] = float("nan")
    torch.save(simulations, root / "AirfRANS.pt")
    with pytest.raises(DataUnavailableError, match="NaN"):
        airfrans_splits(root, "full", 0.1, None)
    simulations[1]["y"] = simulations[1]["y"][:, :3]
    torch.save(simulations, root / "AirfRANS.pt")
    with pytest.raises(DataUnavailableError, match="shape"):
        airfrans_splits(root, "full", 0.1, None)
    monkeypatch.setattr(data_module, "AIRFRANS_URL", "file:///nonexistent/AirfRANS.zip")
    with pytest.raises(DataUnavailableError, match="cannot download"):
        airfrans_splits(tmp_path / "empty", "full", 0.1, None)


def outer_root(z: np.ndarray, foil: Airfoil) -> np.ndarray:
    """The inverse of z = zeta + 1/zeta on the branch outside the circle."""
    roots = np.stack([(z + np.sqrt(z - 2) * np.sqrt(z + 2)) / 2, (z - np.sqrt(z - 2) * np.sqrt(z + 2)) / 2])
    return np.where(np.abs(roots[0] - foil.mu) > np.abs(roots[1] - foil.mu), roots[0], roots[1])


def test_stored_velocity_is_the_airfoil_plane_derivative_of_the_potential() -> None:
    """u - iv = dF/dz in the airfoil plane: F(zeta(z)) differentiated numerically in z, through the inverse map;
    the stored fields are (Cp, u, v) with Cp = 1 - u^2 - v^2."""
    foil = FOILS[1]
    potential = lambda q: (np.exp(-1j * foil.alpha) * (q - foil.mu) + foil.radius**2 * np.exp(1j * foil.alpha)  # noqa: E731
                           / (q - foil.mu) + 1j * foil.circulation / (2 * np.pi) * np.log(q - foil.mu))
    zeta = foil.mu + foil.radius * np.array([1.3, 1.05, 2.0, 1.5]) * np.exp(1j * np.array([0.4, 2.0, 3.5, 5.0]))
    z, h = zeta + 1 / zeta, 1e-6
    derivative = (potential(outer_root(z + h, foil)) - potential(outer_root(z - h, foil))) / (2 * h)
    fields = joukowski_fields(foil, zeta, (-1e9, 1e9))
    np.testing.assert_allclose(fields[:, 1], derivative.real, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(fields[:, 2], -derivative.imag, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(fields[:, 0], 1 - fields[:, 1] ** 2 - fields[:, 2] ** 2, atol=1e-12)


def test_chord_of_a_symmetric_joukowski_airfoil() -> None:
    """b = 0: the leading edge is the image of zeta = -(1 + 2a), so c = 2 + (1 + 2a) + 1 / (1 + 2a)."""
    for a in (0.05, 0.15):
        exact = 2 + (1 + 2 * a) + 1 / (1 + 2 * a)
        assert Airfoil(a, 0.0, 0.1).chord(4096) == pytest.approx(exact, rel=1e-5)


def test_sample_sdf_is_the_distance_in_model_units() -> None:
    """The stored SDF is the distance from the stored coordinates to the stored surface polyline (both scaled)."""
    cfg = small_config(train=1, val=1, test=1, ood=1, surface_points=256)
    sample = joukowski_splits(cfg, seed=4)["train"][0]
    surface = sample["surface"][:, 0].astype(float) + 1j * sample["surface"][:, 1]
    t = np.linspace(0, 1, 100, endpoint=False)
    dense = (surface[:, None] + t * (np.roll(surface, -1) - surface)[:, None]).ravel()
    distance, _ = cKDTree(np.stack([dense.real, dense.imag], 1)).query(sample["coords"].astype(float))
    np.testing.assert_allclose(sample["sdf"], distance, atol=2e-4)


def test_cross_attention_is_a_gaussian_windowed_softmax_over_latents() -> None:
    """out = W_o sum_i w_i v_i with w = softmax_i(q_i . k_i / sqrt(H) - |x - p_i|^2 / sigma_i^2) per head and
    v_i = mixer(W_v a_i (1 + gamma_i) + beta_i), (gamma, beta) = film(embed(x - p_i)); recomputed per query point."""
    torch.manual_seed(0)
    hidden, heads = 8, 2
    layer = EquivariantCrossAttention(hidden, heads, (1.0, 0.5), project_heads=False).double()
    x, p = torch.rand(1, 3, 2, dtype=torch.float64), torch.rand(4, 2, dtype=torch.float64)
    a, window = torch.randn(1, 4, hidden, dtype=torch.float64), torch.tensor([0.3, 0.5, 0.7, 0.9], dtype=torch.float64)
    with torch.no_grad():
        got = layer(x, p, a, window)[0]
        key = layer.to_key(a[0]).view(4, heads, hidden)
        for c in range(3):
            relative = x[0, c] - p                                                 # [Z, 2]
            query = layer.to_query(layer.query_embedding(relative)).view(4, heads, hidden)
            gamma, beta = layer.value_film(layer.value_embedding(relative)).chunk(2, -1)
            value = layer.value_mixer((layer.to_value(a[0]) * (1 + gamma) + beta).view(4, heads, hidden))
            logits = (query * key).sum(-1) / math.sqrt(hidden) - ((relative**2).sum(-1) / window**2)[:, None]
            weights = torch.exp(logits - logits.max(0).values) / torch.exp(logits - logits.max(0).values).sum(0)
            mixed = (weights[..., None] * value).sum(0).reshape(-1)
            torch.testing.assert_close(got[c], layer.out(mixed), rtol=1e-10, atol=1e-12)


def test_inner_loop_fits_each_shape_as_if_alone() -> None:
    """Meta-SGD steps on a batch of two shapes give each shape the latents it gets when fitted by itself."""
    torch.manual_seed(0)
    field = EquivariantNeuralField(4, 16, 1, 0, 1, (1.0, 1.0), 3, [[-0.6, 0.6], [-0.3, 0.3]], False).double()
    coords = torch.rand(2, 32, 2, dtype=torch.float64) - 0.5
    target = coords.norm(dim=-1, keepdim=True) - torch.tensor([0.1, 0.3], dtype=torch.float64)[:, None, None]
    init, steps = torch.ones(9, 4, dtype=torch.float64), torch.full((4,), 0.5, dtype=torch.float64)
    together = fit_latents(field, init, steps, [(coords, target)] * 2, second_order=False)
    for i in range(2):
        alone = fit_latents(field, init, steps, [(coords[i:i + 1], target[i:i + 1])] * 2, second_order=False)
        torch.testing.assert_close(together[i:i + 1], alone, rtol=1e-10, atol=1e-12)


def test_normaliser_is_per_field_and_relative_l2() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal([0.0, 5.0, -40.0], [1.0, 0.1, 30.0], (500, 3))
    normalised = Normalizer(values, "cpu")(torch.tensor(values, dtype=torch.float32)).double().numpy()
    np.testing.assert_allclose(normalised.mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(normalised.std(0), 1.0, rtol=1e-4)
    prediction, truth = rng.normal(size=50), rng.normal(size=50)
    assert relative_l2(torch.tensor(prediction), torch.tensor(truth)) == pytest.approx(
        np.linalg.norm(prediction - truth) / np.linalg.norm(truth))


def test_output_enf_queries_the_sdf_as_a_third_coordinate() -> None:
    """The reference's output ENF (coord_dim 3) sees a query as (x, y, SDF) against latents at SDF coordinate 0, with
    window coord_dim / latents per side; it stays translation equivariant in the plane and reads the SDF."""
    torch.manual_seed(0)
    field = EquivariantNeuralField(4, 16, 2, 1, 3, (1.0, 0.5), 3, [[-0.6, 0.6], [-0.3, 0.3]], True,
                                   coord_dim=3).double()
    assert field.positions.shape == (9, 3) and (field.positions[:, 2] == 0).all()
    torch.testing.assert_close(field.window, torch.full((9,), 1.0, dtype=torch.float64))
    x, a = torch.rand(2, 40, 3, dtype=torch.float64), torch.randn(2, 9, 4, dtype=torch.float64)
    shift = torch.tensor([0.37, -1.2, 0.0], dtype=torch.float64)
    reference = field(x, a)
    torch.testing.assert_close(field(x + shift, a, positions=field.positions + shift), reference,
                               rtol=1e-10, atol=1e-12)
    moved_sdf = x.clone()
    moved_sdf[..., 2] += 0.3
    assert (field(moved_sdf, a) - reference).abs().max() > 1e-3


def test_range_scaler_maps_the_training_range_onto_minus_one_one() -> None:
    rng = np.random.default_rng(1)
    values = rng.uniform([-0.01, 3.0], [0.9, 8.0], (300, 2))
    scaler = RangeScaler(values, "cpu")
    scaled = scaler(torch.tensor(values, dtype=torch.float32)).double().numpy()
    np.testing.assert_allclose(scaled.min(0), -1.0, atol=1e-6)
    np.testing.assert_allclose(scaled.max(0), 1.0, atol=1e-6)
    expected = 2 * (values - values.min(0)) / (values.max(0) - values.min(0)) - 1
    np.testing.assert_allclose(scaled, expected, atol=1e-5)


def sample_split(seed: int) -> list[dict]:
    return joukowski_splits(small_config(train=3, val=1, test=1, ood=1, points=50), seed=seed)["train"]


def test_geometry_target_is_the_sdf_standardised_with_training_statistics() -> None:
    samples = sample_split(5)
    train_sdf = np.concatenate([s["sdf"] for s in samples]).astype(float)
    shapes = Shapes(samples, "cpu", Normalizer(train_sdf[:, None], "cpu"))
    for sample, target in zip(samples, shapes.sdf_target):
        expected = (sample["sdf"] - train_sdf.mean()) / train_sdf.std()
        np.testing.assert_allclose(target[:, 0].double().numpy(), expected, rtol=1e-5, atol=1e-5)


class Echo(torch.nn.Module):
    """A decoder stub that returns its queries, to see what the surrogate feeds a field."""

    def forward(self, x: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        return x


def test_field_decoders_get_the_scaled_sdf_and_standardised_latents() -> None:
    """Stage 2 queries a field at (x, y, 2 (SDF - min) / (max - min) - 1), the SDF range of the training split;
    enf2enf's latents (conditions appended) are standardised per feature over all training shapes and latents,
    the global-latent field's conditions only."""
    samples = sample_split(6)
    train_sdf = np.concatenate([s["sdf"] for s in samples])[:, None]
    identity = Normalizer(np.array([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]]), "cpu")  # mean 0, std 1
    surrogate = Surrogate("enf2enf", Echo(), None, None, identity, None, RangeScaler(train_sdf, "cpu"))
    shapes = Shapes(samples, "cpu", Normalizer(train_sdf, "cpu"))
    queries = surrogate.normalised(shapes.coords[0][None], shapes.sdf[0][None], shapes.cond[:1], None)[0].double()
    lo, hi = train_sdf.min(), train_sdf.max()
    np.testing.assert_allclose(queries[:, :2].numpy(), samples[0]["coords"], atol=1e-6)
    np.testing.assert_allclose(queries[:, 2].numpy(), 2 * (samples[0]["sdf"] - lo) / (hi - lo) - 1, atol=1e-5)
    raw = torch.randn(5, 9, 3) * torch.tensor([0.1, 4.0, 1.0]) + torch.tensor([2.0, -3.0, 0.5])
    surrogate.fit_latent_norm(raw, cond_dim=1)
    standardised = surrogate.latent_norm(raw).double()
    torch.testing.assert_close(standardised.mean(dim=(0, 1)), torch.zeros(3, dtype=torch.float64), atol=1e-5, rtol=0)
    torch.testing.assert_close(standardised.std(dim=(0, 1), unbiased=False), torch.ones(3, dtype=torch.float64),
                               atol=1e-4, rtol=0)
    # the global-latent field: its code [B, 3] passes unchanged, the one appended condition is standardised
    baseline = Surrogate("global_latent", Echo(), None, None, identity, None, RangeScaler(train_sdf, "cpu"))
    codes = raw[:, 0]
    baseline.fit_latent_norm(codes, cond_dim=1)
    mapped = baseline.latent_norm(codes).double()
    torch.testing.assert_close(mapped[:, :2], codes[:, :2].double(), atol=1e-6, rtol=0)
    condition = codes[:, 2].double()
    torch.testing.assert_close(mapped[:, 2], (condition - condition.mean()) / condition.std(unbiased=False),
                               atol=1e-4, rtol=0)
