"""gfucb: LinUCB bookkeeping and the multi-head fit against closed forms, the oracle bandit against a textbook
LinUCB written with explicit inverses, the feature network against its formula; the MNIST IDX reader."""

import gzip
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from repro.core.errors import DataUnavailableError
from repro.papers.gfucb.bandit import (
    MultiHeadNet,
    features_table,
    fit_multihead,
    make_tasks,
    play,
    rebuild,
    sherman_morrison,
    ucb_scores,
)
from repro.papers.gfucb.mnist import FILES, MIRROR, load_mnist
from tests.helpers import write_idx


def test_sherman_morrison_matches_inverse() -> None:
    rng = np.random.default_rng(0)
    a = np.stack([np.eye(6) + (lambda g: g @ g.T)(rng.standard_normal((6, 6))) for _ in range(3)])
    v = rng.standard_normal((3, 6))
    expected = np.linalg.inv(a + v[:, :, None] * v[:, None, :])
    np.testing.assert_allclose(sherman_morrison(np.linalg.inv(a), v), expected, rtol=1e-9, atol=1e-12)


def test_rebuild_equals_incremental_updates() -> None:
    rng = np.random.default_rng(1)
    table = rng.standard_normal((2, 50, 4))
    pulled, rewards = rng.integers(0, 50, (2, 30)), rng.standard_normal((2, 30))
    a_inv, b = np.tile(np.eye(4), (2, 1, 1)), np.zeros((2, 4))
    for t in range(30):
        v = table[np.arange(2), pulled[:, t]]
        a_inv, b = sherman_morrison(a_inv, v), b + v * rewards[:, t:t + 1]
    a_ref, b_ref = rebuild(table, pulled, rewards, 1.0)
    np.testing.assert_allclose(a_inv, a_ref, atol=1e-10)
    np.testing.assert_allclose(b, b_ref, atol=1e-10)


def test_ucb_mean_is_ridge_prediction() -> None:
    """beta = 0: the score is the ridge estimate theta = (X^T X + lam I)^-1 X^T r (numpy lstsq on augmented rows)."""
    rng = np.random.default_rng(2)
    x, r = rng.standard_normal((40, 5)), rng.standard_normal(40)
    a_inv, b = rebuild(x[None], np.arange(40)[None], r[None], 0.5)
    arms = rng.standard_normal((1, 3, 5))
    theta = np.linalg.lstsq(np.vstack([x, np.sqrt(0.5) * np.eye(5)]), np.concatenate([r, np.zeros(5)]), rcond=None)[0]
    np.testing.assert_allclose(ucb_scores(arms, a_inv, b, 0.0)[0], arms[0] @ theta, rtol=1e-9)
    widths = ucb_scores(arms, a_inv, b, 1.0)[0] - arms[0] @ theta
    np.testing.assert_allclose(widths, np.sqrt(np.einsum("ai,ij,aj->a", arms[0], a_inv[0], arms[0])), rtol=1e-9)


def test_adam_heads_match_least_squares() -> None:
    """With the representation frozen, the fitted heads reach the closed-form least-squares heads."""
    gen = torch.Generator().manual_seed(0)
    net = MultiHeadNet(1, 3, 8, 16, 4, gen)
    for p in (net.w1, net.b1, net.w2, net.b2):
        p.requires_grad_(False)
    x = torch.randn(3, 60, 8, generator=gen)
    r = torch.randn(3, 60, generator=gen)
    loss = fit_multihead(net, x, r, steps=400, lr=0.05, weight_decay=0.0)
    phi = net.features(x).detach().double().numpy()
    best = 0.0
    for i in range(3):
        expected, residual = np.linalg.lstsq(phi[i], r[i].double().numpy(), rcond=None)[:2]
        best += float(residual[0]) / 60              # the task losses are summed (each a mean over rounds)
        np.testing.assert_allclose(net.heads[i].detach().numpy(), expected, rtol=2e-2, atol=2e-2)
    assert loss == pytest.approx(best, rel=1e-3)


def test_independent_learners_do_not_depend_on_the_other_tasks() -> None:
    """With one network per task, task 0's fit is the same whether 1 or 4 tasks are fitted together."""
    gen = torch.Generator().manual_seed(1)
    x, r = torch.randn(4, 30, 8, generator=gen), torch.randn(4, 30, generator=gen)
    alone = MultiHeadNet(1, 1, 8, 16, 4, torch.Generator().manual_seed(2))
    together = MultiHeadNet(4, 4, 8, 16, 4, torch.Generator().manual_seed(3))
    with torch.no_grad():
        for name in ("w1", "b1", "w2", "b2", "heads"):
            getattr(together, name)[0] = getattr(alone, name)[0]
            getattr(together, name)[0] += 0.01 * (name == "heads")
            getattr(alone, name)[0] += 0.01 * (name == "heads")
    fit_multihead(alone, x[:1], r[:1], steps=50, lr=0.01, weight_decay=1e-2)
    fit_multihead(together, x, r, steps=50, lr=0.01, weight_decay=1e-2)
    torch.testing.assert_close(together.heads[0], alone.heads[0])
    torch.testing.assert_close(together.w1[0], alone.w1[0])


