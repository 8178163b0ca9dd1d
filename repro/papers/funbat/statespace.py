"""Gaussian-process latent functions in state-space form, and their posterior given Gaussian messages.

A Matern-nu GP f(t) with variance s2 and lengthscale l is the first coordinate of a linear SDE state x(t):
- nu = 1/2: x = f, A(dt) = exp(-dt / l), P_inf = s2;
- nu = 3/2: x = (f, f'), lam = sqrt(3) / l, F = [[0, 1], [-lam^2, -2 lam]],
  A(dt) = expm(F dt) = exp(-lam dt) [[1 + lam dt, dt], [-lam^2 dt, 1 - lam dt]], P_inf = diag(s2, lam^2 s2);
and Q(dt) = P_inf - A P_inf A^T. R independent components stack into a block-diagonal state z (dim R d);
u = H z picks the f coordinates. Observations arrive as Gaussian messages exp(-u^T Lam u / 2 + eta^T u) per point.
"""

from dataclasses import dataclass

import numpy as np


@dataclass
class Matern:
    nu: float          # 0.5 or 1.5
    lengthscale: float
    variance: float

    def __post_init__(self) -> None:
        if self.nu not in (0.5, 1.5):
            raise ValueError(f"Matern nu = {self.nu} has no state-space form here; use 0.5 or 1.5")

    @property
    def state_dim(self) -> int:
        return 1 if self.nu == 0.5 else 2

    def stationary(self) -> np.ndarray:
        if self.nu == 0.5:
            return np.array([[self.variance]])
        lam = np.sqrt(3) / self.lengthscale
        return np.diag([self.variance, lam**2 * self.variance])

    def transition(self, dt: np.ndarray) -> np.ndarray:
        """A(dt) for a batch of gaps: (len(dt), d, d)."""
        if self.nu == 0.5:
            return np.exp(-dt / self.lengthscale)[:, None, None]
        lam = np.sqrt(3) / self.lengthscale
        decay = np.exp(-lam * dt)
        return decay[:, None, None] * np.stack([np.stack([1 + lam * dt, dt], -1),
                                                np.stack([-lam**2 * dt, 1 - lam * dt], -1)], -2)


def block(matrices: np.ndarray, components: int) -> np.ndarray:
    """kron(I_R, M) for a batch of matrices (..., d, d) -> (..., R d, R d)."""
    return np.kron(np.eye(components), matrices)


def sample_prior(grid: np.ndarray, components: int, kernel: Matern, rng: np.random.Generator) -> np.ndarray:
    """One draw of R independent GP paths at the sorted points `grid`: z_1 ~ N(0, P_inf),
    z_j = A_j z_{j-1} + N(0, Q_j). Returns (G, R)."""
    transitions = kernel.transition(np.diff(grid))                                  # (G - 1, d, d)
    stationary = kernel.stationary()
    factors = np.linalg.cholesky(stationary - transitions @ stationary @ _t(transitions)
                                 + 1e-12 * np.eye(kernel.state_dim))
    state = np.linalg.cholesky(stationary) @ rng.normal(size=(kernel.state_dim, components))
    paths = [state[0]]
    for transition, factor in zip(transitions, factors):
        state = transition @ state + factor @ rng.normal(size=state.shape)
        paths.append(state[0])
    return np.array(paths)


def prefix_scan(elements: tuple, combine, reverse: bool = False) -> tuple:
    """Inclusive scan x_k = x_1 o ... o x_k (or x_k o ... o x_G when reverse) of an associative operator over
    batched elements (arrays with leading axis G): log2(G) rounds of batched operations (Hillis-Steele)."""
    count, offset = len(elements[0]), 1
    while offset < count:
        if reverse:
            combined = combine(tuple(e[:-offset] for e in elements), tuple(e[offset:] for e in elements))
            elements = tuple(np.concatenate([c, e[-offset:]]) for c, e in zip(combined, elements))
        else:
            combined = combine(tuple(e[:-offset] for e in elements), tuple(e[offset:] for e in elements))
            elements = tuple(np.concatenate([e[:offset], c]) for c, e in zip(combined, elements))
        offset *= 2
    return elements


def _t(x: np.ndarray) -> np.ndarray:
    return np.swapaxes(x, -1, -2)


