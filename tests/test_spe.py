"""SPE: spectral quantities against scipy/numpy and closed forms, exact basis invariance, the stability
probe's behaviour, cycle counts, and ZINC and Alchemy parsing on files written in the real format."""

import math
import pickle
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from scipy.sparse.csgraph import laplacian as scipy_laplacian
from scipy.spatial.distance import cdist
from torch_geometric.data import Batch

from repro.core.errors import DataUnavailableError
from repro.papers.spe.data import cycle_counts, graph_to_data, load_alchemy, load_zinc, random_graphs
from repro.papers.spe.models import LapPEEncoder, PEGDistances, SignNetEncoder, SPEEncoder, build_model
from repro.papers.spe.probe import dense_adjacency, er_probe, random_basis_change, sensitivity
from repro.papers.spe.spectral import (
    eigenpairs,
    eigenspace_indicators,
    gaussian_bumps,
    laplacian_from_adjacency,
    normalized_laplacian,
    spectral_tensor,
)
from repro.papers.spe.task import Standardizer, mean_abs_error

CENTERS = torch.linspace(0, 2, 8, dtype=torch.float64)


def er_graph(n: int = 15, p: float = 0.3, seed: int = 0) -> nx.Graph:
    graph = nx.erdos_renyi_graph(n, p, seed=seed)
    assert nx.is_connected(graph)
    return graph


def test_laplacian_matches_scipy_and_pyg() -> None:
    graph = er_graph()
    adjacency = nx.to_numpy_array(graph, nodelist=range(15))
    expected = scipy_laplacian(adjacency, normed=True)
    edge_index = torch.tensor(list(graph.edges)).t()
    edge_index = torch.cat([edge_index, edge_index.flip(0)], 1)
    assert np.allclose(normalized_laplacian(edge_index, 15).numpy(), expected, atol=1e-12)
    assert np.allclose(laplacian_from_adjacency(torch.tensor(adjacency)).numpy(), expected, atol=1e-12)
    eigvals, eigvecs, mask = eigenpairs(torch.tensor(expected), 5)  # the 5 smallest, ascending
    assert np.allclose(eigvals.numpy(), np.linalg.eigvalsh(expected)[:5], atol=1e-12) and mask.all()
    assert np.allclose(torch.tensor(expected) @ eigvecs, eigvecs * eigvals, atol=1e-12)


def test_cycle_spectrum_closed_form_and_numpy_agreement() -> None:
    n = 12
    eigvals, eigvecs, mask = eigenpairs(laplacian_from_adjacency(dense_adjacency(nx.cycle_graph(n))), n)
    closed = np.sort(1 - np.cos(2 * np.pi * np.arange(n) / n))
    assert np.allclose(eigvals.numpy(), closed, atol=1e-12)
    assert np.allclose(eigvals.numpy(), np.linalg.eigvalsh(scipy_laplacian(nx.to_numpy_array(nx.cycle_graph(n)),
                                                                         normed=True)), atol=1e-12)
    assert mask.all()
    groups = eigenspace_indicators(eigvals, mask, m=n).argmax(-1).tolist()
    assert groups == [0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6]  # k and n - k share an eigenvalue


def test_padding_is_masked_not_a_fake_zero_eigenvalue() -> None:
    eigvals, eigvecs, mask = eigenpairs(laplacian_from_adjacency(dense_adjacency(nx.path_graph(4))), 6)
    assert mask.tolist() == [True] * 4 + [False] * 2
    phi = gaussian_bumps(eigvals, mask, CENTERS, 0.5)
    assert torch.all(phi[4:] == 0)


def test_gaussian_bumps_match_their_closed_form() -> None:
    """phi_l(lambda) = exp(-((lambda - c_l) / w)^2): 1 at the centre, e^-1 one width away, e^-4 two widths away."""
    centers, width = torch.tensor([0.5, 1.5], dtype=torch.float64), 0.25
    eigvals = torch.tensor([0.5, 0.75, 1.0, 1.5], dtype=torch.float64)
    phi = gaussian_bumps(eigvals, torch.ones(4, dtype=torch.float64), centers, width)
    expected = torch.tensor([[1, math.exp(-16)], [math.exp(-1), math.exp(-9)], [math.exp(-4), math.exp(-4)],
                             [math.exp(-16), 1]], dtype=torch.float64)
    torch.testing.assert_close(phi, expected, rtol=1e-14, atol=0)


