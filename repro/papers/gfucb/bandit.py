"""Multitask contextual bandits on sklearn digits with a shared (learned) representation.

Task i in 1..M has mean reward mu_i(x) = theta_i^T phi*(x), phi*(x) = one-hot(digit label) in R^10,
theta_i = P w_i (P in R^{10 x r} shared, w_i ~ N(0, I_r / r)). Each round every task sees K random images (arms)
and pulls one; reward r = mu_i(x) + N(0, sigma^2). Pseudo-regret uses mu (never the sampled reward).

Every learner is LinUCB on a feature map phi (Abbasi-Yadkori et al.):
    A_i = lam I + sum_s phi(x_s) phi(x_s)^T,  theta_hat_i = A_i^-1 sum_s phi(x_s) r_s,
    score(x) = theta_hat_i^T phi(x) + beta ||phi(x)||_{A_i^-1};
the methods differ only in phi: the true phi* (oracle), one network fitted on all tasks' data (shared: the
GFUCB surrogate of optimism over the joint multi-head class), or one network per task (independent).
"""

import numpy as np
import torch
from torch import nn

FEATURE_CHUNK = 1 << 26   # hidden activations (G x images x hidden floats) computed at once by features_table:
                          # 256 MB in float32; one chunk at cpu scale, 12 for 50 networks on MNIST's 60 000


