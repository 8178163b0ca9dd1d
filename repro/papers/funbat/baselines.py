"""Baselines of the paper's Table 1 that run on our data, and two of our own.

Discrete tensor methods on binned indices: bin edges per mode are equal-width over the TRAINING index range (test
indices are clipped into it); each observation keeps its own entry (repeats in a cell act as weights). Factors U^k
(B_k, R_k):  y_n ~= vec(W)^T (U^1[b_n1] kron ... kron U^K[b_nK]).
- Tucker-ALS (ours) / CP-ALS (ours): each row of U^k is a ridge least-squares fit over the observations in its bin,
  then W by ridge least squares (CP: W fixed to the superdiagonal of ones); an empty bin keeps a zero row.
- P-Tucker (Oh et al., ICDE 2018, as its official C++ code does it): the same row-wise ridge least squares with
  lambda = 0.001, but the core stays at its U[0, 1) initialisation, factors start U[0, 1), rows of empty bins keep
  their initial values, and the sweeps stop when the fit 1 - ||y - y_hat|| / ||y|| changes by <= 0.001.
- Tucker-SVI: Bayesian Tucker, u^k_i ~ N(0, I), vec(W) ~ N(0, I), y ~ N(vec(W)^T kron_k u^k, 1 / tau),
  tau ~ Gamma(a0, b0), mean-field q = prod_{k, i} N(u^k_i) N(vec W) Gamma(tau), fitted by stochastic variational
  inference (Hoffman et al., JMLR 2013): per minibatch S of the N entries, the coordinate optimum of each factor
  of q computed as if the data were S repeated N / |S| times, blended into the natural parameters with step
  rho_t = (delay + t)^-forgetting.
Functional (continuous indices):
- FTT-ALS (functional tensor train, Bigoni et al. 2016): f(x) = G_1(x_1) G_2(x_2) ... G_K(x_K), each core
  G_k(x) = sum_b C_k[b] phi_b(x) (r_{k-1} x r_k, r_0 = r_K = 1, inner TT ranks = the Tucker rank) on Legendre
  polynomials phi_b over the training range; ALS: with the others fixed f is linear in C_k, a ridge least squares.
  The polynomial degree is chosen on a validation part of the training entries.
- GP regression on the raw indices (sklearn).
"""

import numpy as np
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

from repro.papers.funbat.model import batched_kron, unfold_core


def bin_index(train_values: np.ndarray, values: np.ndarray, bins: int) -> np.ndarray:
    low, high = train_values.min(), train_values.max()
    return np.clip(((values - low) / (high - low) * bins).astype(int), 0, bins - 1)