def test_all_pairs_with_phi_one_give_identity() -> None:
    graph = er_graph()
    eigvals, eigvecs, mask = eigenpairs(laplacian_from_adjacency(dense_adjacency(graph)), 15)
    w = spectral_tensor(eigvecs, torch.ones(15, 1, dtype=torch.float64))[..., 0]
    assert torch.allclose(w, torch.eye(15, dtype=torch.float64), atol=1e-12)


@pytest.mark.parametrize("graph", [nx.cycle_graph(12), er_graph(seed=3)], ids=["C12", "ER"])
def test_spectral_tensor_is_invariant_to_basis_changes(graph: nx.Graph) -> None:
    rng = np.random.default_rng(0)
    n = graph.number_of_nodes()
    eigvals, eigvecs, mask = eigenpairs(laplacian_from_adjacency(dense_adjacency(graph)), n)
    phi = gaussian_bumps(eigvals, mask, CENTERS, 0.5)
    for _ in range(5):
        q = random_basis_change(eigvals, mask, 1e-6, rng)
        assert torch.allclose(q @ q.T, torch.eye(n, dtype=torch.float64), atol=1e-12)
        rotated = eigvecs @ q
        assert (spectral_tensor(rotated, phi) - spectral_tensor(eigvecs, phi)).abs().max() < 1e-10
        if graph.number_of_edges() == n:  # C12: a genuine rotation inside 2-d eigenspaces moves raw eigenvectors
            assert (rotated - eigvecs).abs().max() > 1e-3


def test_spectral_tensor_is_permutation_equivariant() -> None:
    graph = er_graph(seed=5)
    adjacency = dense_adjacency(graph)
    perm = torch.as_tensor(np.random.default_rng(1).permutation(15))
    w = spectral_tensor(*reversed(_pairs(adjacency)))
    w_perm = spectral_tensor(*reversed(_pairs(adjacency[perm][:, perm])))
    assert torch.allclose(w_perm, w[perm][:, perm], atol=1e-10)