def test_low_rank_heads() -> None:
    theta = make_tasks(20, 3, 10, np.random.default_rng(3))
    assert np.linalg.matrix_rank(theta) == 3
    assert np.mean(np.sum(theta**2, 1)) == pytest.approx(1.0, rel=0.4)


def test_oracle_regret_sublinear_and_below_random() -> None:
    """Regret is computed from means: non-negative, non-decreasing; oracle LinUCB beats random play."""
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 10, 300)
    images = np.eye(10)[labels] + 0.01 * rng.standard_normal((300, 10))
    theta = make_tasks(4, 10, 10, rng)
    cfg = OmegaConf.create({"rounds": 200, "arms": 5, "noise": 0.1, "features": 10, "hidden": 8, "refit_every": 20,
                            "fit_steps": 5, "lr": 0.01, "weight_decay": 0.0, "beta": 1.0, "lam": 1.0})
    points = [50, 100, 200]
    gen = torch.Generator().manual_seed(0)
    oracle = play("oracle", images, labels, theta, cfg, np.random.default_rng(5), gen, points)
    random = play("random", images, labels, theta, cfg, np.random.default_rng(5), gen, points)
    values = [oracle[t] for t in points]
    assert all(v >= 0 for v in values) and values == sorted(values)
    assert oracle[200] < 0.5 * random[200]
    assert oracle[200] - oracle[100] < oracle[100] - oracle[0 + 50] + oracle[50]   # increments shrink