def row_least_squares(cells: np.ndarray, design: np.ndarray, y: np.ndarray, bins: int, ridge: float
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Per bin b: argmin_u sum_{n in b} (y_n - design_n^T u)^2 + ridge |u|^2; returns (bins, R) and counts per bin."""
    rank = design.shape[1]
    gram = np.zeros((bins, rank, rank))
    rhs = np.zeros((bins, rank))
    np.add.at(gram, cells, design[:, :, None] * design[:, None, :])
    np.add.at(rhs, cells, design * y[:, None])
    return np.linalg.solve(gram + ridge * np.eye(rank), rhs[..., None])[..., 0], np.bincount(cells, minlength=bins)


class BinnedTucker:
    """Tucker-ALS / CP-ALS (ours) and P-Tucker on binned indices (see the module docstring)."""

    def __init__(self, ranks: list[int], bins: int, method: str, iterations: int, ridge: float,
                 tolerance: float = 0.0) -> None:
        if method not in ("tucker_als", "cp_als", "p_tucker"):
            raise ValueError(f"unknown binned ALS method {method!r}")
        self.ranks, self.bins, self.method, self.iterations = list(ranks), bins, method, iterations
        self.ridge, self.tolerance = ridge, tolerance

    def fit(self, index: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> "BinnedTucker":
        self.train_index = index
        cells = self.cells(index)
        modes = index.shape[1]
        size = int(np.prod(self.ranks))
        if self.method == "p_tucker":   # official code: frand(0, 1) for every factor and core entry
            self.factors = [rng.random((self.bins, r)) for r in self.ranks]
            self.core = rng.random(size)
        else:
            self.factors = [rng.normal(size=(self.bins, r)) for r in self.ranks]
            self.core = rng.normal(size=size)
        if self.method == "cp_als":
            self.core = np.zeros(size)
            self.core[np.ravel_multi_index([np.arange(self.ranks[0])] * modes, self.ranks)] = 1.0
        self.train_rmse = []   # per sweep: the training fit (the convergence record)
        previous_fit, self.stopped = None, False
        for _ in range(self.iterations):
            for k in range(modes):
                rows = [self.factors[j][cells[:, j]] for j in range(modes) if j != k]
                design = batched_kron(rows) @ unfold_core(self.core, self.ranks, k).T      # (N, R_k)
                solved, count = row_least_squares(cells[:, k], design, y, self.bins, self.ridge)
                # P-Tucker updates only rows with observations; ours set empty rows to the ridge solution 0
                self.factors[k] = np.where(count[:, None] > 0, solved, self.factors[k]) \
                    if self.method == "p_tucker" else solved
            if self.method == "tucker_als":
                design = batched_kron([self.factors[k][cells[:, k]] for k in range(modes)])
                self.core = np.linalg.solve(design.T @ design + self.ridge * np.eye(size), design.T @ y)
            residual = batched_kron([self.factors[k][cells[:, k]] for k in range(modes)]) @ self.core - y
            self.train_rmse.append(float(np.sqrt(np.mean(residual**2))))
            fit = 1 - np.linalg.norm(residual) / np.linalg.norm(y)
            if previous_fit is not None and abs(fit - previous_fit) <= self.tolerance:
                self.stopped = True   # P-Tucker's stopping rule (tolerance 0: run every sweep)
                break
            previous_fit = fit
        return self

    def cells(self, index: np.ndarray) -> np.ndarray:
        return np.stack([bin_index(self.train_index[:, k], index[:, k], self.bins)
                         for k in range(index.shape[1])], 1)

    def predict(self, index: np.ndarray) -> np.ndarray:
        cells = self.cells(index)
        return batched_kron([self.factors[k][cells[:, k]] for k in range(index.shape[1])]) @ self.core


def design_second_moment(core_mean: np.ndarray, core_cov: np.ndarray, ranks: list[int], k: int,
                         b_second: np.ndarray) -> np.ndarray:
    """E[a a^T] for a = W_(k) b with vec(W) ~ N(core_mean, core_cov) independent of b, given E[b b^T] (N, P, P):
    E[W_(k)] E[b b^T] E[W_(k)]^T + sum_{c, d} E[b b^T]_{cd} Cov(W_(k)[:, c], W_(k)[:, d]), shape (N, R_k, R_k)."""
    unfolded = unfold_core(core_mean, ranks, k)                                         # (R_k, P)
    position = unfold_core(np.arange(core_mean.size), ranks, k)                         # vec index of W_(k)
    cov_unfolded = core_cov[position[:, :, None, None], position[None, None, :, :]]     # (R_k, P, R_k, P)
    return (np.einsum("rp,npq,sq->nrs", unfolded, b_second, unfolded)
            + np.einsum("npq,rpsq->nrs", b_second, cov_unfolded))


class TuckerSVI:
    """Bayesian Tucker on binned indices by stochastic variational inference (see the module docstring).

    Coordinate optima of the mean-field factors, with E[.] under q and a_n = W_(k) b_n, b_n = kron_{j != k} u^j:
      q(u^k_i): precision I + E[tau] sum_{n in i} E[a_n a_n^T],  precision x mean = E[tau] sum_{n in i} y_n E[a_n];
      E[a a^T] = E[W_(k)] E[b b^T] E[W_(k)]^T + sum_{c, d} E[b b^T]_{cd} Cov(W_(k)[:, c], W_(k)[:, d]);
      q(W): precision I + E[tau] sum_n E[x_n x_n^T], precision x mean = E[tau] sum_n y_n E[x_n], x_n = kron_k u^k;
      q(tau): Gamma(a0 + N / 2, b0 + sum_n E[(y_n - vec(W)^T x_n)^2] / 2);
    second moments of Kronecker products are Kronecker products of second moments (independent factors)."""

    def __init__(self, ranks: list[int], bins: int, epochs: int, batch: int, delay: float, forgetting: float,
                 a0: float, b0: float, init_noise_fraction: float) -> None:
        self.ranks, self.bins, self.epochs, self.batch = list(ranks), bins, epochs, batch
        self.delay, self.forgetting, self.a0, self.b0 = delay, forgetting, a0, b0
        self.init_noise_fraction = init_noise_fraction

    def fit(self, index: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> "TuckerSVI":
        self.train_index = index
        cells = self.cells(index)
        n, size = len(y), int(np.prod(self.ranks))
        # natural parameters (precision, precision x mean): random N(0, 1) means with covariances 0.01 I. Starting
        # at the prior's unit covariances makes E[a a^T] >> E[a] E[a]^T in the first step, which shrinks every mean
        # towards the all-zero fixed point (mean-field VB collapses to predicting 0 on exact low-rank tensors)
        self.rows = [(np.broadcast_to(100 * np.eye(r), (self.bins, r, r)).copy(), 100 * rng.normal(size=(self.bins, r)))
                     for r in self.ranks]
        self.core_natural = (100 * np.eye(size), 100 * rng.normal(size=size))
        # E[tau] starts at 1 / (init_noise_fraction var(y)), as FunBaT's does
        self.tau_a = self.a0 + n / 2
        self.tau_b = self.tau_a * self.init_noise_fraction * np.var(y)
        self.train_rmse = []   # per epoch (the convergence record)
        step = 0
        for _ in range(self.epochs):
            order = rng.permutation(n)
            for start in range(0, n, self.batch):
                chosen = order[start:start + self.batch]
                rho = (self.delay + step) ** -self.forgetting
                self.svi_step(cells[chosen], y[chosen], n / len(chosen), rho)
                step += 1
            self.train_rmse.append(float(np.sqrt(np.mean((self.predict_cells(cells) - y) ** 2))))
        return self

    @property
    def tau(self) -> float:
        return self.tau_a / self.tau_b

    def row_moments(self, k: int, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cov = np.linalg.inv(self.rows[k][0][cells])
        mean = np.einsum("nij,nj->ni", cov, self.rows[k][1][cells])
        return mean, cov + mean[:, :, None] * mean[:, None, :]

    def core_moments(self) -> tuple[np.ndarray, np.ndarray]:
        cov = np.linalg.inv(self.core_natural[0])
        return cov @ self.core_natural[1], cov

    def blend(self, old: tuple, new: tuple, rho: float) -> tuple:
        return tuple((1 - rho) * o + rho * m for o, m in zip(old, new))

    def svi_step(self, cells: np.ndarray, y: np.ndarray, scale: float, rho: float) -> None:
        modes = len(self.ranks)
        for k in range(modes):
            others = [j for j in range(modes) if j != k]
            firsts, seconds = zip(*(self.row_moments(j, cells[:, j]) for j in others))
            b_mean, b_second = batched_kron(list(firsts)), batched_kron(list(seconds))   # (S, P), (S, P, P)
            core_mean, core_cov = self.core_moments()
            unfolded = unfold_core(core_mean, self.ranks, k)                                 # (R_k, P)
            second = design_second_moment(core_mean, core_cov, self.ranks, k, b_second)
            lam = np.zeros((self.bins,) + second.shape[1:])
            eta = np.zeros((self.bins, second.shape[1]))
            np.add.at(lam, cells[:, k], scale * self.tau * second)
            np.add.at(eta, cells[:, k], scale * self.tau * y[:, None] * (b_mean @ unfolded.T))
            self.rows[k] = self.blend(self.rows[k], (lam + np.eye(self.ranks[k]), eta), rho)
        firsts, seconds = zip(*(self.row_moments(k, cells[:, k]) for k in range(modes)))
        x_mean, x_second = batched_kron(list(firsts)), batched_kron(list(seconds))
        self.core_natural = self.blend(self.core_natural, (np.eye(x_mean.shape[1]) + scale * self.tau * x_second.sum(0),
                                                           scale * self.tau * y @ x_mean), rho)
        core_mean, core_cov = self.core_moments()
        w_second = core_cov + np.outer(core_mean, core_mean)
        residual = y**2 - 2 * y * (x_mean @ core_mean) + np.einsum("pq,npq->n", w_second, x_second)
        self.tau_b = (1 - rho) * self.tau_b + rho * (self.b0 + 0.5 * scale * residual.sum())

    def cells(self, index: np.ndarray) -> np.ndarray:
        return np.stack([bin_index(self.train_index[:, k], index[:, k], self.bins)
                         for k in range(index.shape[1])], 1)

    def predict_cells(self, cells: np.ndarray) -> np.ndarray:
        """Predictive mean E[vec(W)]^T kron_k E[u^k] (q factorises)."""
        means = [self.row_moments(k, cells[:, k])[0] for k in range(cells.shape[1])]
        return batched_kron(means) @ self.core_moments()[0]

    def predict(self, index: np.ndarray) -> np.ndarray:
        return self.predict_cells(self.cells(index))


class FunctionalTT:
    """FTT-ALS (see the module docstring): cores on Legendre polynomials of degree `degree` over the training range."""

    def __init__(self, rank: int, degree: int, sweeps: int, ridge: float) -> None:
        self.rank, self.degree, self.sweeps, self.ridge = rank, degree, sweeps, ridge

    def basis(self, k: int, values: np.ndarray) -> np.ndarray:
        """phi_b(x), b = 0..degree: Legendre P_b at x mapped from the training range onto [-1, 1] (clipped)."""
        low, high = self.low[k], self.high[k]
        return np.polynomial.legendre.legvander(np.clip(2 * (values - low) / (high - low) - 1, -1, 1), self.degree)

    def fit(self, index: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> "FunctionalTT":
        modes = index.shape[1]
        self.low, self.high = index.min(0), index.max(0)
        self.shapes = [(self.degree + 1, 1 if k == 0 else self.rank, 1 if k == modes - 1 else self.rank)
                       for k in range(modes)]
        self.cores = [rng.normal(size=shape) / np.sqrt(shape[1] * shape[2]) for shape in self.shapes]
        phis = [self.basis(k, index[:, k]) for k in range(modes)]
        self.train_rmse = []   # per sweep (the convergence record)
        for _ in range(self.sweeps):
            for k in [*range(modes), *range(modes - 2, 0, -1)]:   # left-to-right, then back
                left, right = self.partial(phis, 0, k), self.partial(phis, k + 1, modes)
                # f(x_n) = sum_{b,i,j} phi_b(x_nk) left_ni C_k[b, i, j] right_nj: linear in vec(C_k)
                design = np.einsum("nb,ni,nj->nbij", phis[k], left[:, 0, :], right[:, :, 0]).reshape(len(y), -1)
                solution = np.linalg.solve(design.T @ design + self.ridge * np.eye(design.shape[1]), design.T @ y)
                self.cores[k] = solution.reshape(self.shapes[k])
            self.train_rmse.append(float(np.sqrt(np.mean((self.evaluate(phis) - y) ** 2))))
        return self

    def partial(self, phis: list[np.ndarray], first: int, stop: int) -> np.ndarray:
        """prod_{j = first}^{stop - 1} G_j(x_nj), (N, r_first, r_stop); the identity when the range is empty."""
        n = len(phis[0])
        size = self.shapes[first][1] if first < len(self.shapes) else 1
        out = np.broadcast_to(np.eye(size), (n, size, size))
        for j in range(first, stop):
            out = out @ np.einsum("nb,bij->nij", phis[j], self.cores[j])
        return out

    def evaluate(self, phis: list[np.ndarray]) -> np.ndarray:
        return self.partial(phis, 0, len(phis))[:, 0, 0]

    def predict(self, index: np.ndarray) -> np.ndarray:
        return self.evaluate([self.basis(k, index[:, k]) for k in range(index.shape[1])])


def ftt_als(index: np.ndarray, y: np.ndarray, rank: int, degrees: list[int], sweeps: int, ridge: float,
            validation: float, rng: np.random.Generator) -> FunctionalTT:
    """FTT-ALS with the degree of lowest RMSE on a random `validation` fraction of the training entries, refitted
    on all of them."""
    held = rng.random(len(y)) < validation
    errors = [np.sqrt(np.mean((FunctionalTT(rank, d, sweeps, ridge).fit(index[~held], y[~held], rng)
                               .predict(index[held]) - y[held]) ** 2)) for d in degrees]
    return FunctionalTT(rank, degrees[int(np.argmin(errors))], sweeps, ridge).fit(index, y, rng)


def gp_regression(index: np.ndarray, y: np.ndarray, max_points: int, rng: np.random.Generator
                  ) -> GaussianProcessRegressor:
    """sklearn GP: constant x Matern(nu = 1.5, one lengthscale per mode) + white noise, hyper-parameters by
    marginal likelihood (one optimiser start, so no random restarts), on at most max_points random training
    entries."""
    chosen = rng.choice(len(y), size=min(max_points, len(y)), replace=False)
    kernel = ConstantKernel(1.0) * Matern(length_scale=np.full(index.shape[1], 0.2), nu=1.5) + WhiteKernel(0.01)
    return GaussianProcessRegressor(kernel, normalize_y=True, random_state=int(rng.integers(2**31))).fit(
        index[chosen], y[chosen])
