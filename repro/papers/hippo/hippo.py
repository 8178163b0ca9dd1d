"""HiPPO transition matrices (LegS, LegT, FouT), their NPLR form, bilinear discretisation, closed-form bases.

Conventions follow state-spaces/s4 `src/models/hippo/hippo.py` (the "new" LegT and FouT of the paper):

- LegS: A_nk = -sqrt((2n+1)(2k+1)) (n > k), -(n+1) (n = k), 0 (n < k); B_n = sqrt(2n+1).
  Kernel of x' = A x + B u: K_n(t) = sqrt(2n+1) P_n(2 e^{-t} - 1) e^{-t}  (Legendre under exp warping).
- LegT: A_nk = -sqrt((2n+1)(2k+1)) (1 if k <= n else (-1)^(n-k)); B_n = sqrt(2n+1).
  Kernel -> sqrt(2n+1) P_n(1 - 2t) on [0, 1], 0 for t > 1, as N grows (a sliding window of length 1).
- FouT (the paper's appendix form): states (cos_0, sin_0, cos_1, sin_1, ...) rotating at 2 pi k, minus
  2 e e^T with e = (1, 0, sqrt2, 0, sqrt2, 0, ...); B = 2 e. The rank-1 term removes u(t - 1), read back
  from the truncated Fourier series, whose value at the window's edge is (u(t) + u(t - 1)) / 2: hence the
  2s. (The s4 repository's `fourier` uses pi k, -e e^T and B = e: the same system on a window of length 2.)
  Kernel -> (1, 0, sqrt2 cos 2 pi t, sqrt2 sin 2 pi t, ...) on [0, 1], 0 for t > 1.

Each A equals S - P P^T with S normal (S = -I/2 + skew for LegS, skew for LegT and FouT).
"""

from collections.abc import Callable

import numpy as np
import scipy.linalg
from scipy import special

MEASURES = ("legs", "legt", "fout")


