"""mpph_diff: the signed measures against closed forms and brute force (Euler characteristic and gudhi Betti
numbers on the grid of critical values), their gradients against finite differences away from ties, the
two-parameter loss against the one-parameter one where f is constant, and the grid-graph labels."""

from pathlib import Path

import gudhi
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from repro.core.errors import DataUnavailableError
from repro.papers.mpph_diff.data import bump_signal, grid_edges, label, landscape, tu_graphs
from repro.papers.mpph_diff.descriptors import (
    euler_measure_closed_form,
    gaussian_images,
    lower_star_h0_bars,
    persistence_diagram_measure,
    signed_measure,
)
from repro.papers.mpph_diff.models import TopologicalClassifier
from repro.papers.mpph_diff.task import h1_mass_1p, h1_mass_2p, loop_landscape_value


def _graph(seed: int, side: int = 4) -> tuple[list[np.ndarray], torch.Tensor, np.ndarray]:
    """A grid graph with a few triangles (diagonals), generic random vertex values, lower-star values."""
    edges = grid_edges(side)
    diagonals = np.array([[0, side + 1], [5, 2 * side + 2]])
    triangles = np.array([[0, 1, side + 1], [0, side, side + 1], [5, 6, 2 * side + 2]])
    all_edges = np.concatenate([edges, diagonals])
    f = torch.rand(side * side, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    values = torch.cat([f, f[all_edges].amax(1), f[triangles].amax(1)])
    return [np.arange(side * side)[:, None], all_edges, triangles], values, f.numpy()


def _cumulative(points: np.ndarray, weights: np.ndarray, x: np.ndarray) -> float:
    return float(weights[(points <= x).all(axis=1)].sum())


def test_euler_measure_is_the_closed_form_and_integrates_to_the_brute_force_euler_characteristic() -> None:
    simplices, values, _ = _graph(0)
    points, weights = signed_measure(simplices, values, degree=None)
    points, weights = points.detach().numpy(), weights.numpy()
    # closed form: sum_s (-1)^dim(s) delta_{f(s)}, coincident Diracs merged
    closed_points, signs = euler_measure_closed_form(simplices, values)
    merged: dict[tuple, float] = {}
    for p, s in zip(map(tuple, closed_points.numpy()), signs.numpy()):
        merged[p] = merged.get(p, 0.0) + s
    expected = {p: w for p, w in merged.items() if w != 0}
    assert {tuple(p): float(w) for p, w in zip(points, weights)} == expected
    # brute force: at every point x of the grid of critical values, chi(x) = #V - #E + #T of {s : f(s) <= x}
    v = values.numpy()
    signs_np = np.concatenate([np.full(len(b), (-1.0) ** k) for k, b in enumerate(simplices)])
    for a in np.unique(v[:, 0]):
        for b in np.unique(v[:, 1]):
            chi = signs_np[(v <= [a, b]).all(axis=1)].sum()
            assert _cumulative(points, weights, np.array([a, b])) == chi


def test_hilbert_measure_integrates_to_gudhis_betti_numbers() -> None:
    simplices, values, _ = _graph(1)
    v = values.numpy()
    for degree in (0, 1):
        points, weights = signed_measure(simplices, values, degree=degree)
        points, weights = points.detach().numpy(), weights.numpy()
        for a in np.unique(v[:, 0])[::3]:
            for b in np.unique(v[:, 1])[::3]:
                tree = gudhi.SimplexTree()
                start = 0
                for block in simplices:
                    for simplex, value in zip(block, v[start:start + len(block)]):
                        if (value <= [a, b]).all():
                            tree.insert(simplex.tolist(), 0.0)
                    start += len(block)
                tree.compute_persistence(persistence_dim_max=True)
                betti = tree.betti_numbers()
                expected = betti[degree] if len(betti) > degree else 0
                assert _cumulative(points, weights, np.array([a, b])) == expected


def _descriptor_loss(simplices: list[np.ndarray], degree: int | None, pixels: torch.Tensor):
    def loss(f: torch.Tensor) -> torch.Tensor:
        values = torch.cat([f] + [f[torch.as_tensor(b)].amax(1) for b in simplices[1:]])
        points, weights = signed_measure(simplices, values, degree)
        return (gaussian_images([(points, weights)], 8, 0.15)[0] * pixels).sum()
    return loss


def test_batched_images_equal_the_direct_two_dimensional_gaussian_sum() -> None:
    """Each image of a batch (factorised Gaussians, one index_add) against the 2-D sum written out per pixel."""
    g = torch.Generator().manual_seed(4)
    measures = [(torch.rand(n, 2, dtype=torch.float64, generator=g), torch.randn(n, dtype=torch.float64, generator=g))
                for n in (5, 0, 12)]
    images = gaussian_images(measures, 6, 0.2)
    axis = np.linspace(0, 1, 6)
    for image, (points, weights) in zip(images, measures):
        expected = [sum(w * np.exp(-((a - p[0]) ** 2 + (c - p[1]) ** 2) / (2 * 0.2 ** 2))
                        for p, w in zip(points.tolist(), weights.tolist())) for a in axis for c in axis]
        assert np.allclose(image.numpy(), expected, atol=1e-12)


def test_signed_measure_gradients_match_finite_differences_away_from_ties() -> None:
    simplices, _, f0 = _graph(2)
    pixels = torch.rand(64, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for degree in (None, 0):
        f = torch.tensor(f0, requires_grad=True)
        loss = _descriptor_loss(simplices, degree, pixels)
        assert torch.autograd.gradcheck(loss, (f,), eps=1e-7, atol=1e-5)
        loss(f).backward()
        assert f.grad.abs().sum() > 0


def test_barcode_gradient_matches_finite_differences() -> None:
    edges = grid_edges(4)
    f0 = torch.rand(16, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    f = f0.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda g: (lower_star_h0_bars(edges, g, 1.0) ** 2).sum(), (f,), eps=1e-7)
    bars = lower_star_h0_bars(edges, f0, 1.0).numpy()
    tree = gudhi.SimplexTree()
    for i, value in enumerate(f0.tolist()):
        tree.insert([i], value)
    for u, w in edges:
        tree.insert([int(u), int(w)], max(f0[u].item(), f0[w].item()))
    tree.compute_persistence()
    expected = np.minimum(tree.persistence_intervals_in_dimension(0), 1.0)
    assert gudhi.bottleneck_distance(bars, expected) < 1e-12


def test_collapsed_flag_complex_gives_the_measure_and_gradient_of_the_full_rips_bifiltration() -> None:
    """h1_mass_2p (graph, edge collapse, expansion in multipers) against the Hilbert measure of the explicit
    2-skeleton from gudhi's Rips complex, triangles at (longest edge, max f), with no collapse."""
    t = OmegaConf.create({"width": 0.17, "max_radius": 0.15, "radius_box": [0.02, 0.10], "f_max": 1.0})
    points = torch.rand(60, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(6)).requires_grad_()
    tree = gudhi.RipsComplex(points=points.detach().numpy(), max_edge_length=0.15).create_simplex_tree(
        max_dimension=2)
    blocks = [np.array(sorted(sorted(s) for s, _ in tree.get_skeleton(k) if len(s) == k + 1)).reshape(-1, k + 1)
              for k in range(3)]
    f = landscape(points, 0.17)

    def longest(b: np.ndarray) -> torch.Tensor:
        pairs = [(i, j) for i in range(b.shape[1]) for j in range(i + 1, b.shape[1])]
        return torch.stack([(points[b[:, i]] - points[b[:, j]]).norm(dim=1) for i, j in pairs]).amax(0)

    values = torch.cat([torch.stack([torch.zeros_like(f), f], 1)]
                       + [torch.stack([longest(b), f[b].amax(1)], 1) for b in blocks[1:]])
    assert len(blocks[2]) > 0
    located, weights = signed_measure(blocks, values, degree=1)
    width = (0.10 - located[:, 0].clamp(min=0.02)).clamp(min=0)
    expected = (weights * width * (1.0 - located[:, 1]).clamp(min=0)).sum()
    (grad_expected,) = torch.autograd.grad(expected, points)
    mass = h1_mass_2p(points, t)
    (grad,) = torch.autograd.grad(mass, points)
    assert float(expected) > 0 and abs(float(mass - expected)) < 1e-12
    assert torch.allclose(grad, grad_expected, atol=1e-12) and grad.abs().sum() > 0


def test_two_parameter_loss_reduces_to_the_one_parameter_loss_when_f_is_constant() -> None:
    """With a vanishing bump width f = 1 everywhere: every loop spans f in [1, f_max], so the Hilbert integral
    (multipers) is (f_max - 1) x the Betti-curve integral (gudhi)."""
    t = OmegaConf.create({"width": 1e-6, "max_radius": 0.15, "radius_box": [0.02, 0.10], "f_max": 3.0})
    points = torch.rand(80, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    one = float(h1_mass_1p(points, t))
    assert one > 0
    assert abs(float(h1_mass_2p(points, t)) - 2.0 * one) < 1e-9


def test_landscape_is_low_at_the_modes() -> None:
    centres = torch.tensor([[0.2, 0.2], [0.8, 0.4], [0.4, 0.7]], dtype=torch.float64)
    assert landscape(centres, 0.17).max() < 0.01 and landscape(torch.tensor([[0.9, 0.9]]), 0.17) > 0.9


def test_label_counts_components_of_the_joint_superlevel_set() -> None:
    side = 10
    s1 = np.zeros((side, side))
    s1[1:3, 1:3] = 1.0
    s1[6:8, 6:8] = 1.0
    s2 = np.ones((side, side))
    assert label(s1.ravel(), s2.ravel(), side, 0.6) == 1
    s2[6:8, 6:8] = 0.0  # the second blob fails the second signal
    assert label(s1.ravel(), s2.ravel(), side, 0.6) == 0


def _write_tu_raw(root: Path, name: str, count: int) -> None:
    """``count`` small graphs in the TU layout (1-based node ids, one row per directed edge): cycles of 3 to 6
    nodes, label 1 for even length; node labels in {0, 1, 2}."""
    raw = root / name / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    pairs, indicator, node_labels, graph_labels, offset = [], [], [], [], 0
    for g in range(count):
        n = 3 + g % 4
        for i in range(n):
            a, b = offset + i + 1, offset + (i + 1) % n + 1
            pairs += [(a, b), (b, a)]
            indicator.append(g + 1)
            node_labels.append(i % 3)
        graph_labels.append(int(n % 2 == 0))
        offset += n
    (raw / f"{name}_A.txt").write_text("".join(f"{a}, {b}\n" for a, b in pairs))
    (raw / f"{name}_graph_indicator.txt").write_text("".join(f"{g}\n" for g in indicator))
    (raw / f"{name}_node_labels.txt").write_text("".join(f"{v}\n" for v in node_labels))
    (raw / f"{name}_graph_labels.txt").write_text("".join(f"{v}\n" for v in graph_labels))


def write_dry_data(data_dir: Path) -> None:
    """MUTAG's raw TU files (data/TU/MUTAG/raw/MUTAG_{A,graph_indicator,node_labels,graph_labels}.txt), 30 graphs."""
    _write_tu_raw(data_dir / "TU", "MUTAG", 30)


def test_tu_reader_on_files_in_the_real_format(tmp_path: Path) -> None:
    _write_tu_raw(tmp_path, "Toy", 8)
    graphs, labels = tu_graphs(tmp_path, "Toy")
    assert len(graphs) == 8 and labels.tolist() == [0, 1, 0, 1, 0, 1, 0, 1]
    features, edges = graphs[1]  # the 4-cycle
    assert features.shape == (4, 4) and (features[:, -1] == 1).all()
    assert sorted(map(tuple, edges.tolist())) == [(0, 1), (0, 3), (1, 2), (2, 3)]


def test_tu_offline_download_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(DataUnavailableError, match="NOT_A_DATASET"):
        tu_graphs(tmp_path, "NOT_A_DATASET")


def test_landscape_and_bump_signal_are_their_closed_forms() -> None:
    x = np.array([[0.3, 0.25], [0.7, 0.5]])
    expected = [1 - sum(np.exp(-((p[0] - a) ** 2 + (p[1] - b) ** 2) / 0.17 ** 2)
                        for a, b in ((0.2, 0.2), (0.8, 0.4), (0.4, 0.7))) for p in x]
    assert np.allclose(landscape(torch.tensor(x), 0.17).numpy(), expected, atol=1e-12)
    # one bump, no noise: h exp(-||p - c||^2 / (2 width^2)), c and h the generator's first draws
    signal = bump_signal(5, 1, 1.5, 0.0, np.random.default_rng(0))
    draws = np.random.default_rng(0)
    (c,), (h,) = draws.uniform(0, 4, size=(1, 2)), draws.uniform(0.5, 1.5, size=1)
    expected = [h * np.exp(-((r - c[0]) ** 2 + (q - c[1]) ** 2) / (2 * 1.5 ** 2)) for r in range(5) for q in range(5)]
    assert np.allclose(signal, expected, atol=1e-12)


def test_label_uses_four_neighbour_components_of_the_intersection() -> None:
    side = 6
    s1 = np.zeros((side, side))
    s1[1, 1] = s1[2, 2] = 1.0  # two cells touching at a corner only: two components of the grid graph
    s2 = np.ones((side, side))
    assert label(s1.ravel(), s2.ravel(), side, 0.6) == 1
    s2[:] = 0.0
    s2[1, 1] = 1.0  # the intersection is one cell, although the union of the two sets has three
    s1[4, 4] = 1.0
    assert label(s1.ravel(), s2.ravel(), side, 0.6) == 0


def test_persistence_image_measure_is_birth_persistence_weighted_by_persistence() -> None:
    points, weights = persistence_diagram_measure(torch.tensor([[0.1, 0.5], [0.2, 0.3]], dtype=torch.float64))
    assert torch.allclose(points, torch.tensor([[0.1, 0.4], [0.2, 0.1]], dtype=torch.float64))
    assert torch.allclose(weights, torch.tensor([0.4, 0.1], dtype=torch.float64))


def test_two_parameter_loss_is_the_integral_of_gudhis_betti_curves_over_f_thresholds() -> None:
    """f is lower-star from the vertices, so {f <= b} is the Rips complex of the points with f <= b and the
    Hilbert function is piecewise constant in b between vertex values: the integral over [r_lo, r_hi] x
    (-inf, f_max] is sum_i (b_{i+1} - b_i) x (the Betti-curve integral over [r_lo, r_hi] of that Rips complex,
    gudhi), with f_max < max f so that the upper boundary cuts."""
    t = OmegaConf.create({"width": 0.17, "max_radius": 0.15, "radius_box": [0.02, 0.10], "f_max": 0.95})
    points = torch.rand(120, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    f = landscape(points, 0.17).numpy()
    levels = np.append(np.sort(f[f <= t.f_max]), t.f_max)
    expected = 0.0
    for b, step in zip(levels[:-1], np.diff(levels)):
        cloud = points.numpy()[f <= b]
        tree = gudhi.RipsComplex(points=cloud, max_edge_length=0.15).create_simplex_tree(max_dimension=2)
        tree.compute_persistence()
        bars = tree.persistence_intervals_in_dimension(1).reshape(-1, 2)
        expected += step * np.clip(np.minimum(bars[:, 1], 0.10) - np.maximum(bars[:, 0], 0.02), 0, None).sum()
    assert (f > t.f_max).sum() > 10 and expected > 1e-3
    assert float(h1_mass_2p(points, t)) == pytest.approx(expected, rel=1e-9)


def test_loop_f_is_the_window_length_weighted_mean_over_loops() -> None:
    """Two far-apart quadrilaterals, each one H1 bar born at its longest side and dying at its shorter diagonal
    (Rips); the reported f is the mean of f at the longest side's ends, weighted by the bar inside [r_lo, r_hi]."""
    t = OmegaConf.create({"width": 0.17, "max_radius": 0.15, "radius_box": [0.02, 0.10]})
    quad = np.array([[0.0, 0.0], [0.05, 0.0], [0.055, 0.045], [0.0, 0.04]])
    points = np.concatenate([quad + [0.15, 0.15], 1.3 * quad + [0.6, 0.6]])
    f = landscape(torch.tensor(points), 0.17).numpy()
    means, lengths = [], []
    for q, corner in ((quad, 0), (1.3 * quad, 4)):
        birth = np.linalg.norm(q[2] - q[3])  # the longest side
        death = min(np.linalg.norm(q[0] - q[2]), np.linalg.norm(q[1] - q[3]))
        lengths.append(min(death, 0.10) - max(birth, 0.02))
        means.append((f[corner + 2] + f[corner + 3]) / 2)
    value, total = loop_landscape_value(torch.tensor(points), t)
    assert total == pytest.approx(sum(lengths), rel=1e-12)
    assert value == pytest.approx(np.average(means, weights=lengths), rel=1e-12)
    assert abs(means[0] - means[1]) > 0.1 and abs(lengths[0] - lengths[1]) > 1e-3


def test_classifier_descriptors_are_the_lower_star_euler_and_hilbert_measures() -> None:
    """Euler: +1 at each vertex's (f1, f2), -1 at each edge's coordinate-wise max of its ends (closed form);
    H0 Hilbert of the connected 4 x 4 grid: total mass 1, against the Euler characteristic V - E = 16 - 24."""
    edges = grid_edges(4)
    f = torch.rand(16, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(8))
    v = f.numpy()
    expected: dict[tuple, float] = {}
    for p, s in [(tuple(x), 1.0) for x in v] + [(tuple(np.maximum(v[u], v[w])), -1.0) for u, w in edges]:
        expected[p] = expected.get(p, 0.0) + s
    euler = TopologicalClassifier("euler_2p", 4, 2, 4, 8, 0.1).double().measure(f, edges)
    assert {tuple(p): float(w) for p, w in zip(euler[0].detach().numpy(), euler[1].numpy())} == \
        {p: w for p, w in expected.items() if w != 0}
    assert float(euler[1].sum()) == 16 - 24
    hilbert = TopologicalClassifier("hilbert_2p", 4, 2, 4, 8, 0.1).double().measure(f, edges)
    assert float(hilbert[1].sum()) == 1.0