def combine_filtering(first: tuple, second: tuple) -> tuple:
    """(A, b, C, eta, J)_i o (A, b, C, eta, J)_j, i before j (Sarkka & Garcia-Fernandez 2021, Lemma 8)."""
    a_i, b_i, c_i, eta_i, j_i = first
    a_j, b_j, c_j, eta_j, j_j = second
    inverse = np.linalg.inv(np.eye(a_i.shape[-1]) + c_i @ j_j)                  # (I + C_i J_j)^{-1}
    left = a_j @ inverse
    right = _t(a_i) @ _t(inverse)          # (I + J_j C_i)^{-1} = ((I + C_i J_j)^{-1})^T: C, J symmetric
    return (left @ a_i,
            (left @ (b_i + (c_i @ eta_j[..., None])[..., 0])[..., None])[..., 0] + b_j,
            left @ c_i @ _t(a_j) + c_j,
            (right @ (eta_j - (j_j @ b_i[..., None])[..., 0])[..., None])[..., 0] + eta_i,
            right @ j_j @ a_i + j_i)


def combine_smoothing(first: tuple, second: tuple) -> tuple:
    """(E, g, L)_i o (E, g, L)_j = (E_i E_j, E_i g_j + g_i, E_i L_j E_i^T + L_i), i before j."""
    e_i, g_i, l_i = first
    e_j, g_j, l_j = second
    return e_i @ e_j, (e_i @ g_j[..., None])[..., 0] + g_i, e_i @ l_j @ _t(e_i) + l_i


def smooth(grid: np.ndarray, lam: np.ndarray, eta: np.ndarray, kernel: Matern) -> tuple[np.ndarray, np.ndarray]:
    """Posterior marginals of u(t) at the sorted unique points `grid` (G,) given messages lam (G, R, R) and
    eta (G, R): the Kalman filter and RTS smoother, computed as parallel prefix scans (Sarkka & Garcia-Fernandez
    2021) so that the work is log2(G) rounds of batched matrix operations. Returns means (G, R), covariances
    (G, R, R). Points without a message (zero lam and eta, e.g. test indices) are predicted from their neighbours.

    Messages enter in information form (no Lam^{-1}): with S = H Q H^T and M = (I + Lam S)^{-1},
    a filtering element is A = (I - Q H^T M Lam H) F, b = Q H^T M eta, C = (I - Q H^T M Lam H) Q,
    eta' = F^T H^T M eta, J = F^T H^T M Lam H F; the first point has F = 0 and Q = P_inf.
    """
    components, d = lam.shape[1], kernel.state_dim
    size = components * d
    h = np.kron(np.eye(components), np.eye(1, d))                           # (R, R d): u = H z
    transitions = block(kernel.transition(np.diff(grid)), components)        # (G - 1, R d, R d)
    stationary = block(kernel.stationary(), components)
    noises = stationary - transitions @ stationary @ _t(transitions)
    f = np.concatenate([np.zeros((1, size, size)), transitions])            # into point k from point k - 1
    q = np.concatenate([stationary[None], noises])
    qh = q @ h.T                                                             # (G, R d, R)
    m = np.linalg.inv(np.eye(components) + lam @ h @ qh)                    # (G, R, R)
    gain_lam_h = qh @ m @ lam @ h                                            # Q H^T M Lam H
    reduce = np.eye(size) - gain_lam_h
    hf = h @ f
    filtering = (reduce @ f, (qh @ m @ eta[..., None])[..., 0], reduce @ q,
                 (_t(hf) @ m @ eta[..., None])[..., 0], _t(hf) @ m @ lam @ hf)
    _, filt_mean, filt_cov, _, _ = prefix_scan(filtering, combine_filtering)
    filt_cov = (filt_cov + _t(filt_cov)) / 2
    pred_cov = transitions @ filt_cov[:-1] @ _t(transitions) + noises        # P_pred at points 2..G
    gains = _t(np.linalg.solve(pred_cov, transitions @ filt_cov[:-1]))       # E_k = P_f F^T P_pred^{-1}
    smoothing = (np.concatenate([gains, np.zeros((1, size, size))]),
                 np.concatenate([filt_mean[:-1] - (gains @ transitions @ filt_mean[:-1, :, None])[..., 0],
                                 filt_mean[-1:]]),
                 np.concatenate([filt_cov[:-1] - gains @ transitions @ filt_cov[:-1], filt_cov[-1:]]))
    _, mean, cov = prefix_scan(smoothing, combine_smoothing, reverse=True)
    covs = h @ cov @ h.T
    return mean @ h.T, (covs + _t(covs)) / 2
