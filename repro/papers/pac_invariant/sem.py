"""Random linear SEMs over d nodes in topological order and their parameterised intervention family.

x = B x + D^{1/2} e, e ~ N(0, I): B is strictly lower-triangular (B[j, i] = weight of edge i -> j), D diagonal
noise variances, so Sigma = (I - B)^{-1} D (I - B)^{-T}. An intervention theta at a site j replaces the weights of
j's incoming edges (values ~ U[-2, 2]) and its noise std (log-uniform on [0.5, 2]); the target's own mechanism
is never touched, so regressing Y on its parents gives the same weights in every environment.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LinearSEM:
    weights: np.ndarray     # B, (d, d), strictly lower-triangular
    target: int             # index of Y
    sites: tuple[int, ...]  # intervened nodes

    @property
    def dim(self) -> int:
        return len(self.weights)

    @property
    def covariates(self) -> np.ndarray:
        return np.array([i for i in range(self.dim) if i != self.target])

    def parents(self, node: int) -> np.ndarray:
        return np.flatnonzero(self.weights[node])

    def sample_interventions(self, count: int, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
        """`count` environments, each (B(theta), noise variances(theta))."""
        environments = []
        for _ in range(count):
            weights, variances = self.weights.copy(), np.ones(self.dim)
            for site in self.sites:
                parents = self.parents(site)
                weights[site, parents] = rng.uniform(-2, 2, len(parents))
                variances[site] = np.exp(rng.uniform(np.log(0.5), np.log(2.0))) ** 2
            environments.append((weights, variances))
        return environments

    def covariances(self, environments: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, ...]:
        """Per environment: Sigma_XX (E, p, p), Sigma_XY (E, p), Sigma_YY (E,), p = d - 1 covariates."""
        inverse = np.linalg.inv(np.eye(self.dim) - np.stack([b for b, _ in environments]))
        variances = np.stack([v for _, v in environments])
        sigma = np.einsum("eij,ej,ekj->eik", inverse, variances, inverse)
        x, y = self.covariates, self.target
        return sigma[:, x][:, :, x], sigma[:, x, y], sigma[:, y, y]

    def intervention_covariances(self, count: int, rng: np.random.Generator,
                                 chunk: int = 256) -> tuple[np.ndarray, ...]:
        """``covariances(sample_interventions(count, rng))`` built `chunk` environments at a time (the same draws
        from `rng`): peak memory is the (count, p, p) result plus one chunk, not five (count, d, d) arrays."""
        p = self.dim - 1
        sxx, sxy, syy = np.empty((count, p, p)), np.empty((count, p)), np.empty(count)
        for start in range(0, count, chunk):
            part = slice(start, min(start + chunk, count))
            sxx[part], sxy[part], syy[part] = self.covariances(self.sample_interventions(part.stop - start, rng))
        return sxx, sxy, syy


def random_sem(d: int, max_parents: int, sites: int, rng: np.random.Generator) -> LinearSEM:
    """Node j draws min(j, max_parents) parents among 0..j-1, weights U([-1.5, -0.5] u [0.5, 1.5]); Y = node d//2.
    Sites: `sites` non-target nodes, at least one a child of Y (else nothing spurious ever shifts); a DAG whose
    target has no child is redrawn."""
    target = d // 2
    while True:
        weights = np.zeros((d, d))
        for j in range(1, d):
            parents = rng.choice(j, size=min(j, max_parents), replace=False)
            weights[j, parents] = rng.uniform(0.5, 1.5, len(parents)) * rng.choice([-1, 1], len(parents))
        children = np.flatnonzero(weights[:, target])
        if len(children):
            break
    first = rng.choice(children)
    others = [i for i in range(d) if i not in (target, first)]
    chosen = (first, *rng.choice(others, size=sites - 1, replace=False))
    return LinearSEM(weights, target, tuple(int(s) for s in chosen))
