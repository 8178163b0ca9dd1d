"""FunBaT: functional Bayesian Tucker decomposition with state-space GP priors over continuous indices.

    y_n = vec(W)^T (u^1(i_n1) kron ... kron u^K(i_nK)) + noise,   noise ~ N(0, 1 / tau)
    u^k_r ~ GP(0, Matern) independently,  vec(W) ~ N(0, v I),  tau ~ Gamma(a0, b0).

Inference (conditional moment matching, as the authors' code does it), one epoch = for each mode k:
  1. message from every observation to u^k(i_nk): with a_n = W_(k) (kron_{j != k} u^j(i_nj)),
     Lam_n = E[tau] W_(k) E[b b^T] W_(k)^T and eta_n = E[tau] y_n W_(k) E[b] (W at its posterior mean,
     b = kron of the other modes' factors, whose second moments are kron products of E[u u^T]);
     damped in natural parameters: new = rho old + (1 - rho) computed;
  2. messages at equal index values are summed, and a Kalman filter + RTS smoother over the sorted unique index
     values gives the posterior marginals of u^k (test index values ride in the chain without messages, so their
     factors are predicted from the neighbouring states only);
then the core (Gaussian, with the prior v I that the authors' code lacks) and tau (Gamma), both damped.
FunBaT-CP keeps only the superdiagonal of W.
"""

import numpy as np

from repro.papers.funbat.statespace import Matern, sample_prior, smooth


def batched_kron(parts: list[np.ndarray]) -> np.ndarray:
    """Row-wise Kronecker products: vectors (N, a), (N, b) -> (N, ab); matrices (N, a, a), (N, b, b) -> (N, ab, ab).
    The first factor varies slowest, matching W.reshape(-1) in C order."""
    out = parts[0]
    for part in parts[1:]:
        if out.ndim == 2:
            out = (out[:, :, None] * part[:, None, :]).reshape(len(out), -1)
        else:
            n, a, b = len(out), out.shape[1], part.shape[1]
            out = (out[:, :, None, :, None] * part[:, None, :, None, :]).reshape(n, a * b, a * b)
    return out


def unfold_core(core: np.ndarray, ranks: list[int], mode: int) -> np.ndarray:
    """W_(k) (R_k, prod of the other ranks), columns in the order of kron over the other modes (tensorly.unfold)."""
    return np.moveaxis(core.reshape(ranks), mode, 0).reshape(ranks[mode], -1)


