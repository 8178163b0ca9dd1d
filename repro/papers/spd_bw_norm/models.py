"""SPDNet (BiMap, ReEig, LogEig) with three normalisations: none, SPDNetBN (affine-invariant, Brooks et
al. 2019) and GBWBN (generalized Bures-Wasserstein, with the fixed-M special case BW-BN).

Every layer works on (N, n, n) float64 batches. Batch statistics are computed without gradient, as in both
official layers; the learned quantities (bias G, metric M, shift s) get gradients through the normalised data.
"""

import torch
from torch import nn

from repro.papers.spd_bw_norm import spd

# method -> (normalisation, learnable metric M, matrix power theta)
METHODS = {
    "none": ("none", False, 1.0),
    "spdnetbn": ("ai", False, 1.0),
    "bwbn": ("bw", False, 1.0),
    "gbwbn": ("bw", True, 1.0),
    "gbwbn_p0.5": ("bw", True, 0.5),
    "gbwbn_p1.5": ("bw", True, 1.5),
}


class StiefelParameter(nn.Parameter):
    """A matrix with orthonormal columns, updated by a Riemannian step and a QR retraction."""


def random_stiefel(n_in: int, n_out: int, generator: torch.Generator) -> torch.Tensor:
    # As SPDNet's initialisation: leading eigenvectors of a random PSD matrix.
    a = torch.rand(n_in, n_in, dtype=torch.float64, generator=generator)
    return torch.linalg.svd(a @ a.T)[0][:, :n_out].contiguous()


class BiMap(nn.Module):
    """X -> W^T X W with W in the Stiefel manifold (n_in x n_out, n_out <= n_in)."""

    def __init__(self, n_in: int, n_out: int, generator: torch.Generator) -> None:
        super().__init__()
        self.weight = StiefelParameter(random_stiefel(n_in, n_out, generator))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight.T @ x @ self.weight


