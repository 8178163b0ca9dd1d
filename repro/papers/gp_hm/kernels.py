"""The covariance functions of GP-HM and its single-kernel baselines, with their second derivatives in the
first argument, written in closed form as functions of the signed lag r = x - x'.

Spectral mixture (GP-HM): k(r) = sum_q w_q g_q(|r|) cos(2 pi f_q r) with w_q = exp(log_w_q) (weights estimated
in log space, the paper's Jeffreys prior) and g_q either
  SE ("GM"):         g(r) = exp(-a r^2),                          a = exp(log_ls_q) (inverse squared length)
  Matern-5/2 ("StM"): g(r) = (1 + c|r| + c^2 r^2 / 3) exp(-c|r|), c = sqrt(5) exp(log_ls_q)
The single-kernel baselines GP-SE and GP-Matern are the same g without the cosine (f = 0).
"""

import math

import torch

KERNELS = ("se_cos", "matern_cos", "se", "matern")


def envelope_and_derivatives(kind: str, r: torch.Tensor, log_ls: torch.Tensor
                             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """g, dg/dr and d^2g/dr^2 at the signed lags r (broadcast against the components' log_ls)."""
    if kind.startswith("se"):
        a = torch.exp(log_ls)
        g = torch.exp(-a * r ** 2)
        return g, -2 * a * r * g, (4 * a ** 2 * r ** 2 - 2 * a) * g
    c = math.sqrt(5) * torch.exp(log_ls)
    rho = r.abs()
    decay = torch.exp(-c * rho)
    g = (1 + c * rho + c ** 2 * rho ** 2 / 3) * decay
    # Written without |r|'s derivative so autodiff-free values are exact at r = 0 (Matern-5/2 is C^2 there).
    dg = -(c ** 2 * r / 3) * (1 + c * rho) * decay
    ddg = -(c ** 2 / 3) * (1 + c * rho - c ** 2 * rho ** 2) * decay
    return g, dg, ddg


def kernel_and_second_derivative(kind: str, r: torch.Tensor, params: dict[str, torch.Tensor]
                                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """k(r) and d^2 k / dx^2 (= d^2 k / dr^2) summed over the components; r of any shape."""
    r = r.unsqueeze(-1)
    weights = torch.exp(params["log_w"])
    g, dg, ddg = envelope_and_derivatives(kind, r, params["log_ls"])
    if not kind.endswith("_cos"):
        return (weights * g).sum(-1), (weights * ddg).sum(-1)
    b = 2 * math.pi * params["freq"]
    cos, sin = torch.cos(b * r), torch.sin(b * r)
    k = weights * g * cos
    # (g h)'' = g'' h + 2 g' h' + g h'' with h = cos(b r)
    kxx = weights * (ddg * cos - 2 * b * dg * sin - b ** 2 * g * cos)
    return k.sum(-1), kxx.sum(-1)


def initial_parameters(kind: str, components: int, freq_scale: float, dtype: torch.dtype, device: str
                       ) -> dict[str, torch.Tensor]:
    """The official initialisation: log w = log(1/Q), log_ls = 0, f = linspace(0, 1, Q) x freq_scale.
    The single-kernel baselines have one component (Q identical components would stay identical)."""
    q = components if kind.endswith("_cos") else 1
    params = {"log_w": torch.full((q,), math.log(1 / q), dtype=dtype, device=device),
              "log_ls": torch.zeros(q, dtype=dtype, device=device)}
    if kind.endswith("_cos"):
        params["freq"] = torch.linspace(0, 1, q, dtype=dtype, device=device) * freq_scale
    return params