class FunBaT:
    def __init__(self, ranks: list[int], kernel: Matern, cp: bool = False, prior_var: float = 1.0,
                 a0: float = 1.0, b0: float = 1.0, damping: float = 0.5, damping_tau: float = 0.6,
                 damping_core: float = 0.9, init_noise_fraction: float = 0.1) -> None:
        if cp and len(set(ranks)) != 1:
            raise ValueError(f"FunBaT-CP needs equal ranks per mode, got {ranks}")
        self.ranks, self.kernel, self.cp = list(ranks), kernel, cp
        self.prior_var, self.a0, self.b0 = prior_var, a0, b0
        self.damping, self.damping_tau, self.damping_core = damping, damping_tau, damping_core
        self.init_noise_fraction = init_noise_fraction
        size = int(np.prod(ranks))
        diagonal = np.ravel_multi_index([np.arange(ranks[0])] * len(ranks), ranks) if cp else np.arange(size)
        self.active = np.zeros(size, dtype=bool)
        self.active[diagonal] = True

    def fit(self, train_index: np.ndarray, y: np.ndarray, test_index: np.ndarray, epochs: int,
            rng: np.random.Generator) -> "FunBaT":
        """train_index (N, K) real-valued indices, y (N,); test_index (M, K) only places test points in the chains."""
        modes = train_index.shape[1]
        if modes != len(self.ranks):
            raise ValueError(f"indices have {modes} modes but ranks {self.ranks} have {len(self.ranks)}")
        self.grids = [np.unique(np.concatenate([train_index[:, k], test_index[:, k]])) for k in range(modes)]
        self.train_pos = [np.searchsorted(g, train_index[:, k]) for k, g in enumerate(self.grids)]
        self.y = y
        # initial posteriors: one draw from each factor's GP prior as the mean (the authors' i.i.d. U[0, 1) values
        # per index carry no smooth structure, and with one observation per index value every factor then shrinks
        # to zero) with identity covariances; random core; per-observation messages 1e-3 I and 1e-3 U[0, 1) that
        # the damped updates move away from (authors' code). E[tau] starts at 1 / (init_noise_fraction var(y)):
        # the authors' E[tau] = 1 (noise variance above the signal's on the synthetic tensors) makes the
        # all-zero factors an attracting fixed point
        self.means = [sample_prior(g, r, self.kernel, rng) for g, r in zip(self.grids, self.ranks)]
        self.covs = [np.broadcast_to(np.eye(r), (len(g), r, r)).copy() for g, r in zip(self.grids, self.ranks)]
        self.messages = [(np.broadcast_to(1e-3 * np.eye(r), (len(y), r, r)).copy(), 1e-3 * rng.random((len(y), r)))
                         for r in self.ranks]
        self.core_mean = np.where(self.active, rng.random(self.active.size), 0.0)
        self.core_cov = np.diag(self.active * 1.0)
        size = int(self.active.sum())
        self.core_natural = (1e-3 * len(y) * np.eye(size), 1e-3 * len(y) * rng.random(size))
        self.tau_a = self.a0 + len(y) / 2
        self.tau_b = self.tau_a * self.init_noise_fraction * np.var(y)
        self.train_rmse = []   # per epoch: the training fit of the posterior mean (the convergence record)
        for _ in range(epochs):
            for k in range(modes):
                self.update_mode(k)
            self.update_core()
            self.update_tau()
            fitted = batched_kron([self.means[k][self.train_pos[k]] for k in range(modes)]) @ self.core_mean
            self.train_rmse.append(float(np.sqrt(np.mean((fitted - y) ** 2))))
        return self

    @property
    def tau(self) -> float:
        return self.tau_a / self.tau_b

    def moments(self, k: int, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """E[u^k] (N, R_k) and E[u^k u^k^T] (N, R_k, R_k) at chain positions."""
        mean = self.means[k][positions]
        return mean, self.covs[k][positions] + mean[:, :, None] * mean[:, None, :]

    def damp(self, old: tuple, new: tuple, rho: float) -> tuple:
        return tuple(rho * o + (1 - rho) * n for o, n in zip(old, new))

    def update_mode(self, k: int) -> None:
        others = [j for j in range(len(self.ranks)) if j != k]
        firsts, seconds = zip(*(self.moments(j, self.train_pos[j]) for j in others))
        b_mean, b_second = batched_kron(list(firsts)), batched_kron(list(seconds))     # (N, P), (N, P, P)
        unfolded = unfold_core(self.core_mean, self.ranks, k)                            # (R_k, P)
        lam = self.tau * np.einsum("rp,npq,sq->nrs", unfolded, b_second, unfolded)
        eta = self.tau * self.y[:, None] * (b_mean @ unfolded.T)
        self.messages[k] = self.damp(self.messages[k], (lam, eta), self.damping)
        grid_lam = np.zeros((len(self.grids[k]),) + lam.shape[1:])
        grid_eta = np.zeros((len(self.grids[k]), lam.shape[1]))
        np.add.at(grid_lam, self.train_pos[k], self.messages[k][0])                       # ties share a state
        np.add.at(grid_eta, self.train_pos[k], self.messages[k][1])
        self.means[k], self.covs[k] = smooth(self.grids[k], grid_lam, grid_eta, self.kernel)

    def all_moments(self) -> tuple[np.ndarray, np.ndarray]:
        firsts, seconds = zip(*(self.moments(k, self.train_pos[k]) for k in range(len(self.ranks))))
        return batched_kron(list(firsts)), batched_kron(list(seconds))

    def update_core(self) -> None:
        b_mean, b_second = self.all_moments()
        active = self.active
        precision = self.tau * b_second[:, active][:, :, active].sum(0)
        linear = self.tau * (self.y[:, None] * b_mean[:, active]).sum(0)
        self.core_natural = self.damp(self.core_natural, (precision, linear), self.damping_core)
        # the likelihood messages plus a weak prior v I (the authors' code has none; it keeps the inverse defined)
        cov = np.linalg.inv(self.core_natural[0] + np.eye(len(linear)) / self.prior_var)
        self.core_cov = np.zeros((active.size, active.size))
        self.core_cov[np.ix_(active, active)] = (cov + cov.T) / 2
        self.core_mean = np.zeros(active.size)
        self.core_mean[active] = cov @ self.core_natural[1]

    def update_tau(self) -> None:
        """E[(y - w^T b)^2] = y^2 - 2 y E[w]^T E[b] + tr(E[w w^T] E[b b^T]); Gamma(a0 + N / 2, b0 + sum / 2)."""
        b_mean, b_second = self.all_moments()
        w_second = self.core_cov + np.outer(self.core_mean, self.core_mean)
        residual = self.y**2 - 2 * self.y * (b_mean @ self.core_mean) + np.einsum("pq,npq->n", w_second, b_second)
        self.tau_b = self.damping_tau * self.tau_b + (1 - self.damping_tau) * (self.b0 + 0.5 * residual.sum())

    def factor_means(self, k: int, values: np.ndarray) -> np.ndarray:
        """Posterior mean of u^k at index values that are in the chain (training or test values)."""
        positions = np.searchsorted(self.grids[k], values)
        if not np.allclose(self.grids[k][np.minimum(positions, len(self.grids[k]) - 1)], values):
            raise ValueError(f"mode {k}: index values not in the chain; pass them as test_index to fit()")
        return self.means[k][positions]

    def predict(self, index: np.ndarray) -> np.ndarray:
        factors = [self.factor_means(k, index[:, k]) for k in range(index.shape[1])]
        return batched_kron(factors) @ self.core_mean
