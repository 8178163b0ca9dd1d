"""Random-walk Metropolis-Hastings on p = exp(-E), with exact or auto-encoder-estimated energy differences.

Proposal x' = x + tau * N(0, I); accept with probability min(1, exp(-(E(x') - E(x)))). When only an
auto-encoder is known, grad E(x) = -grad log p(x) ~ -(r(x) - x) / sigma^2 (the paper's main result), and the
energy difference is estimated from that gradient, either to first order at the current state as the authors'
sampler does (mcmc_pof/metropolis_hastings_sampler.py: grad_E(current_x).dot(proposed_x - current_x)),
    E(x') - E(x) ~ grad E(x) . (x' - x),
or by the trapezoid line integral 1/2 (grad E(x) + grad E(x')) . (x' - x), which is antisymmetric in (x, x')
and so keeps detailed balance with respect to the estimated energy.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Array = np.ndarray


@dataclass(frozen=True)
class EnergyDifference:
    """E(y) - E(x) from a per-state quantity f (log p or a score estimate): ``rule(x, y, f(x), f(y))``.
    The chain evaluates f once per proposal and keeps f of its current states."""

    feature: Callable[[Array], Array]
    rule: Callable[[Array, Array, Array, Array], Array]

    def __call__(self, x: Array, y: Array) -> Array:
        return self.rule(x, y, self.feature(x), self.feature(y))


def metropolis(start: Array, steps: int, proposal_std: float, rng: np.random.Generator,
               difference: EnergyDifference) -> Array:
    """(steps, chains, d) states of independent chains started at `start` (chains, d)."""
    x = start.copy()
    fx = difference.feature(x)
    states = np.empty((steps, *start.shape))
    for t in range(steps):
        proposal = x + proposal_std * rng.standard_normal(x.shape)
        fy = difference.feature(proposal)
        accept = np.log(rng.random(len(x))) < -difference.rule(x, proposal, fx, fy)
        x = np.where(accept[:, None], proposal, x)
        fx = np.where(accept.reshape(-1, *[1] * (fx.ndim - 1)), fy, fx)
        states[t] = x
    return states


def exact_difference(log_prob: Callable[[Array], Array]) -> EnergyDifference:
    return EnergyDifference(log_prob, lambda x, y, log_px, log_py: log_px - log_py)


def first_order_difference(score: Callable[[Array], Array]) -> EnergyDifference:
    """E(y) - E(x) ~ -s(x) . (y - x) with s an estimate of grad log p (the authors' rule)."""
    return EnergyDifference(score, lambda x, y, sx, sy: -(sx * (y - x)).sum(-1))


def trapezoid_difference(score: Callable[[Array], Array]) -> EnergyDifference:
    """E(y) - E(x) ~ -1/2 (s(x) + s(y)) . (y - x) with s an estimate of grad log p."""
    return EnergyDifference(score, lambda x, y, sx, sy: -0.5 * ((sx + sy) * (y - x)).sum(-1))


def histogram_kl(samples: Array, log_prob: Callable[[Array], Array], half_width: float, bins: int) -> float:
    """KL(histogram of 2-D samples || p discretised on the same bins x bins grid over [-w, w]^2)."""
    edges = np.linspace(-half_width, half_width, bins + 1)
    counts, _, _ = np.histogram2d(samples[:, 0], samples[:, 1], bins=[edges, edges])
    q = counts.ravel() / counts.sum()
    centres = 0.5 * (edges[1:] + edges[:-1])
    grid = np.stack(np.meshgrid(centres, centres, indexing="ij"), -1).reshape(-1, 2)
    log_p = log_prob(grid)
    p = np.exp(log_p - log_p.max())
    p = p / p.sum()
    keep = q > 0
    return float((q[keep] * np.log(q[keep] / p[keep])).sum())