def transition(measure: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(A, B) of the HiPPO ODE x' = A x + B u; A is (n, n), B is (n,)."""
    k = np.arange(n)
    if measure == "legs":
        r = np.sqrt(2 * k + 1)
        a = -np.tril(np.outer(r, r), -1) - np.diag(k + 1.0)
        return a, r.copy()
    if measure == "legt":
        r = np.sqrt(2 * k + 1)
        sign = np.where(k[None, :] <= k[:, None], 1.0, (-1.0) ** (k[:, None] - k[None, :]))
        return -np.outer(r, r) * sign, r.copy()
    if measure == "fout":
        if n % 2:
            raise ValueError(f"FouT needs an even state size (cos/sin pairs), got N = {n}")
        freqs = np.arange(n // 2)
        d = np.stack([np.zeros(n // 2), freqs], axis=-1).reshape(-1)[1:]   # 2 pi k couples states 2k, 2k+1
        e = np.zeros(n)
        e[0::2] = np.sqrt(2)
        e[0] = 1.0
        a = 2 * np.pi * (-np.diag(d, 1) + np.diag(d, -1)) - 2 * np.outer(e, e)
        return a, 2 * e
    raise ValueError(f"unknown HiPPO measure {measure!r}; choose from {MEASURES}")


def rank_correction(measure: str, n: int) -> np.ndarray:
    """P of shape (rank, n) with A + P^T P normal (LegS: P_n = sqrt(n + 1/2))."""
    k = np.arange(n)
    if measure == "legs":
        return np.sqrt(k + 0.5)[None, :]
    if measure == "legt":
        r = np.sqrt(2 * k + 1.0)
        even, odd = r.copy(), r.copy()
        even[1::2], odd[0::2] = 0.0, 0.0
        return np.stack([odd, even])
    if measure == "fout":
        return transition("fout", n)[1][None, :] / np.sqrt(2)
    raise ValueError(f"unknown HiPPO measure {measure!r}; choose from {MEASURES}")


def nplr(measure: str, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One mode of each conjugate pair of A = W (Lambda - P~^T conj(P~)) W^*, W = [V, conj V] unitary.

    Returns (Lambda (n/2,), P~ (rank, n/2), B~ (n/2,), V (n, n/2)); the other half of every quantity is its
    complex conjugate (A, B, P are real), so a kernel over all n modes is 2 Re of the kernel over these.
    S = A + P^T P is normal with constant real diagonal part re; diagonalising the Hermitian -i(S - re I)
    with `eigh` gives a unitary basis (diagonalising A itself is exponentially ill-conditioned). As in the s4
    repository's `nplr`, the modes with negative imaginary part are kept. A zero eigenvalue of the real
    skew matrix S - re I (FouT's constant and dead sine state) has a real eigenspace of even dimension: its
    real orthonormal basis z_1, z_2, ... is paired into the modes (z_1 + i z_2) / sqrt 2, ..., whose
    conjugates complete the basis.
    """
    if n % 2:
        raise ValueError(f"the conjugate-pair form needs an even state size, got N = {n}")
    a, b = transition(measure, n)
    p = rank_correction(measure, n)
    s = a + p.T @ p
    re = np.mean(np.diag(s))
    skew = s - re * np.eye(n)
    im, v = np.linalg.eigh(-1j * skew)
    tol = 1e-9 * max(1.0, np.abs(im).max())
    zero = scipy.linalg.null_space(skew, rcond=tol / max(1.0, np.abs(im).max()))
    if zero.shape[1] != n - 2 * np.sum(im < -tol):
        raise ValueError(f"{measure}: the spectrum of S - re I is not symmetric about 0 within {tol:g}")
    v = np.concatenate([v[:, im < -tol], (zero[:, 0::2] + 1j * zero[:, 1::2]) / np.sqrt(2)], axis=1)
    lam = re + 1j * np.concatenate([im[im < -tol], np.zeros(zero.shape[1] // 2)])
    return lam, p @ v.conj(), v.conj().T @ b, v


def conjugate_pairs(lam: np.ndarray, p: np.ndarray, b: np.ndarray, v: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All n modes from one of each pair: (Lambda, conj Lambda), (P~, conj P~), (B~, conj B~), [V, conj V]."""
    return (np.concatenate([lam, lam.conj()]), np.concatenate([p, p.conj()], axis=-1),
            np.concatenate([b, b.conj()]), np.concatenate([v, v.conj()], axis=-1))


def bilinear(a: np.ndarray, b: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear (Tustin) discretisation: Abar = (I - dt/2 A)^-1 (I + dt/2 A), Bbar = (I - dt/2 A)^-1 dt B."""
    eye = np.eye(len(a))
    left = eye - dt / 2 * a
    return np.linalg.solve(left, eye + dt / 2 * a), np.linalg.solve(left, dt * b)


def closed_form_kernel(measure: str, n: int, t: np.ndarray) -> np.ndarray:
    """The paper's closed-form kernels K_n(t), shape (n, len(t)) (limit N -> infinity for LegT/FouT)."""
    t = np.asarray(t, dtype=float)
    k = np.arange(n)[:, None]
    if measure == "legs":
        return np.sqrt(2 * k + 1) * special.eval_legendre(k, 2 * np.exp(-t) - 1) * np.exp(-t)
    window = (t >= 0) & (t <= 1)
    return fixed_window_basis(measure, n, t) * window


def fixed_window_basis(measure: str, n: int, tau: np.ndarray) -> np.ndarray:
    """Orthonormal basis g_n(tau) on tau in [0, 1] (time since the present) for LegT and FouT; (n, len(tau))."""
    k = np.arange(n)[:, None]
    if measure == "legt":
        return np.sqrt(2 * k + 1) * special.eval_legendre(k, 1 - 2 * tau)
    if measure == "fout":
        freq = 2 * np.pi * (k // 2) * tau
        basis = np.where(k % 2 == 0, np.sqrt(2) * np.cos(freq), np.sqrt(2) * np.sin(freq))
        basis[0] = 1.0
        return basis
    raise ValueError(f"{measure!r} has no fixed window; choose legt or fout")


def legs_basis(n: int, tau: np.ndarray) -> np.ndarray:
    """LegS basis g_n(tau) = sqrt(2n+1) P_n(2 e^{-tau} - 1), orthonormal under the measure e^{-tau} d tau."""
    k = np.arange(n)[:, None]
    return np.sqrt(2 * k + 1) * special.eval_legendre(k, 2 * np.exp(-tau) - 1)


def recurrent_kernel(abar: np.ndarray, bbar: np.ndarray, c: np.ndarray, length: int) -> np.ndarray:
    """K_l = C Abar^l Bbar for l < length, step by step (the recurrent view); c is (N,), may be complex."""
    out, x = np.empty(length, dtype=np.result_type(c, abar)), bbar.astype(np.result_type(c, abar))
    for step in range(length):
        out[step] = c @ x
        x = abar @ x
    return out


def run_recurrence(abar: np.ndarray, bbar: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Final state of x_k = Abar x_{k-1} + Bbar u_k from x_{-1} = 0; u is (L,)."""
    x = np.zeros(len(abar))
    for value in u:
        x = abar @ x + bbar * value
    return x


def basis(measure: str, n: int, tau: np.ndarray) -> np.ndarray:
    """g_n(tau) of the measure (LegS: warped Legendre; LegT / FouT: the fixed-window basis); (n, len(tau))."""
    return legs_basis(n, tau) if measure == "legs" else fixed_window_basis(measure, n, tau)


def measure_density(measure: str, tau: np.ndarray) -> np.ndarray:
    """omega(tau): e^{-tau} for LegS, the indicator of the window tau in [0, 1] for LegT / FouT."""
    return np.exp(-tau) if measure == "legs" else ((tau >= 0) & (tau <= 1)).astype(float)


def reconstruct(measure: str, state: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """u(t - tau) ~ sum_n x_n g_n(tau): the history read back from the final state (no training)."""
    return state @ basis(measure, len(state), tau)


def projection(measure: str, n: int, history: Callable[[np.ndarray], np.ndarray], tau_max: float,
               panels: int = 400, nodes: int = 16) -> np.ndarray:
    """Exact projection coefficients c_n = int_0^tau_max h(tau) g_n(tau) omega(tau) d tau, shape (n,).

    h(tau) = u(t - tau) is the continuous history (zero for tau > tau_max, before the signal started).
    This is what the HiPPO state is meant to hold (the optimal approximation in L2(omega)); computed by
    composite Gauss-Legendre quadrature (`panels` x `nodes` points), independently of any SSM.
    """
    upper = tau_max if measure == "legs" else min(tau_max, 1.0)
    x, w = np.polynomial.legendre.leggauss(nodes)
    edges = np.linspace(0.0, upper, panels + 1)
    half = np.diff(edges)[:, None] / 2
    tau = (edges[:-1, None] + half * (x + 1)).ravel()
    weights = (half * w).ravel() * measure_density(measure, tau)
    return basis(measure, n, tau) @ (weights * history(tau))
