"""FA: frames against numpy eigh and closed forms, exact equivariance of frame averaging under random O(3) /
SO(3) elements and translations (scipy oracles), permutation frames (networkx WL hashes, triangle counts), the
simulator's energy conservation without clipping."""

import itertools
import subprocess
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation
from scipy.stats import ortho_group

from repro.core.errors import ReproError
from repro.papers.fa.frames import frame_permutations, frame_size, invariant_node_columns, pca_frames
from repro.papers.fa.graphs import GraphSet, graph_model, id_features, node_ranks, triangle_graphs
from repro.papers.fa.nbody import GNN, FrameAveraged, LatentFrameAveraged, load_release, simulate_charged


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


@pytest.mark.parametrize("group, sampler", [("o3", lambda s: ortho_group.rvs(3, random_state=s)),
                                            ("so3", lambda s: Rotation.random(random_state=s).as_matrix())])
def test_latent_frame_gnn_equivariant(group: str, sampler) -> None:
    """Per-layer frames keep exact E(3) equivariance: every latent cloud is lifted to the world by a frame
    average (equivariant), and its new frame is equivariant in turn."""
    torch.manual_seed(0)
    net = LatentFrameAveraged(GNN(12, 3), group).double()
    x, v = cloud(1), cloud(2)
    q = torch.tensor([[1.0, -1, 1, -1, 1]], dtype=torch.float64)
    for seed in range(3):
        rot = torch.as_tensor(sampler(seed))
        t = torch.randn(3, dtype=torch.float64)
        torch.testing.assert_close(net(x @ rot.T + t, v @ rot.T, q), net(x, v, q) @ rot.T + t, atol=1e-10, rtol=0)
    with pytest.raises(ValueError, match="multiple of 3"):
        LatentFrameAveraged(GNN(16, 2))


SIGN_OPS = torch.tensor(list(itertools.product([1.0, -1.0], repeat=3)), dtype=torch.float64).unsqueeze(1)