class MultiHeadNet(nn.Module):
    """G feature networks phi_g: R^p -> R^k (p -> hidden -> k, ReLU) and M linear heads h_i in R^k.

    G = 1 shares phi across tasks; G = M gives task i its own network. Input (M, t, p) -> features (M, t, k).
    """

    def __init__(self, groups: int, tasks: int, inputs: int, hidden: int, features: int,
                 generator: torch.Generator) -> None:
        super().__init__()

        def init(*shape: int) -> nn.Parameter:
            return nn.Parameter(torch.randn(*shape, generator=generator, dtype=torch.float32) / np.sqrt(shape[-2]))

        self.w1, self.w2 = init(groups, inputs, hidden), init(groups, hidden, features)
        self.b1 = nn.Parameter(torch.zeros(groups, 1, hidden, dtype=torch.float32))
        self.b2 = nn.Parameter(torch.zeros(groups, 1, features, dtype=torch.float32))
        self.heads = nn.Parameter(torch.zeros(tasks, features, dtype=torch.float32))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x @ self.w1 + self.b1) @ self.w2 + self.b2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted rewards (M, t)."""
        return (self.features(x) * self.heads[:, None, :]).sum(-1)


def fit_multihead(net: MultiHeadNet, x: torch.Tensor, r: torch.Tensor, steps: int, lr: float,
                  weight_decay: float) -> float:
    """Multi-head least squares: min sum_i (1/t) sum_s (h_i^T phi(x_is) - r_is)^2 (+ Adam's L2 weight decay),
    warm start.

    The task losses are summed, not averaged over tasks: with one network per task (G = M) each network and
    head then sees exactly its own single-task gradient, so independent learners are M copies of the
    single-task learner at every M (averaging would scale their data gradients by 1/M while Adam's weight
    decay stays, i.e. an M times stronger regularisation). With a shared network (G = 1) it is the usual
    penalised least squares over all tasks' data. Returns the last loss.
    """
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(steps):
        opt.zero_grad()
        loss = ((net(x) - r) ** 2).mean(1).sum()
        loss.backward()
        opt.step()
    return loss.item()


def sherman_morrison(a_inv: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(A + v v^T)^-1 from A^-1, batched: a_inv (M, k, k), v (M, k)."""
    av = np.einsum("mij,mj->mi", a_inv, v)
    return a_inv - av[:, :, None] * av[:, None, :] / (1 + np.einsum("mi,mi->m", v, av))[:, None, None]


def ucb_scores(phi: np.ndarray, a_inv: np.ndarray, b: np.ndarray, beta: float) -> np.ndarray:
    """phi (M, K, k) arms' features -> optimistic scores (M, K)."""
    theta = np.einsum("mij,mj->mi", a_inv, b)
    width = np.sqrt(np.maximum(np.einsum("mai,mij,maj->ma", phi, a_inv, phi), 0.0))
    return np.einsum("mai,mi->ma", phi, theta) + beta * width


def make_tasks(tasks: int, rank: int, classes: int, rng: np.random.Generator) -> np.ndarray:
    """theta (M, 10) with E||theta_i||^2 = 1: theta_i = P w_i, P orthonormal (10 x r), w_i ~ N(0, I_r / r).

    rank = classes gives i.i.d. full-rank heads N(0, I / 10).
    """
    basis = np.linalg.qr(rng.standard_normal((classes, rank)))[0]
    return rng.standard_normal((tasks, rank)) @ basis.T / np.sqrt(rank)


def play(method: str, images: np.ndarray, labels: np.ndarray, theta: np.ndarray, cfg, rng: np.random.Generator,
         generator: torch.Generator, checkpoints: list[int], device: str = "cpu") -> dict[int, float]:
    """Run one method for T rounds on M tasks; per-task cumulative pseudo-regret at each checkpoint round.

    The networks are fitted on ``device``; LinUCB's bookkeeping (k x k matrices per task) stays in numpy."""
    tasks, classes = theta.shape
    rounds, arms = cfg.rounds, cfg.arms
    means = theta[:, labels]                                   # (M, N): mu_i of every image
    pulled = np.zeros((tasks, rounds), dtype=int)
    rewards = np.zeros((tasks, rounds))
    dim = classes if method == "oracle" else cfg.features
    a_inv = np.tile(np.eye(dim) / cfg.lam, (tasks, 1, 1))
    b = np.zeros((tasks, dim))
    net = None
    if method in ("shared", "independent"):
        groups = 1 if method == "shared" else tasks
        net = MultiHeadNet(groups, tasks, images.shape[1], cfg.hidden, cfg.features, generator).to(device)
    x_all = torch.from_numpy(images).float().to(device)
    table = features_table(method, net, images, labels, classes, tasks, x_all)
    regret, curve = np.zeros(tasks), {}
    for t in range(rounds):
        if net is not None and t > 0 and t % cfg.refit_every == 0:
            index = torch.from_numpy(pulled[:, :t]).to(device)
            fit_multihead(net, x_all[index], torch.from_numpy(rewards[:, :t]).float().to(device), cfg.fit_steps,
                          cfg.lr, cfg.weight_decay)
            table = features_table(method, net, images, labels, classes, tasks, x_all)
            a_inv, b = rebuild(table, pulled[:, :t], rewards[:, :t], cfg.lam)   # old A_i is stale
        offered = rng.integers(0, len(labels), (tasks, arms))
        if method == "random":
            choice = rng.integers(0, arms, tasks)
        else:
            phi = np.take_along_axis(table, offered[:, :, None], axis=1)      # (M, K, k)
            choice = np.argmax(ucb_scores(phi, a_inv, b, cfg.beta), axis=1)
        chosen = offered[np.arange(tasks), choice]
        mu_offered = np.take_along_axis(means, offered, axis=1)
        regret += mu_offered.max(1) - means[np.arange(tasks), chosen]
        pulled[:, t] = chosen
        rewards[:, t] = means[np.arange(tasks), chosen] + cfg.noise * rng.standard_normal(tasks)
        if method != "random":
            v = table[np.arange(tasks), chosen]
            a_inv = sherman_morrison(a_inv, v)
            b += v * rewards[:, t:t + 1]
        if t + 1 in checkpoints:
            curve[t + 1] = float(regret.mean())
    return curve


def features_table(method: str, net: MultiHeadNet | None, images: np.ndarray, labels: np.ndarray, classes: int,
                   tasks: int, x_all: torch.Tensor | None = None) -> np.ndarray:
    """phi of every image for every task, (M, N, k); random gets a dummy table. ``x_all``: the images as a
    tensor on the network's device."""
    if method == "oracle":
        return np.broadcast_to(np.eye(classes)[labels], (tasks, len(labels), classes))
    if net is None:
        return np.zeros((tasks, len(labels), 1))
    with torch.no_grad():
        x_all = torch.from_numpy(images).float() if x_all is None else x_all
        rows = max(1, FEATURE_CHUNK // (net.w1.shape[0] * net.w1.shape[2]))   # images per chunk
        phi = torch.cat([net.features(x_all[None, i:i + rows]) for i in range(0, len(x_all), rows)], dim=1)
        phi = phi.double().cpu().numpy()                                                  # (G, N, k)
    return np.broadcast_to(phi, (tasks, *phi.shape[1:]))


def rebuild(table: np.ndarray, pulled: np.ndarray, rewards: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """A_i^-1 and b_i from all past pulls in the current feature space."""
    phi = np.take_along_axis(table, pulled[:, :, None], axis=1)             # (M, t, k)
    a = lam * np.eye(table.shape[2]) + np.einsum("mti,mtj->mij", phi, phi)
    return np.linalg.inv(a), np.einsum("mti,mt->mi", phi, rewards)