class SymmetricSPD(nn.Module):
    """An SPD parameter written as expm(S), S symmetric, so that any gradient step keeps it SPD."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.log = nn.Parameter(torch.zeros(n, n, dtype=torch.float64))

    def forward(self, power: float = 1.0) -> torch.Tensor:
        """The matrix power P^t = expm(t S): one eigendecomposition for any t."""
        return spd.expm_sym(power * spd.sym(self.log))


class SPDNetBN(nn.Module):
    """Brooks et al.: centre by the batch Karcher mean B (X -> B^-1/2 X B^-1/2), bias by G^1/2 (.) G^1/2."""

    def __init__(self, n: int, momentum: float, mean_iterations: int) -> None:
        super().__init__()
        self.bias = SymmetricSPD(n)
        self.momentum, self.mean_iterations = momentum, mean_iterations
        self.register_buffer("running_mean", torch.eye(n, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            with torch.no_grad():
                mean = spd.ai_karcher_mean(x, self.mean_iterations)
                self.running_mean = spd.ai_geodesic(self.running_mean, mean, self.momentum)
        else:
            mean = self.running_mean
        # The mean carries no gradient; G^1/2 = expm(S / 2).
        centred = spd.congruence(x, spd.root_pair(mean)[1])
        return spd.congruence(centred, self.bias(0.5))


class GBWBN(nn.Module):
    """Batch normalisation under the generalized BW metric with a matrix power theta.

    (1) Y = M^-1/2 X^theta M^-1/2 (and G' likewise) maps the GBW metric to the plain BW metric;
    (2) mu = BW barycenter of the batch; v = mean_i d^2(Y_i, I) / theta^2 (as the official layer);
    (3) centre: Log at mu, move to I, Exp at I; (4) scale: Exp_I(s / sqrt(v + eps) Log_I(.));
    (5) bias: Log at I, move to G', Exp at G'; (6) undo: M^1/2 (.) M^1/2, then the power 1/theta.
    """

    def __init__(self, n: int, learn_metric: bool, power: float, momentum: float, mean_iterations: int,
                 eps: float) -> None:
        super().__init__()
        self.bias = SymmetricSPD(n)
        self.metric = SymmetricSPD(n) if learn_metric else None
        self.shift = nn.Parameter(torch.ones((), dtype=torch.float64))
        self.power, self.momentum, self.mean_iterations, self.eps = power, momentum, mean_iterations, eps
        self.register_buffer("running_mean", torch.eye(n, dtype=torch.float64))
        self.register_buffer("running_var", torch.ones((), dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (1) G^theta = expm(theta S_G); with the metric, M^-1/2 = expm(-S_M / 2) and M^1/2 = expm(S_M / 2).
        y, bias = spd.powm(x, self.power), self.bias(self.power)
        if self.metric is not None:
            inv_root = self.metric(-0.5)
            y, bias = spd.congruence(y, inv_root), spd.congruence(bias, inv_root)
        if self.training:
            with torch.no_grad():
                mean = spd.bw_barycenter(y, self.mean_iterations)
                # As the official layer: the mean squared BW distance of the batch to I (not to mu), over theta^2.
                var = spd.bw_distance_sq_identity(y).mean() / self.power ** 2
                self.running_mean = spd.bw_geodesic(self.running_mean, mean, self.momentum)
                self.running_var = (1 - self.momentum) * self.running_var + self.momentum * var
        else:
            mean, var = self.running_mean, self.running_var
        # (3) The mean is a constant: one eigendecomposition serves Log at mu and the transport to I.
        mean_eig = spd.stable_eigh(mean)
        centred = spd.bw_exp_identity(spd.transport_to_identity_eig(mean_eig, spd.bw_log(mean, y)))
        scaled = spd.bw_exp_identity(self.shift / torch.sqrt(var + self.eps) * spd.bw_log_identity(centred))
        # (5) One eigendecomposition of G' serves the transport to G' and the Lyapunov solve of Exp at G'.
        bias_eig = spd.stable_eigh(bias)
        out = spd.bw_exp_eig(bias, bias_eig, spd.transport_from_identity_eig(bias_eig, spd.bw_log_identity(scaled)))
        if self.metric is not None:
            out = spd.congruence(out, self.metric(0.5))
        return spd.powm(out, 1 / self.power)


class SPDNet(nn.Module):
    """BiMap d0 -> d1 -> [BN] -> ReEig -> BiMap d1 -> d2 -> [BN] -> ReEig -> LogEig -> Linear."""

    def __init__(self, dims: list[int], classes: int, method: str, rectify_threshold: float, momentum: float,
                 mean_iterations: int, eps: float, generator: torch.Generator) -> None:
        super().__init__()
        kind, learn_metric, power = METHODS[method]
        self.maps = nn.ModuleList(BiMap(a, b, generator) for a, b in zip(dims[:-1], dims[1:]))
        norms: list[nn.Module] = []
        for n in dims[1:]:
            if kind == "ai":
                norms.append(SPDNetBN(n, momentum, mean_iterations))
            elif kind == "bw":
                norms.append(GBWBN(n, learn_metric, power, momentum, mean_iterations, eps))
            else:
                norms.append(nn.Identity())
        self.norms = nn.ModuleList(norms)
        self.rectify_threshold = rectify_threshold
        self.classifier = nn.Linear(dims[-1] ** 2, classes, dtype=torch.float64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for bimap, norm in zip(self.maps[:-1], self.norms[:-1]):
            x = spd.rectify(norm(bimap(x)), self.rectify_threshold)
        x = self.norms[-1](self.maps[-1](x))
        return self.classifier(spd.log_rectify(x, self.rectify_threshold).flatten(1))


class StiefelAdam(torch.optim.Adam):
    """Adam on the Euclidean parameters; on Stiefel parameters the gradient is first projected onto the
    tangent space (G - W sym(W^T G)) and the updated point is retracted by QR (signs fixed so R has a
    positive diagonal)."""

    def step(self, closure=None):  # noqa: ANN001, ANN201 (torch's signature)
        stiefel = [p for group in self.param_groups for p in group["params"]
                   if isinstance(p, StiefelParameter) and p.grad is not None]
        for p in stiefel:
            p.grad = p.grad - p @ spd.sym(p.T @ p.grad)
        loss = super().step(closure)
        with torch.no_grad():
            for p in stiefel:
                q, r = torch.linalg.qr(p)
                p.copy_(q * torch.sign(torch.diagonal(r)).unsqueeze(0))
        return loss


class MamemNet(nn.Module):
    """The paper's EEG network: Conv2d(1 -> 125, (8, 1)) + BN, Conv2d(125 -> 15, (1, 36), pad 18) + BN, the
    15 x 15 sample covariance over time (+ 1e-5 I), then SPDNet with one BiMap 15 -> 12 and its normalisation."""

    def __init__(self, channels: int, classes: int, method: str, rectify_threshold: float, momentum: float,
                 mean_iterations: int, eps: float, generator: torch.Generator) -> None:
        super().__init__()
        self.frontend = nn.Sequential(
            nn.Conv2d(1, 125, (channels, 1), dtype=torch.float64), nn.BatchNorm2d(125, dtype=torch.float64),
            nn.Conv2d(125, 15, (1, 36), padding=(0, 18), dtype=torch.float64), nn.BatchNorm2d(15, dtype=torch.float64))
        self.spdnet = SPDNet([15, 12], classes, method, rectify_threshold, momentum, mean_iterations, eps, generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        signals = self.frontend(x.unsqueeze(1)).squeeze(2)  # (N, 15, T')
        signals = signals - signals.mean(-1, keepdim=True)
        cov = signals @ signals.transpose(-1, -2) / (signals.shape[-1] - 1)
        return self.spdnet(cov + 1e-5 * spd.eye_like(cov))