def _pairs(adjacency: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    eigvals, eigvecs, mask = eigenpairs(laplacian_from_adjacency(adjacency), 6)
    return gaussian_bumps(eigvals, mask, CENTERS, 0.5), eigvecs


def test_stability_probe_shows_the_theorem() -> None:
    """C12 with d = 5 (an eigenspace boundary): SPE bounded, hard partitions ~ 1/eps; d = 4 cuts a pair."""
    order = torch.as_tensor(np.random.default_rng(0).permutation(12))
    adjacency = dense_adjacency(nx.cycle_graph(12))[order][:, order]

    def ratio(encoding: str, d: int, eps: float) -> float:
        return sensitivity(adjacency, (0, 3), eps, encoding, d, 8, 0.5, 1e-6)

    for eps in (1e-2, 1e-4):
        assert ratio("spe", 5, eps) < 5
    for encoding in ("eigvecs", "projectors"):
        assert ratio(encoding, 5, 1e-4) > 10 * ratio(encoding, 5, 1e-2)  # grows as eps shrinks
        assert ratio(encoding, 5, 1e-4) > 1e3
    assert ratio("spe", 4, 1e-4) > 1e3


def _batch(graphs: list[nx.Graph], d: int) -> Batch:
    return Batch.from_data_list([graph_to_data(g, [0.0] * 4, d) for g in graphs])


def test_encoders_are_invariant_to_the_symmetries_they_claim() -> None:
    torch.manual_seed(0)
    graphs = [nx.cycle_graph(12), er_graph(seed=3)]
    batch = _batch(graphs, d=8)
    batch.eigvecs, batch.eigvals = batch.eigvecs.double(), batch.eigvals.double()
    rng = np.random.default_rng(2)
    changed = batch.clone()
    blocks, signs = [], []
    for g in range(len(graphs)):
        nodes = batch.batch == g
        q = random_basis_change(batch.eigvals[g], batch.eig_mask[g], 1e-6, rng)
        blocks.append(batch.eigvecs[nodes] @ q)
        signs.append(batch.eigvecs[nodes] * torch.as_tensor(rng.choice([-1.0, 1.0], 8)))
    changed.eigvecs = torch.cat(blocks)
    flipped = batch.clone()
    flipped.eigvecs = torch.cat(signs)

    spe = SPEEncoder(d=8, m=4, out_dim=5).double().eval()
    projectors = SPEEncoder(d=8, m=4, out_dim=5, hard_partition=True).double().eval()
    for encoder in (spe, projectors):
        assert torch.allclose(encoder(changed), encoder(batch), atol=1e-9)
    signnet = SignNetEncoder(d=8, out_dim=5).double().eval()
    assert torch.allclose(signnet(flipped), signnet(batch), atol=1e-9)
    assert not torch.allclose(signnet(changed), signnet(batch), atol=1e-6)  # signs only, not rotations
    lappe = LapPEEncoder(d=8, out_dim=5).double().eval()
    assert not torch.allclose(lappe(flipped), lappe(batch), atol=1e-6)


def test_spe_encoder_is_permutation_equivariant() -> None:
    torch.manual_seed(0)
    graph = er_graph(seed=4)
    perm = np.random.default_rng(3).permutation(15)
    relabelled = nx.relabel_nodes(graph, {int(old): new for new, old in enumerate(perm)})
    spe = SPEEncoder(d=15, m=4, out_dim=5).double().eval()
    a, b = _batch([graph], 15), _batch([relabelled], 15)
    for x in (a, b):
        x.eigvecs, x.eigvals = x.eigvecs.double(), x.eigvals.double()
    # relabelled node `new` is old node perm[new]
    assert torch.allclose(spe(b), spe(a)[torch.as_tensor(perm)], atol=1e-8)


def test_spe_rho_runs_gin_over_nodes_with_j_as_channel_then_sums_over_j() -> None:
    """The official GINPhi: for each column j, a GIN over the graph's nodes i with features W[:, j, :]; the
    encoding of node i is the sum over j of the GIN's output at i. Oracle: that loop, written out per graph
    with networkx's adjacency (a readout over i per column j instead gives other numbers)."""
    torch.manual_seed(0)
    graphs = [er_graph(n=9, p=0.4, seed=1), er_graph(n=12, p=0.3, seed=3)]
    batch = _batch(graphs, d=10)
    batch.eigvecs, batch.eigvals = batch.eigvecs.double(), batch.eigvals.double()
    spe = SPEEncoder(d=10, m=3, out_dim=4, rho_hidden=6, rho_layers=2).double().eval()
    with torch.no_grad():
        for layer in spe.rho:
            layer.eps.fill_(0.37)  # a nonzero eps weighs the node's own feature differently from its neighbours'
        out = spe(batch)
        expected = []
        for g, graph in enumerate(graphs):
            nodes = batch.batch == g
            w = spectral_tensor(batch.eigvecs[nodes], spe.phis(batch.eigvals[g], batch.eig_mask[g]))  # (n, n, m)
            adjacency = torch.as_tensor(nx.to_numpy_array(graph, nodelist=range(graph.number_of_nodes())))
            per_column = []
            for j in range(w.shape[1]):
                x = w[:, j, :]
                for layer in spe.rho:
                    x = layer.net((1 + layer.eps) * x + adjacency @ x)
                per_column.append(x)
            expected.append(torch.stack(per_column).sum(0))
    torch.testing.assert_close(out, torch.cat(expected), rtol=1e-10, atol=1e-10)


def _model_cfg() -> dict:
    return OmegaConf.to_container(OmegaConf.load(Path(__file__).parents[1] / "conf/paper/spe.yaml").model)


def test_projectors_baseline_sees_every_eigenspace_of_the_spectrum_spe_sees() -> None:
    """Same spectrum for both: every one of the d kept eigenpairs falls in exactly one projector channel."""
    cfg = _model_cfg()
    graph = er_graph(n=cfg["d"], p=0.3, seed=7)
    batch = _batch([graph], cfg["d"])
    projectors = build_model("projectors", cfg, 4).encoder
    indicators = projectors.phis(batch.eigvals, batch.eig_mask)
    distinct = len(np.unique(batch.eigvals[0].numpy().round(5)))
    assert distinct > cfg["m"]  # more eigenspaces than SPE has phis: a cap at m would drop some
    assert torch.equal(indicators.sum(-1), batch.eig_mask.to(indicators.dtype))
    assert int(indicators.sum((0, 1)).gt(0).sum()) == distinct


def test_peg_distances_are_eigenvector_distances_on_edges_and_sign_invariant() -> None:
    graph = er_graph(n=12, p=0.3, seed=4)
    batch = _batch([graph], d=10)
    peg = PEGDistances(k=5)
    z = batch.eigvecs[:, :5].numpy()
    expected = cdist(z, z)[batch.edge_index[0].numpy(), batch.edge_index[1].numpy()]
    np.testing.assert_allclose(peg(batch)[:, 0].numpy(), expected, rtol=1e-5, atol=1e-6)
    flipped = batch.clone()
    flipped.eigvecs = batch.eigvecs * torch.tensor([1.0, -1.0, -1.0, 1.0, -1.0] + [1.0] * 5)
    torch.testing.assert_close(peg(flipped), peg(batch))
    # With all n eigenvectors the rows are orthonormal: every distance is sqrt(2), PEG sees nothing (why k < d).
    full = _batch([graph], d=12)
    torch.testing.assert_close(PEGDistances(k=12)(full), torch.full((full.edge_index.shape[1], 1), 2**0.5),
                               rtol=1e-5, atol=1e-5)


def test_peg_gates_every_layer_and_adds_no_node_encoding() -> None:
    torch.manual_seed(0)
    cfg = _model_cfg()
    model = build_model("peg", cfg, 4).eval()
    assert model.encoder is None and len(model.edge_gates) == cfg["layers"]
    batch = _batch([er_graph(n=14, p=0.3, seed=5)], cfg["d"])
    with torch.no_grad():
        before = model(batch)
        batch.eigvecs = batch.eigvecs.roll(1, dims=0)  # other distances on the same edges
        assert not torch.allclose(model(batch), before, atol=1e-6)


def test_cycle_counts_match_known_graphs_and_triangles() -> None:
    assert cycle_counts(nx.complete_graph(4)) == [4, 3, 0, 0]
    assert cycle_counts(nx.cycle_graph(5)) == [0, 0, 1, 0]
    assert cycle_counts(nx.complete_bipartite_graph(3, 3)) == [0, 9, 0, 6]
    for seed in range(5):
        graph = nx.gnp_random_graph(14, 0.3, seed=seed)
        assert cycle_counts(graph)[0] == sum(nx.triangles(graph).values()) // 3


def _write_zinc_raw(raw: Path) -> None:
    """Two molecules per split in the layout of molecules.zip (pickled dicts of tensors) + .index files."""
    raw.mkdir(parents=True)
    ring = torch.zeros(5, 5, dtype=torch.long)
    for i in range(5):
        ring[i, (i + 1) % 5] = ring[(i + 1) % 5, i] = 1 + (i % 3)
    chain = torch.tensor([[0, 1, 0], [1, 0, 2], [0, 2, 0]])
    molecules = [
        {"atom_type": torch.tensor([0, 1, 2, 1, 0]), "bond_type": ring, "logP_SA_cycle_normalized": torch.tensor([0.5]),
         "num_atom": 5},
        {"atom_type": torch.tensor([3, 0, 4]), "bond_type": chain, "logP_SA_cycle_normalized": torch.tensor([-1.25]),
         "num_atom": 3},
    ]
    for split in ("train", "val", "test"):
        with open(raw / f"{split}.pickle", "wb") as f:
            pickle.dump(molecules, f)
        (raw / f"{split}.index").write_text("1,0\n")


def write_dry_data(data_dir: Path) -> None:
    """ZINC's raw files (molecules.zip's pickles and the subset's index files) where scale=dry reads them."""
    _write_zinc_raw(data_dir / "zinc-d37" / "raw")


def test_zinc_parsing_from_files_in_the_real_format(tmp_path: Path) -> None:
    _write_zinc_raw(tmp_path / "zinc" / "raw")
    splits = load_zinc(tmp_path / "zinc", subset=True, d=6)
    first, second = splits["train"]  # subset order follows the .index file: molecule 1, then 0
    assert first.num_nodes == 3 and first.y.item() == -1.25 and first.x.view(-1).tolist() == [3, 0, 4]
    assert second.edge_index.shape[1] == 10 and sorted(set(second.edge_attr.tolist())) == [1, 2, 3]
    assert first.eigvecs.shape == (3, 6) and first.eig_mask.tolist() == [[True] * 3 + [False] * 3]
    assert np.allclose(first.eigvals[0, :3].numpy(), [0.0, 1.0, 2.0], atol=1e-6)  # path P3: 0, 1, 2


def test_zinc_missing_offline_says_what_to_fetch(tmp_path: Path) -> None:
    with pytest.raises(DataUnavailableError, match="train/val/test.pickle"):
        load_zinc(tmp_path / "zinc", subset=True, d=6)


def _write_alchemy_raw(root: Path) -> None:
    """Two molecules in the TU-collection layout of alchemy_full (1-based node ids, one row per directed
    edge, 12 targets per graph) + the benchmark's one-line split files."""
    raw = root / "alchemy_full" / "raw"
    raw.mkdir(parents=True)
    triangle = [(1, 2), (2, 3), (3, 1)]
    edge = [(4, 5)]
    directed = [e for a, b in triangle + edge for e in ((a, b), (b, a))]
    (raw / "alchemy_full_A.txt").write_text("".join(f"{a}, {b}\n" for a, b in directed))
    (raw / "alchemy_full_edge_labels.txt").write_text("".join(f"{k}\n" for k in [0, 0, 1, 1, 2, 2, 3, 3]))
    (raw / "alchemy_full_graph_indicator.txt").write_text("1\n1\n1\n2\n2\n")
    (raw / "alchemy_full_node_labels.txt").write_text("0\n5\n2\n1\n0\n")
    targets = [[float(g * 12 + t) for t in range(12)] for g in range(2)]
    (raw / "alchemy_full_graph_attributes.txt").write_text("".join(", ".join(map(str, t)) + "\n" for t in targets))
    for name, indices in (("train", "1,0"), ("val", "0"), ("test", "1")):
        (root / f"{name}_al_10.index").write_text(indices + "\n")


def test_alchemy_parsing_from_files_in_the_real_format(tmp_path: Path) -> None:
    _write_alchemy_raw(tmp_path)
    splits = load_alchemy(tmp_path, d=4)
    pair, triangle = splits["train"]  # train order follows the index file: graph 1, then graph 0
    assert triangle.x.view(-1).tolist() == [0, 5, 2] and pair.x.view(-1).tolist() == [1, 0]
    assert triangle.y.tolist() == [[float(t) for t in range(12)]]
    assert sorted(set(triangle.edge_attr.tolist())) == [0, 1, 2] and pair.edge_attr.tolist() == [3, 3]
    assert np.allclose(triangle.eigvals[0, :3].numpy(), [0.0, 1.5, 1.5], atol=1e-6)  # K3: 0, 3/2, 3/2
    assert triangle.eig_mask.tolist() == [[True, True, True, False]]
    assert [g.num_nodes for g in splits["test"]] == [2]


def test_alchemy_without_split_files_says_what_to_place(tmp_path: Path) -> None:
    with pytest.raises(DataUnavailableError, match="train_al_10.index"):
        load_alchemy(tmp_path, d=4)


def test_alchemy_offline_download_fails_clearly(tmp_path: Path) -> None:
    for name in ("train", "val", "test"):
        (tmp_path / f"{name}_al_10.index").write_text("0\n")
    with pytest.raises(DataUnavailableError, match="alchemy_full.zip"):
        load_alchemy(tmp_path, d=4)


def test_planted_zinc_pickle_is_refused_without_running_it(tmp_path: Path) -> None:
    from repro.core.errors import ReproError
    from tests.helpers import Payload

    _write_zinc_raw(tmp_path / "zinc" / "raw")
    marker = tmp_path / "pwned"
    with open(tmp_path / "zinc" / "raw" / "val.pickle", "wb") as f:
        pickle.dump([{"atom_type": Payload(marker)}], f)
    with pytest.raises(ReproError, match="val.pickle is not a plain pickle"):
        load_zinc(tmp_path / "zinc", subset=True, d=6)
    assert not marker.exists()


def _numpy_spe_tensor(adjacency: np.ndarray, d: int, width: float) -> np.ndarray:
    """V[:, :d] diag(phi_l(lambda)) V[:, :d]^T per bump phi_l, from scipy's normalised Laplacian and numpy's eigh."""
    values, vectors = np.linalg.eigh(scipy_laplacian(adjacency, normed=True))
    phi = np.exp(-(((values[:d, None] - CENTERS.numpy()[None]) / width) ** 2))  # (d, m)
    return np.einsum("ik,kl,jk->ijl", vectors[:, :d], phi, vectors[:, :d])


def test_sensitivity_is_the_ratio_of_frobenius_norms_for_a_symmetric_perturbation() -> None:
    """||W(A + E) - W(A)||_F / ||L(A + E) - L(A)||_F with E = eps (e_i e_j^T + e_j e_i^T), written out in numpy."""
    graph = er_graph(n=12, p=0.35, seed=3)
    adjacency = nx.to_numpy_array(graph, nodelist=range(12))
    i, j, eps = 2, 7, 0.05
    perturbed = adjacency.copy()
    perturbed[i, j] += eps
    perturbed[j, i] += eps
    change = np.linalg.norm(_numpy_spe_tensor(perturbed, 5, 0.5) - _numpy_spe_tensor(adjacency, 5, 0.5))
    laplacian_change = scipy_laplacian(perturbed, normed=True) - scipy_laplacian(adjacency, normed=True)
    expected = change / np.linalg.norm(laplacian_change)
    got = sensitivity(torch.tensor(adjacency), (i, j), eps, "spe", 5, 8, 0.5, 1e-6)
    assert got == pytest.approx(expected, rel=1e-8)


def test_er_probe_gaps_are_the_eigengaps_at_and_below_d(monkeypatch: pytest.MonkeyPatch) -> None:
    """boundary_gap = lambda_{d+1} - lambda_d (1-based) and inner_gap = the smallest gap among lambda_1..lambda_d,
    from scipy's Laplacian of the very graphs the probe draws (recorded as it draws them)."""
    drawn, original = [], nx.erdos_renyi_graph

    def recording(*args, **kwargs) -> nx.Graph:
        drawn.append(original(*args, **kwargs))
        return drawn[-1]

    monkeypatch.setattr(nx, "erdos_renyi_graph", recording)
    rows = er_probe(count=3, n=10, p=0.45, d=4, eps=1e-3, m=8, width=0.5, tol=1e-6, seed=0)
    connected = [g for g in drawn if nx.is_connected(g)]
    assert len(connected) == 3
    for index, graph in enumerate(connected):
        values = np.linalg.eigvalsh(scipy_laplacian(nx.to_numpy_array(graph, nodelist=range(10)), normed=True))
        row = next(r for r in rows if r["graph"] == index)
        assert row["boundary_gap"] == pytest.approx(values[4] - values[3], abs=1e-10)
        assert row["inner_gap"] == pytest.approx(np.diff(values[:4]).min(), abs=1e-10)


def test_lappe_training_flips_whole_eigenvectors_by_plus_or_minus_one() -> None:
    """Training-time augmentation: each graph's eigenvector k is multiplied by s in {-1, +1}, never zeroed."""
    torch.manual_seed(0)
    batch = _batch([er_graph(n=12, seed=1), er_graph(n=15, seed=3)], d=8)
    lappe = LapPEEncoder(d=8, out_dim=8).train()
    with torch.no_grad():
        lappe.linear.weight.copy_(torch.eye(8))
        lappe.linear.bias.zero_()
        for _ in range(4):
            out = lappe(batch)
            torch.testing.assert_close(out.abs(), batch.eigvecs.abs())
            for g in range(2):
                ratio = out[batch.batch == g] / batch.eigvecs[batch.batch == g]
                assert torch.allclose(ratio, ratio[:1].expand_as(ratio))  # one sign per graph and eigenvector


def test_random_graphs_have_mean_degree_c_and_every_size_in_range() -> None:
    """G(n, p) with p = c / (n - 1): E[mean degree] = p (n - 1) = c. 400 graphs of n = 10, c = 3: the sample mean
    has standard error 2 sqrt(C(10, 2) p (1 - p)) / 10 / sqrt(400) = 0.032, so 3 +- 0.13 (4 s.e.)."""
    graphs = random_graphs(400, (10, 10), (3.0, 3.0), np.random.default_rng(0))
    mean_degree = np.mean([2 * g.number_of_edges() / g.number_of_nodes() for g in graphs])
    assert abs(mean_degree - 3.0) < 0.13
    sizes = {g.number_of_nodes() for g in random_graphs(40, (10, 12), (3.0, 3.0), np.random.default_rng(1))}
    assert sizes == {10, 11, 12}


class _Constant(torch.nn.Module):
    def __init__(self, value: list[float]) -> None:
        super().__init__()
        self.value = torch.tensor(value)

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.value.expand(batch.num_graphs, -1)


def test_standardised_mae_is_the_per_graph_mean_in_training_units() -> None:
    """MAE of a constant prediction over 7 graphs in batches of 3, against numpy: targets standardised with the
    training mean and (population) standard deviation, |error| averaged over graphs, per target."""
    rng = np.random.default_rng(0)
    train = rng.normal(2.0, 3.0, size=(50, 4))
    counts = rng.integers(0, 9, size=(7, 4)).astype(float)
    graphs = [graph_to_data(er_graph(n=8, p=0.5, seed=s), list(c), 4) for s, c in enumerate(counts)]
    target = Standardizer(train, "cpu")
    np.testing.assert_allclose(target(torch.tensor(counts, dtype=torch.float)).numpy(),
                               (counts - train.mean(0)) / train.std(0), rtol=1e-5, atol=1e-5)
    prediction = [0.1, -0.2, 0.3, 0.0]
    expected = np.abs(np.array(prediction) - (counts - train.mean(0)) / train.std(0)).mean(0)
    got = mean_abs_error(_Constant(prediction), graphs, target, batch_size=3, device="cpu")
    np.testing.assert_allclose(got, expected, rtol=1e-5)


@pytest.mark.parametrize("dataset", ["zinc", "alchemy"])
def test_zinc_mae_is_reported_in_the_targets_own_units(dataset: str, monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    """After a (1-epoch) training, ZINC's test MAE is |prediction - y| in the raw target's units: the model's
    standardised output mapped back with numpy's training mean and (population) std, against the raw targets.
    Alchemy's stays in standardised units. Targets with std ~4, so a dropped, inverted or squared factor shows."""
    import logging

    from repro.core.context import RunContext
    from repro.core.units import Unit
    from repro.papers.spe import task

    rng = np.random.default_rng(0)
    raw = {name: rng.normal(3.0, 4.0, size=(count, 1)) for name, count in (("train", 6), ("val", 3), ("test", 5))}
    splits = {name: [graph_to_data(er_graph(n=8, p=0.5, seed=s), list(y), 4) for s, y in enumerate(targets)]
              for name, targets in raw.items()}
    target = Standardizer(raw["train"], "cpu")
    built = []
    monkeypatch.setattr(task, "build_model", lambda *args: built.append(build_model(*args)) or built[-1])
    cfg = OmegaConf.create({"seed": 0, "scale": {"name": "test"}, "data_dir": str(tmp_path),
                            "data": {"dataset": dataset},
                            "model": {**_model_cfg(), "d": 4, "hidden": 8, "layers": 1},
                            "train": {"epochs": 1, "batch_size": 4, "lr": 1e-3, "weight_decay": 0.0,
                                      "warmup_steps": 0, "linear_decay": False}})
    ctx = RunContext(cfg, tmp_path, "cpu", Unit(dataset, "none"), logging.getLogger("test"))
    (tmp_path / "checkpoints").mkdir()  # the runner makes it before any unit
    row, = task.train_one(cfg, ctx, splits, target, "none")
    with torch.no_grad():
        prediction = built[0](Batch.from_data_list(splits["test"])).numpy().astype(float)
    mean, std = raw["train"].mean(0), raw["train"].std(0)
    if dataset == "zinc":
        expected = np.abs(prediction * std + mean - raw["test"]).mean()
    else:
        expected = np.abs(prediction - (raw["test"] - mean) / std).mean()
    assert row["test/mae"] == pytest.approx(expected, rel=1e-5)