def _official_frame(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """create_frame / create_latent_frame of the official model_FA.py: (B, P, 3) -> F_ops (B, 8, 3, 3), centre."""
    centre = points.mean(1, keepdim=True)
    c = (points - centre).transpose(1, 2)
    _, vectors = torch.linalg.eigh((c @ c.transpose(1, 2)).detach())  # torch.symeig(R, True) in the original
    return SIGN_OPS.unsqueeze(0) * vectors.unsqueeze(1), centre


def _official_fa_gnn(net: GNN, x: torch.Tensor, v: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """The official FA_GNN.forward, written with its own einsums and its frame-major (8, B, n) layout."""
    batch, n, w = x.shape[0], x.shape[1], net.width
    ops, centre = _official_frame(x)
    framed = [torch.einsum("boij,bpj->bopi", ops.transpose(2, 3), p).transpose(0, 1).reshape(8 * batch, n, 3)
              for p in (x - centre, v)]
    edge_attr = net.edge_features(framed[0], q.repeat(8, 1))
    h = net.embed(torch.cat(framed, -1))
    for i in range(len(net.edge)):
        h = net.layer(i, h, edge_attr)
        if i < len(net.edge) - 1:  # invert_latent_frame, then create_latent_frame
            latent = h.view(8, batch, n, w // 3, 3).transpose(0, 1)
            lifted = torch.einsum("boij,bopfj->bopfi", ops, latent).mean(1).reshape(batch, -1, 3)
            ops, latent_centre = _official_frame(lifted)
            h = torch.einsum("boij,bpj->bopi", ops.transpose(2, 3), lifted - latent_centre).transpose(0, 1)
            h = h.reshape(8 * batch, n, w)
    out = net.out(h).view(8, batch, n, 3).transpose(0, 1)
    return torch.einsum("boij,bopj->bopi", ops, out).mean(1) + centre  # invert_frame


def test_latent_frame_gnn_matches_the_official_forward() -> None:
    """Same weights, same inputs: our per-layer frames give the official model's output (keeping the input
    frame through the layers, or skipping the frame average of the latents, gives other numbers)."""
    torch.manual_seed(1)
    backbone = GNN(12, 3).double()
    x = torch.as_tensor(np.random.default_rng(3).standard_normal((4, 5, 3)))
    v = torch.as_tensor(np.random.default_rng(4).standard_normal((4, 5, 3)))
    q = torch.as_tensor(np.random.default_rng(5).choice([-1.0, 1.0], (4, 5)))
    with torch.no_grad():
        ours = LatentFrameAveraged(backbone)(x, v, q)
        torch.testing.assert_close(ours, _official_fa_gnn(backbone, x, v, q), atol=1e-10, rtol=1e-10)
        assert (ours - FrameAveraged(backbone)(x, v, q)).abs().max() > 1e-3


def write_release(directory: Path, sizes: dict[str, int], frames: int = 45) -> dict[str, np.ndarray]:
    """Small files in the layout of the official release (EGNN's generate_dataset.py): loc and vel
    (systems, frames, 3, 5), charges (systems, 5, 1), float64 .npy; values encode (system, frame, axis, ball)."""
    directory.mkdir(parents=True, exist_ok=True)
    s, t, k, i = np.meshgrid(*(np.arange(m) for m in (max(sizes.values()), frames, 3, 5)), indexing="ij")
    code = s * 1000.0 + t * 10.0 + k + i * 0.1
    arrays = {}
    for split, name in (("train", "train"), ("val", "valid"), ("test", "test")):
        size = sizes[split]
        arrays[split] = code[:size]
        np.save(directory / f"loc_{name}_charged5_initvel1small.npy", code[:size])
        np.save(directory / f"vel_{name}_charged5_initvel1small.npy", -code[:size])
        charges = np.where(np.arange(size * 5).reshape(size, 5, 1) % 3 == 0, 1.0, -1.0)
        np.save(directory / f"charges_{name}_charged5_initvel1small.npy", charges)
    return arrays


def test_release_files_are_read_at_the_papers_frames_and_checked_by_git_blob_id(tmp_path) -> None:
    directory = tmp_path / "fa" / "nbody"
    code = write_release(directory, {"train": 7, "val": 4, "test": 3})
    blobs = {f.name: subprocess.run(["git", "hash-object", str(f)], capture_output=True, text=True,
                                    check=True).stdout.strip() for f in directory.iterdir()}  # git as the oracle
    data = load_release(directory, {"train": 5, "val": 4, "test": 3}, (30, 40), blobs)
    assert data["train"]["x_in"].shape == (5, 5, 3)  # the first 5 of 7 systems, as the official max_samples
    np.testing.assert_array_equal(data["train"]["x_in"], code["train"][:5, 30].transpose(0, 2, 1))
    np.testing.assert_array_equal(data["test"]["x_out"], code["test"][:, 40].transpose(0, 2, 1))
    np.testing.assert_array_equal(data["val"]["v_in"], -code["val"][:, 30].transpose(0, 2, 1))
    assert data["val"]["charges"].shape == (4, 5) and data["val"]["charges"][0, 0] == 1.0
    blobs["vel_test_charged5_initvel1small.npy"] = "0" * 40
    with pytest.raises(ReproError, match="vel_test_charged5_initvel1small.npy has git blob id"):
        load_release(directory, {"test": 3}, (30, 40), blobs)
    with pytest.raises(ReproError, match="systems >= 9"):
        load_release(directory, {"train": 9}, (30, 40), None)


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
    net = graph_model("fa_gin_id", 1, 16, 32, 3).eval()
    perms = [rng.permutation(12) for _ in graphs]
    moved = [a[np.ix_(p, p)] for a, p in zip(graphs, perms)]
    every = np.arange(len(graphs))
    with torch.no_grad():
        out = net(*GraphSet(graphs, every, 16, "fa_gin_id").inputs(every, 3, rng))
        out_moved = net(*GraphSet(moved, every, 16, "fa_gin_id").inputs(every, 3, rng))
        torch.testing.assert_close(out, out_moved, atol=1e-5, rtol=0)
        gin = graph_model("gin", 1, 16, 32, 3).eval()
        plain = gin(*GraphSet(graphs, every, 16, "gin").inputs(every, 1, rng))
    assert torch.allclose(plain, plain[0].expand_as(plain))  # 1-WL-equivalent graphs: one output


def test_simulator_matches_a_per_particle_reference() -> None:
    """EGNN's loop written particle by particle: a kick before the loop, then per step drift, save, kick."""
    data = simulate_charged(2, 3, n_balls=3, every=50, frames=(1, 3))
    rng = np.random.default_rng(3)  # the same draws, in the same order, as the simulator
    q = rng.choice([1.0, -1.0], size=(2, 3))
    x = rng.standard_normal((2, 3, 3))
    v = rng.standard_normal((2, 3, 3))
    v *= 0.5 / np.linalg.norm(v, axis=-1, keepdims=True)

    def force(s: int, x: np.ndarray) -> np.ndarray:
        f = np.zeros((3, 3))
        for i in range(3):
            for j in range(3):
                if i != j:
                    r = x[s, i] - x[s, j]
                    f[i] += q[s, i] * q[s, j] * r / np.linalg.norm(r) ** 3
        return np.clip(f, -100, 100)

    for s in range(2):
        v[s] += 1e-3 * force(s, x)
        for step in range(1, 201):
            x[s] += 1e-3 * v[s]
            if step == 100:  # saved frame 1 = step (1 + 1) * 50
                np.testing.assert_allclose(data["x_in"][s], x[s], atol=1e-12)
                np.testing.assert_allclose(data["v_in"][s], v[s], atol=1e-12)
            v[s] += 1e-3 * force(s, x)
        np.testing.assert_allclose(data["x_out"][s], x[s], atol=1e-12)  # frame 3 = step 200


def test_gnn_equals_the_concatenated_edge_mlp() -> None:
    """phi_e(h_i, h_j, a_ij) evaluated per node must equal the plain concatenation over all pairs j != i."""
    torch.manual_seed(0)
    net = GNN(8, 2).double()
    x, v = torch.cat([cloud(3), 2 * cloud(5)]), torch.cat([cloud(4), cloud(6)])
    q = torch.tensor([[1.0, -1, 1, -1, 1], [1, 1, -1, -1, 1]], dtype=torch.float64)
    h = net.embed(torch.cat([x, v], -1))
    for edge, node in zip(net.edge, net.node):
        messages = torch.zeros_like(h)
        for i in range(5):
            for j in range(5):
                if i != j:
                    attr = torch.stack([q[:, i] * q[:, j], ((x[:, i] - x[:, j]) ** 2).sum(-1)], -1)
                    messages[:, i] += edge(torch.cat([h[:, i], h[:, j], attr], -1))
        h = h + node(torch.cat([h, messages], -1))
    torch.testing.assert_close(net(x, v, q), net.out(h))  # positions decoded directly, as EGNN's GNN


def test_sampled_sorts_cover_the_frame_uniformly() -> None:
    """Sampled sorts of a graph are exactly its frame: |{sampled sorts}| = |F(G)| (from the tie counts), each
    sort puts the invariant rows in lexicographic order, and every frame element is about equally likely."""
    rng = np.random.default_rng(0)
    g = next(g for g in (nx.random_regular_graph(3, 12, seed=s) for s in range(50))
             if 1 < frame_size(nx.to_numpy_array(g)) <= 48)
    a = nx.to_numpy_array(g)
    perms = frame_permutations(a, 4000, rng)
    keys = invariant_node_columns(a)
    for perm in perms[:20]:
        rows = [tuple(r) for r in keys[perm]]
        assert rows == sorted(rows)
    distinct, counts = np.unique(perms, axis=0, return_counts=True)
    assert len(distinct) == frame_size(a)
    expected = len(perms) / len(distinct)
    assert counts.min() > 0.5 * expected and counts.max() < 1.5 * expected


def test_id_features_are_permutations_on_real_nodes() -> None:
    graphs = triangle_graphs(6, [12, 14], 2)[0]
    for kind in ("frame", "group"):
        ids = id_features(node_ranks(graphs, 16, kind), 5, np.random.default_rng(1))
        assert ids.shape == (6, 5, 16, 16)
        for i, a in enumerate(graphs):
            n = len(a)
            block = ids[i, :, :n, :n]
            torch.testing.assert_close(block.sum(-1), torch.ones(5, n))  # one ID per real node
            torch.testing.assert_close(block.sum(-2), torch.ones(5, n))  # IDs 0..n-1 each used once
            assert ids[i, :, n:].abs().sum() == 0 and ids[i, :, :, n:].abs().sum() == 0  # padding: no ID


def write_pyg1_pickle(path, graphs: list[dict]) -> None:
    """Write a list of graphs as GRAPHSAT.pkl stores them: PyG 1.x Data objects (no __getstate__, so pickled as
    class + attribute dict, the class referenced as torch_geometric.data.data.Data) holding CPU tensors."""
    import copyreg
    import pickle

    from torch_geometric.data.data import Data

    class Old:  # the attribute layout of a PyG 1.x Data object, pickled under Data's name
        def __init__(self, **attributes) -> None:
            self.__dict__.update(attributes)

        @property
        def __class__(self):  # pickle's NEWOBJ check compares the object's class with the one it names
            return Data

    class Writer(pickle.Pickler):
        def reducer_override(self, obj):
            if type(obj) is Old:
                return copyreg.__newobj__, (Data,), obj.__dict__
            return NotImplemented

    with open(path, "wb") as f:
        Writer(f, protocol=3).dump([Old(edge_attr=None, face=None, pos=None, norm=None, **g) for g in graphs])


def _triangle_and_path() -> list[dict]:
    triangle = torch.tensor([[0, 1, 1, 2, 2, 0], [1, 0, 2, 1, 0, 2]])
    path_graph = torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])
    return [{"x": torch.tensor([[0], [1], [1]]), "edge_index": triangle, "y": torch.tensor([1])},
            {"x": torch.tensor([[1], [0], [0], [1]]), "edge_index": path_graph, "y": torch.tensor([0])}]


def test_exp_parser_reads_the_published_format(tmp_path) -> None:
    from repro.papers.fa.exp import parse_exp

    path = tmp_path / "GRAPHSAT.pkl"
    write_pyg1_pickle(path, _triangle_and_path() * 201)  # more than the 400 graphs of the fixed val/test splits
    adjacencies, node_labels, labels = parse_exp(path)
    np.testing.assert_array_equal(labels[:2], [1, 0])
    np.testing.assert_array_equal(node_labels[1], [1, 0, 0, 1])
    np.testing.assert_array_equal(adjacencies[0], np.ones((3, 3)) - np.eye(3))
    assert nx.is_isomorphic(nx.from_numpy_array(adjacencies[1]), nx.path_graph(4))


def test_exp_parser_refuses_foreign_pickles(tmp_path) -> None:
    import pickle

    from repro.core.errors import ReproError
    from repro.papers.fa.exp import parse_exp

    path = tmp_path / "GRAPHSAT.pkl"
    with open(path, "wb") as f:
        pickle.dump([np.zeros(3)], f)  # refers to numpy globals, which EXP never does
    with pytest.raises(ReproError, match=f"{path} is not GRAPHSAT.pkl.*numpy"):
        parse_exp(path)


@pytest.mark.parametrize("bad, match", [
    ({"edge_index": torch.tensor([[0, 3], [3, 0]])}, "entries outside 0..2"),
    ({"edge_index": torch.tensor([[0, -1], [-1, 0]])}, "entries outside 0..2"),
    ({"y": torch.tensor([2])}, "outside \\{0, 1\\}"),
    ({"x": torch.tensor([[0], [5], [1]])}, "outside \\{0, 1\\}"),
])
def test_exp_parser_validates_graphs_and_names_the_file(tmp_path, bad: dict, match: str) -> None:
    from repro.core.errors import ReproError
    from repro.papers.fa.exp import parse_exp

    graphs = _triangle_and_path() * 201
    graphs[5] = {**graphs[4], **bad}
    path = tmp_path / "GRAPHSAT.pkl"
    write_pyg1_pickle(path, graphs)
    with pytest.raises(ReproError, match=f"GRAPHSAT.pkl: graph 5 .*{match}.*download it again"):
        parse_exp(path)


def test_exp_parser_needs_the_split_sizes(tmp_path) -> None:
    from repro.core.errors import ReproError
    from repro.papers.fa.exp import parse_exp

    path = tmp_path / "GRAPHSAT.pkl"
    write_pyg1_pickle(path, _triangle_and_path())
    with pytest.raises(ReproError, match="more than 400.*found 2"):
        parse_exp(path)


def test_exp_loader_offline_names_the_file(tmp_path, monkeypatch) -> None:
    from repro.core.errors import DataUnavailableError
    from repro.papers.fa import exp

    monkeypatch.setattr(exp, "EXP_URL", "http://127.0.0.1:9/GRAPHSAT.pkl")  # a closed port: no network needed
    with pytest.raises(DataUnavailableError, match="GRAPHSAT.pkl"):
        exp.load_exp(tmp_path, None)
    # A file in place that is not the pinned one is not read: it is fetched again (offline: the same error).
    placed = tmp_path / "fa" / "EXP" / "GRAPHSAT.pkl"
    write_pyg1_pickle(placed, _triangle_and_path())
    with pytest.raises(DataUnavailableError, match="GRAPHSAT.pkl"):
        exp.load_exp(tmp_path, "0" * 64)


def test_gin_blind_on_a_1wl_pair_with_node_labels() -> None:
    """EXP's premise: two non-isomorphic 1-WL-equivalent labelled graphs get one plain-GIN output."""
    pair = [nx.to_numpy_array(nx.circulant_graph(8, [1, 2])),  # two 4-regular graphs on 8 nodes
            nx.to_numpy_array(nx.circulant_graph(8, [1, 3]))]
    assert not nx.is_isomorphic(*(nx.from_numpy_array(a) for a in pair))
    labels = [np.zeros(8, dtype=int), np.zeros(8, dtype=int)]
    torch.manual_seed(0)
    gin = graph_model("gin", 2, 8, 16, 3).eval()
    plain = gin(*GraphSet(pair, np.array([0, 1]), 8, "gin", labels).inputs(np.arange(2), 1, np.random.default_rng(0)))
    assert torch.allclose(plain[0], plain[1])


def _exp_pairs(copies: int) -> list[dict]:
    """Pairs (hexagon, two triangles): 1-WL-equivalent with opposite labels, so GIN scores 50%."""
    hexagon = torch.tensor([[i for i in range(6)] + [(i + 1) % 6 for i in range(6)],
                            [(i + 1) % 6 for i in range(6)] + [i for i in range(6)]])
    triangles = torch.tensor([[0, 1, 2, 3, 4, 5, 1, 2, 0, 4, 5, 3], [1, 2, 0, 4, 5, 3, 0, 1, 2, 3, 4, 5]])
    zeros = torch.zeros(6, 1, dtype=torch.long)
    return [{"x": zeros, "edge_index": hexagon, "y": torch.tensor([0])},
            {"x": zeros, "edge_index": triangles, "y": torch.tensor([1])}] * copies


def write_dry_data(data_dir: Path) -> None:
    """GRAPHSAT.pkl (PyG 1.x Data pickles, 420 graphs: the fixed 200/200 validation/test splits + 20 training)
    where the EXP loader looks, and charged 5-body files in the release's layout (60 / 20 / 20 systems, noisy
    trajectories) where the n-body loader looks; the triangle graphs are generated."""
    (data_dir / "fa" / "EXP").mkdir(parents=True)
    write_pyg1_pickle(data_dir / "fa" / "EXP" / "GRAPHSAT.pkl", _exp_pairs(210))
    directory = data_dir / "fa" / "nbody"
    directory.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, size in (("train", 60), ("valid", 20), ("test", 20)):
        for kind in ("loc", "vel"):
            np.save(directory / f"{kind}_{name}_charged5_initvel1small.npy", rng.standard_normal((size, 49, 3, 5)))
        np.save(directory / f"charges_{name}_charged5_initvel1small.npy", rng.choice([-1.0, 1.0], (size, 5, 1)))


def test_exp_classify_runs_end_to_end_on_a_local_file(tmp_path) -> None:
    """The paper-scale EXP path on a tiny file in the published format placed where the loader looks (no
    download): GIN cannot tell the hexagon from the two triangles, so it scores 50%."""
    from tests.helpers import repro, rows_of, run_dirs

    write_dry_data(tmp_path / "data")
    repro("train", "paper=fa", "scale=smoke", f"results_dir={tmp_path / 'results'}", f"data_dir={tmp_path / 'data'}",
          "paper.exp_classify.enabled=true", "paper.exp_classify.epochs=2", "paper.nbody.methods=[const_vel]",
          "paper.graphs.methods=[gin]", "paper.exp_classify.sha256=null")   # the test's own file, not the pinned one
    rows = rows_of(run_dirs(tmp_path / "results", "fa")[0])
    exp = rows[rows["experiment"] == "exp_classify"].set_index("method")
    assert set(exp.index) == {"gin", "ga_gin_id", "fa_gin_id"}
    assert exp.loc["gin", "test/acc"] == 0.5


def test_gin_accuracy_bounded_by_size_only_rate() -> None:
    """Former claim gin_limited_by_wl, true by construction: on random 3-regular graphs plain GIN's output is a
    function of n alone (one 1-WL colouring per n), so no GIN, trained or not, beats the size-only rate."""
    from repro.papers.fa.task import size_only_rate

    graphs, labels = triangle_graphs(60, [12, 14, 16], 4)
    sizes = np.array([len(a) for a in graphs])
    every = np.arange(len(graphs))
    for seed in range(3):
        torch.manual_seed(seed)
        gin = graph_model("gin", 1, 16, 32, 3).eval()
        with torch.no_grad():
            logits = gin(*GraphSet(graphs, labels, 16, "gin").inputs(every, 1, np.random.default_rng(0)))
        for n in np.unique(sizes):
            torch.testing.assert_close(logits[sizes == n], logits[sizes == n][0].expand(int((sizes == n).sum())))
        accuracy = float(((logits > 0).numpy() == labels).mean())
        assert accuracy <= size_only_rate(graphs, labels) + 1e-12


def test_invariant_node_columns_follow_the_combinatorial_laplacian() -> None:
    """Oracles: scipy's Laplacian D - A and numpy's eigh. The paw graph (a triangle with a pendant; not regular,
    not bipartite) has the simple eigenvalues 0, 1, 3, 4, so each column is |v| of one eigenvector. The star
    K_{1,3} has eigenvalue 1 twice: its eigenspace {leaves, sum 0} has the projector I - J/3 on the leaves, so
    that column is sqrt(2/3) = 0.82 on each leaf and 0 on the centre (no basis of it gives these |v| one by one)."""
    from scipy.sparse.csgraph import laplacian

    paw = nx.to_numpy_array(nx.Graph([(0, 1), (1, 2), (2, 0), (2, 3)]), nodelist=range(4))
    values, vectors = np.linalg.eigh(laplacian(paw))
    np.testing.assert_allclose(values, [0, 1, 3, 4], atol=1e-12)
    np.testing.assert_array_equal(invariant_node_columns(paw), np.round(np.abs(vectors), 2))
    star = nx.to_numpy_array(nx.star_graph(3), nodelist=range(4))
    expected = np.array([[0.5, 0.0, 0.87], [0.5, 0.82, 0.29], [0.5, 0.82, 0.29], [0.5, 0.82, 0.29]])
    np.testing.assert_array_equal(invariant_node_columns(star), expected)  # 3/sqrt(12) = 0.87, 1/sqrt(12) = 0.29


def test_ids_give_each_node_its_position_in_the_sort() -> None:
    """Distinct ranks: the sort puts node i at position rank_i, so node i's one-hot ID is rank_i (the inverse of
    the sorting permutation, not the permutation itself)."""
    ranks = np.array([[2.0, 0.0, 3.0, 1.0]])
    ids = id_features(ranks, 3, np.random.default_rng(0))
    np.testing.assert_array_equal(ids.argmax(-1).numpy(), np.tile([2, 0, 3, 1], (1, 3, 1)))


def test_dense_gin_and_the_sampled_average_against_per_node_loops() -> None:
    """GIN (Xu et al.): h_i <- MLP((1 + eps) h_i + sum_{j ~ i} h_j) with networkx's neighbours, readout the
    concatenated per-layer sums; the sampled average is the plain mean of the backbone over the k ID samples."""
    from repro.papers.fa.graphs import DenseGIN, SampledAverage

    torch.manual_seed(0)
    g = nx.random_regular_graph(3, 8, seed=1)
    a = torch.as_tensor(nx.to_numpy_array(g, nodelist=range(8)), dtype=torch.float64)[None]
    mask = torch.ones(1, 8, dtype=torch.float64)
    x = torch.randn(1, 8, 5, dtype=torch.float64)
    gin = DenseGIN(5, 6, 2).double()
    with torch.no_grad():
        gin.eps.copy_(torch.tensor([0.3, -0.2]))
        h, pooled = gin.embed(x[0]), []
        for eps, mlp in zip(gin.eps, gin.mlps):
            h = torch.stack([mlp((1 + eps) * h[i] + sum(h[j] for j in g.neighbors(i))) for i in range(8)])
            pooled.append(h.sum(0))
        torch.testing.assert_close(gin(x, a, mask), gin.readout(torch.cat(pooled))[None, 0])
        ids = id_features(np.zeros((1, 8)), 4, np.random.default_rng(0)).double()  # (1, 4, 8, 8)
        average = SampledAverage(DenseGIN(5 + 8, 6, 2).double())
        each = [average.backbone(torch.cat([x, ids[:, s]], -1), a, mask) for s in range(4)]
        torch.testing.assert_close(average(ids, a, mask, x), torch.stack(each).mean(0))


def test_simulator_initial_speeds_are_one_half() -> None:
    """EGNN's generator scales each initial velocity to norm 0.5; 20 steps of dt = 1e-3 later (saved frame 1 at
    every = 10) the median speed is still 0.5 to well within 1%."""
    data = simulate_charged(50, 2, frames=(1, 2), every=10)
    assert abs(np.median(np.linalg.norm(data["v_in"], axis=-1)) - 0.5) < 5e-3


def test_equivariance_error_is_zero_for_an_equivariant_map_and_sees_translations() -> None:
    """x + h v is E(3)-equivariant (positions rotate and shift, velocities only rotate): error at float32
    round-off. v alone ignores the shift t ~ N(0, I): squared error 5 |t|^2 per system, so the RMS over 4000
    systems is sqrt(5 E|t|^2) = sqrt(15) (chi-square_3 mean 3, s.e. of the mean 0.04)."""
    from repro.papers.fa.task import equivariance_error

    rng = np.random.default_rng(0)
    x, v = (torch.as_tensor(rng.standard_normal((4000, 5, 3)), dtype=torch.float) for _ in range(2))
    split = (x, v, torch.ones(4000, 5), x)
    assert equivariance_error(lambda x, v, q: x + 0.3 * v, split, 1) < 1e-5
    assert equivariance_error(lambda x, v, q: v, split, 1) == pytest.approx(15**0.5, rel=0.03)


def test_size_only_rate_is_the_best_function_of_n() -> None:
    """Brute force over every map from the graph sizes to a label."""
    from repro.papers.fa.task import size_only_rate

    rng = np.random.default_rng(0)
    sizes = rng.choice([12, 14, 16], 50)
    labels = rng.integers(0, 2, 50)
    graphs = [np.zeros((n, n)) for n in sizes]
    best = max(np.mean([guess[[12, 14, 16].index(n)] == y for n, y in zip(sizes, labels)])
               for guess in itertools.product([0, 1], repeat=3))
    assert size_only_rate(graphs, labels) == pytest.approx(best)
