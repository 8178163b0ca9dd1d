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

import numpy as np

Array = np.ndarray


def metropolis(start: Array, steps: int, proposal_std: float, rng: np.random.Generator,
               energy_difference: Callable[[Array, Array], Array]) -> Array:
    """(steps, chains, d) states of independent chains started at `start` (chains, d)."""
    x = start.copy()
    states = np.empty((steps, *start.shape))
    for t in range(steps):
        proposal = x + proposal_std * rng.standard_normal(x.shape)
        accept = np.log(rng.random(len(x))) < -energy_difference(x, proposal)
        x = np.where(accept[:, None], proposal, x)
        states[t] = x
    return states


def exact_difference(log_prob: Callable[[Array], Array]) -> Callable[[Array, Array], Array]:
    return lambda x, y: log_prob(x) - log_prob(y)


def first_order_difference(score: Callable[[Array], Array]) -> Callable[[Array, Array], Array]:
    """E(y) - E(x) ~ -s(x) . (y - x) with s an estimate of grad log p (the authors' rule)."""
    return lambda x, y: -(score(x) * (y - x)).sum(-1)


def trapezoid_difference(score: Callable[[Array], Array]) -> Callable[[Array, Array], Array]:
    """E(y) - E(x) ~ -1/2 (s(x) + s(y)) . (y - x) with s an estimate of grad log p."""
    return lambda x, y: -0.5 * ((score(x) + score(y)) * (y - x)).sum(-1)


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
