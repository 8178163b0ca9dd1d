"""FA: frames against numpy eigh and closed forms, exact equivariance of frame averaging under random O(3) /
SO(3) elements and translations (scipy oracles), permutation frames (networkx WL hashes, triangle counts), the
simulator's energy conservation without clipping."""

import networkx as nx
import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation
from scipy.stats import ortho_group

from repro.papers.fa.frames import frame_permutations, frame_size, invariant_node_columns, pca_frames
from repro.papers.fa.graphs import DenseGIN, SampledAverage, id_features, pad, triangle_graphs
from repro.papers.fa.nbody import GNN, FrameAveraged, simulate_charged


def cloud(seed: int, n: int = 5) -> torch.Tensor:
    return torch.as_tensor(np.random.default_rng(seed).standard_normal((1, n, 3)) * [2.0, 1.0, 0.5])


@pytest.mark.parametrize("group, size", [("o3", 8), ("so3", 4)])
def test_frame_elements(group: str, size: int) -> None:
    rotations, centroid, degenerate = pca_frames(cloud(0), group)
    assert rotations.shape == (1, size, 3, 3) and not degenerate.any()
    eye = torch.eye(3, dtype=torch.float64)
    torch.testing.assert_close(rotations @ rotations.transpose(-2, -1), eye.expand_as(rotations))
    dets = torch.linalg.det(rotations)
    assert (dets > 0).all() if group == "so3" else (dets > 0).sum() == 4
    x = cloud(0)[0].numpy()
    w, v = np.linalg.eigh(np.cov(x.T, bias=True))
    np.testing.assert_allclose(np.abs(rotations[0, 0].numpy()), np.abs(v), atol=1e-12)  # numpy oracle


@pytest.mark.parametrize("seed", range(3))
def test_frame_is_equivariant(seed: int) -> None:
    x = cloud(seed)
    q = torch.as_tensor(ortho_group.rvs(3, random_state=seed))
    t = torch.randn(3, dtype=torch.float64)
    r1, c1, _ = pca_frames(x)
    r2, c2, _ = pca_frames(x @ q.T + t)
    torch.testing.assert_close(c2, c1 @ q.T + t)
    # F(QX + t) = Q F(X) as a set of 8 matrices: match each element by its columns up to the sign set
    moved = q @ r1[0]
    for element in r2[0]:
        assert min((element - m).abs().max() for m in moved) < 1e-10


def test_degenerate_cloud_is_flagged() -> None:
    square = torch.tensor([[[1.0, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0]]], dtype=torch.float64)
    assert pca_frames(square)[2].all()


@pytest.mark.parametrize("group, sampler", [("o3", lambda s: ortho_group.rvs(3, random_state=s)),
                                            ("so3", lambda s: Rotation.random(random_state=s).as_matrix())])
def test_frame_averaged_gnn_equivariant(group: str, sampler) -> None:
    torch.manual_seed(0)
    net = FrameAveraged(GNN(16, 2), group).double()
    plain = GNN(16, 2).double()
    x, v = cloud(1), cloud(2)
    q = torch.tensor([[1.0, -1, 1, -1, 1]], dtype=torch.float64)
    for seed in range(3):
        rot = torch.as_tensor(sampler(seed))
        t = torch.randn(3, dtype=torch.float64)
        out = net(x @ rot.T + t, v @ rot.T, q)
        torch.testing.assert_close(out, net(x, v, q) @ rot.T + t, atol=1e-10, rtol=0)
        assert (plain(x @ rot.T + t, v @ rot.T, q) - (plain(x, v, q) @ rot.T + t)).abs().max() > 1e-3


def test_simulator_conserves_energy_without_clipping() -> None:
    from repro.papers.fa import nbody

    data = nbody.simulate_charged(20, 0, frames=(1, 2), max_force=np.inf, dt=1e-4, every=1000)

    def energy(x, v, q):
        diff = np.linalg.norm(x[:, :, None] - x[:, None], axis=-1) + np.eye(x.shape[1])
        coulomb = (q[:, :, None] * q[:, None] / diff * (1 - np.eye(x.shape[1]))).sum((1, 2)) / 2
        return 0.5 * (v**2).sum((1, 2)) + coulomb

    # the two saved states, 1000 steps of dt = 1e-4 apart: kinetic + Coulomb energy drifts little
    e_in = energy(data["x_in"], data["v_in"], data["charges"])
    e_out = energy(data["x_out"], data["v_out"], data["charges"])
    assert np.median(np.abs(e_out - e_in) / np.abs(e_in).clip(min=1e-3)) < 1e-3
    assert np.abs(data["x_out"] - data["x_in"]).max() > 1e-2  # the particles did move


def test_simulator_initial_state() -> None:
    data = simulate_charged(3, 1, frames=(1, 2), every=10)
    assert data["x_out"].shape == (3, 5, 3) and set(np.unique(data["charges"])) <= {-1.0, 1.0}
    assert np.allclose(np.linalg.norm(data["v_in"], axis=-1).mean(), 0.5, atol=0.2)


def test_graphs_are_1wl_equivalent_and_labelled() -> None:
    graphs, labels = triangle_graphs(40, [12, 14], 0)
    assert labels.mean() == 0.5
    hashes = {}
    for a, y in zip(graphs, labels):
        g = nx.from_numpy_array(a)
        assert y == int(sum(nx.triangles(g).values()) // 3 > 0)
        hashes.setdefault(len(a), set()).add(nx.weisfeiler_lehman_graph_hash(g, iterations=4))
    assert all(len(h) == 1 for h in hashes.values())


def test_permutation_frame_is_equivariant() -> None:
    g = nx.random_regular_graph(3, 14, seed=3)
    a = nx.to_numpy_array(g)
    p = np.random.default_rng(0).permutation(14)
    moved = a[np.ix_(p, p)]
    np.testing.assert_array_equal(invariant_node_columns(moved), invariant_node_columns(a)[p])
    rng = np.random.default_rng(1)
    # every frame element of the relabelled graph sorts it into a graph with the same sorted invariant rows
    keys = invariant_node_columns(a)
    for perm in frame_permutations(moved, 5, rng):
        np.testing.assert_array_equal(invariant_node_columns(moved)[perm], keys[frame_permutations(a, 1, rng)[0]])


def test_fa_gin_invariant_on_unique_frames_and_gin_blind() -> None:
    rng = np.random.default_rng(0)
    graphs = [a for a in triangle_graphs(60, [12], 1)[0] if frame_size(a) == 1][:5]
    assert graphs, "need graphs with a one-element frame"
    torch.manual_seed(0)
    net = SampledAverage(DenseGIN(17)).eval()
    perms = [rng.permutation(12) for _ in graphs]
    moved = [a[np.ix_(p, p)] for a, p in zip(graphs, perms)]
    with torch.no_grad():
        out = net(id_features(graphs, 16, 3, "frame", rng), *pad(graphs, 16))
        out_moved = net(id_features(moved, 16, 3, "frame", rng), *pad(moved, 16))
        torch.testing.assert_close(out, out_moved, atol=1e-5, rtol=0)
        gin = DenseGIN(1).eval()
        adj, mask = pad(graphs, 16)
        plain = gin(mask.unsqueeze(-1), adj, mask)
    assert torch.allclose(plain, plain[0].expand_as(plain))  # 1-WL-equivalent graphs: one output