def write_mnist(root: Path, count: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """``count`` 28 x 28 images whose label is drawn as a bright bar in row band 2 * label (plus noise), in
    MNIST's two training files."""
    rng = np.random.default_rng(0)
    labels = np.arange(count) % 10
    images = rng.integers(0, 60, (count, 28, 28))
    for i, label in enumerate(labels):
        images[i, 2 * label + 4:2 * label + 6, 4:24] = 255
    write_idx(root / FILES["images"][0], images)
    write_idx(root / FILES["labels"][0], labels)
    return images, labels


def write_dry_data(data_dir: Path) -> None:
    """MNIST's training files (gzip IDX) under data_dir/mnist, where scale=paper reads them: 200 images."""
    write_mnist(data_dir / "mnist")


def test_mnist_reader_reads_idx_files(tmp_path: Path, caplog) -> None:
    images, labels = write_mnist(tmp_path, 30)
    with caplog.at_level(logging.WARNING):
        x, y = load_mnist(tmp_path, logging.getLogger("test"))
    assert x.shape == (30, 784) and x.min() >= 0 and x.max() == 1.0
    np.testing.assert_array_equal(x.reshape(30, 28, 28), images / 255.0)
    np.testing.assert_array_equal(y, labels)
    assert "not the canonical MNIST file" in caplog.text      # our small files are not the published ones


def test_mnist_reader_rejects_bad_files(tmp_path: Path) -> None:
    write_mnist(tmp_path, 30)
    images = tmp_path / FILES["images"][0]
    labels = tmp_path / FILES["labels"][0]
    write_idx(labels, np.arange(20) % 10)
    with pytest.raises(DataUnavailableError, match="20 labels for 30 images"):
        load_mnist(tmp_path)
    write_idx(labels, np.full(30, 11))
    with pytest.raises(DataUnavailableError, match="label 11 outside 0..9"):
        load_mnist(tmp_path)
    write_idx(images, np.zeros((30, 8, 8)))
    with pytest.raises(DataUnavailableError, match=r"shape \(8, 8\)"):
        load_mnist(tmp_path)
    write_idx(images, np.zeros((30, 784)))
    with pytest.raises(DataUnavailableError, match="magic number 00000802"):
        load_mnist(tmp_path)
    with gzip.open(images, "rb") as f:
        blob = f.read()
    with gzip.open(images, "wb") as f:
        f.write(bytes([0, 0, 8, 3]) + blob[4:-5])
    with pytest.raises(DataUnavailableError, match="truncated"):
        load_mnist(tmp_path)
    images.write_bytes(b"not gzip")
    with pytest.raises(DataUnavailableError, match=str(images)):
        load_mnist(tmp_path)


def test_missing_mnist_is_downloaded_with_its_pinned_checksum(tmp_path: Path, monkeypatch) -> None:
    asked = []

    def fake_fetch(url: str, dest: Path, checksum: str) -> Path:
        asked.append((url, dest, checksum))
        raise DataUnavailableError(f"cannot download {url}")

    monkeypatch.setattr("repro.papers.gfucb.mnist.fetch", fake_fetch)
    with pytest.raises(DataUnavailableError, match="train-images-idx3-ubyte.gz"):
        load_mnist(tmp_path)
    assert asked == [(MIRROR + "train-images-idx3-ubyte.gz", tmp_path / "train-images-idx3-ubyte.gz",
                      "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609")]


def test_feature_table_in_chunks_equals_one_pass(monkeypatch) -> None:
    """features_table bounds its activations by computing the images in chunks; the table is the same."""
    net = MultiHeadNet(3, 3, 16, 8, 4, torch.Generator().manual_seed(0))
    images = np.random.default_rng(0).random((50, 16))
    whole = features_table("independent", net, images, np.zeros(50, int), 10, 3)
    monkeypatch.setattr("repro.papers.gfucb.bandit.FEATURE_CHUNK", 3 * 8 * 7)     # 7 images per chunk
    np.testing.assert_allclose(features_table("independent", net, images, np.zeros(50, int), 10, 3), whole,
                               rtol=1e-6, atol=1e-6)


def linucb_reference(labels: np.ndarray, theta: np.ndarray, rounds: int, arms: int, lam: float, beta: float,
                     noise: float, rng: np.random.Generator) -> np.ndarray:
    """Textbook LinUCB on one-hot(label) per task (explicit A_i, np.linalg.inv), drawing the offered arms and then
    the reward noise of every round from rng in that order; returns the per-task cumulative pseudo-regret
    (against the best offered arm, from the means) after each round."""
    features = np.eye(10)[labels]
    means = theta @ features.T
    tasks = len(theta)
    a, b = np.stack([lam * np.eye(10)] * tasks), np.zeros((tasks, 10))
    regret, curve = np.zeros(tasks), []
    for _ in range(rounds):
        offered = rng.integers(0, len(labels), (tasks, arms))
        chosen = np.empty(tasks, dtype=int)
        for i in range(tasks):
            inverse, phi = np.linalg.inv(a[i]), features[offered[i]]
            scores = phi @ inverse @ b[i] + beta * np.sqrt(np.einsum("aj,jk,ak->a", phi, inverse, phi))
            chosen[i] = offered[i, np.argmax(scores)]
            regret[i] += means[i, offered[i]].max() - means[i, chosen[i]]
        rewards = means[np.arange(tasks), chosen] + noise * rng.standard_normal(tasks)
        for i in range(tasks):
            a[i] += np.outer(features[chosen[i]], features[chosen[i]])
            b[i] += features[chosen[i]] * rewards[i]
        curve.append(regret.mean())
    return np.array(curve)


def test_oracle_play_is_textbook_linucb() -> None:
    rng = np.random.default_rng(11)
    labels = rng.integers(0, 10, 200)
    theta = make_tasks(3, 10, 10, rng)
    cfg = OmegaConf.create({"rounds": 60, "arms": 4, "noise": 0.3, "features": 10, "hidden": 8, "refit_every": 20,
                            "fit_steps": 5, "lr": 0.01, "weight_decay": 0.0, "beta": 0.7, "lam": 2.5})
    points = list(range(1, 61))
    curve = play("oracle", np.zeros((200, 4)), labels, theta, cfg, np.random.default_rng(12),
                 torch.Generator().manual_seed(0), points)
    expected = linucb_reference(labels, theta, 60, 4, 2.5, 0.7, 0.3, np.random.default_rng(12))
    np.testing.assert_allclose([curve[t] for t in points], expected, rtol=1e-9, atol=1e-12)


def test_feature_network_is_a_relu_mlp() -> None:
    net = MultiHeadNet(2, 2, 5, 7, 3, torch.Generator().manual_seed(4))
    x = torch.randn(2, 6, 5, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        net.heads.normal_(generator=torch.Generator().manual_seed(6))
        w1, b1, w2, b2, heads = (p.numpy() for p in (net.w1, net.b1, net.w2, net.b2, net.heads))
        features, rewards = net.features(x).numpy(), net(x).numpy()
    for g in range(2):
        expected = np.maximum(x[g].numpy() @ w1[g] + b1[g], 0.0) @ w2[g] + b2[g]
        np.testing.assert_allclose(features[g], expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(rewards[g], expected @ heads[g], rtol=1e-5, atol=1e-6)


def test_refit_rebuild_without_a_change_of_features_continues_the_same_chain(monkeypatch) -> None:
    """With the network frozen (the refit a no-op), rebuilding A_i and b_i from every past pull after a refit gives
    the incremental state back, so the shared learner plays exactly as without refits."""
    monkeypatch.setattr("repro.papers.gfucb.bandit.fit_multihead", lambda *args, **kwargs: 0.0)
    rng = np.random.default_rng(13)
    labels, images = rng.integers(0, 10, 150), rng.random((150, 6))
    theta = make_tasks(3, 10, 10, rng)

    def curve(refit_every: int) -> list[float]:
        cfg = OmegaConf.create({"rounds": 40, "arms": 4, "noise": 0.3, "features": 5, "hidden": 8,
                                "refit_every": refit_every, "fit_steps": 1, "lr": 0.01, "weight_decay": 0.0,
                                "beta": 0.7, "lam": 2.5})
        played = play("shared", images, labels, theta, cfg, np.random.default_rng(14),
                      torch.Generator().manual_seed(15), list(range(1, 41)))
        return list(played.values())

    np.testing.assert_allclose(curve(7), curve(1000), rtol=1e-9)
