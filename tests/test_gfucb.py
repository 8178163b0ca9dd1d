"""gfucb: LinUCB bookkeeping and the multi-head fit against closed forms."""

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from repro.papers.gfucb.bandit import (
    MultiHeadNet,
    fit_multihead,
    make_tasks,
    play,
    rebuild,
    sherman_morrison,
    ucb_scores,
)


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
