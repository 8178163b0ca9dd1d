"""FlowState: ZOH against scipy, FFT scan against the recurrence, Legendre basis, OU law, rate consistency."""

import numpy as np
import pytest
import scipy.signal
import torch
from scipy.special import eval_legendre

from repro.papers.flowstate import data
from repro.papers.flowstate.models import FlowState, ScaledSSM, legendre_basis
from repro.papers.flowstate.task import resampled, rollout
from repro.papers.hippo.hippo import nplr


def _ssm(seed: int = 0) -> ScaledSSM:
    return ScaledSSM(width=3, states=8, block=4, rng=np.random.default_rng(seed)).double()


def test_hippo_n_init_has_real_part_one_half() -> None:
    lam = nplr("legs", 16)[0]
    assert np.allclose(np.linalg.eigvals(np.diag(lam)).real, -0.5, atol=1e-12)
    ssm = _ssm()
    assert torch.allclose(-ssm.log_neg_re.exp(), torch.full((8,), -0.5, dtype=torch.float64))


def test_zoh_matches_scipy_and_fft_scan_matches_recurrence() -> None:
    ssm = _ssm()
    u = torch.randn(2, 40, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    s = torch.tensor([1.0, 0.25], dtype=torch.float64)
    y = ssm(u, s)
    lam = torch.complex(-ssm.log_neg_re.exp(), ssm.im).detach().numpy()
    b, c = (torch.view_as_complex(t).detach().numpy() for t in (ssm.b, ssm.c))
    dt = ssm.log_dt.exp().detach().numpy()
    for batch in range(2):
        step = dt * s[batch].item()
        lam_bar, b_bar = np.exp(lam * step), (np.exp(lam * step) - 1) / lam
        # scipy's ZOH of one real mode x' = -a x + u
        ad, bd, *_ = scipy.signal.cont2discrete((np.array([[-0.5]]), np.array([[1.0]]), np.eye(1), np.zeros((1, 1))),
                                                step[0], method="zoh")
        assert ad[0, 0] == pytest.approx(np.exp(-0.5 * step[0])) and bd[0, 0] == pytest.approx((1 - ad[0, 0]) / 0.5)
        x = np.zeros(8, complex)
        for k in range(40):
            x = lam_bar * x + b_bar * (b @ u[batch, k].numpy())
            expected = (c @ x).real + ssm.d.detach().numpy() * u[batch, k].numpy()
            assert np.allclose(y[batch, k].detach().numpy(), expected, atol=1e-8)


def test_scaled_ssm_is_consistent_across_sampling_rates() -> None:
    """A smooth input seen hourly (s = 1) or every 15 min (s = 1/4) gives about the same final output."""
    ssm = _ssm(1)
    with torch.no_grad():
        ssm.log_dt.fill_(np.log(0.05))
    def signal(t: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.stack([np.sin(2 * np.pi * t / 24), np.cos(2 * np.pi * t / 50), t / 100], -1))[None]
    hourly = ssm(signal(np.arange(1, 201.0)), torch.tensor([1.0], dtype=torch.float64))[0, -1]
    fine = ssm(signal(np.arange(1, 801) / 4), torch.tensor([0.25], dtype=torch.float64))[0, -1]
    unscaled = ssm(signal(np.arange(1, 801) / 4), torch.tensor([1.0], dtype=torch.float64))[0, -1]
    assert torch.linalg.norm(hourly - fine) < 0.1 * torch.linalg.norm(hourly - unscaled)


def test_legendre_basis_matches_scipy() -> None:
    grid = np.linspace(-1, 1, 11)
    assert np.allclose(legendre_basis(6, grid), np.stack([eval_legendre(n, grid) for n in range(6)], 1))


def test_decoder_emits_any_horizon() -> None:
    model = FlowState(8, 8, 4, 1, 6, 3, seed=0)
    context = torch.randn(2, 64)
    assert model(context, 1.0, 48).shape == (2, 48, 3) and model(context, 0.25, 192).shape == (2, 192, 3)
    # decoder alone (no encoder layers, so the coefficients do not depend on s): step 4 at s = 1/4 is
    # the model time of step 1 at s = 1
    model.layers = torch.nn.ModuleList()
    assert torch.allclose(model(context, 0.25, 192)[:, 3], model(context, 1.0, 48)[:, 0], atol=1e-5)


def test_ou_exact_transition_law() -> None:
    z = data.ou_path(2000, 200, 2.0, np.random.default_rng(0))
    assert z.var() == pytest.approx(data.OU_SD**2, rel=0.03)
    lag1 = np.mean(z[:, 1:] * z[:, :-1]) / z.var()
    assert lag1 == pytest.approx(np.exp(-data.THETA * 2.0), abs=0.01)


def test_rollout_and_resampling_helpers() -> None:
    context = np.arange(10.0)[None]
    assert rollout(lambda c: c[:, -2:] + 2, context, 5).tolist() == [[10, 11, 12, 13, 14]]
    line = np.arange(-255, 1, dtype=float)[None] * 0.5                   # a ramp sampled every 2 h
    out = resampled(lambda x: x[:, -1:] + 0.25 * np.arange(1, 49)[None], line, 2.0, 24)
    assert np.allclose(out[0], 0.5 * np.arange(1, 25))                   # the same ramp continued


def test_co2_rates() -> None:
    weekly, monthly = data.co2("weekly"), data.co2("monthly")
    assert len(weekly) == 2284 and np.isfinite(weekly).all()
    assert 500 < len(monthly) < 540 and np.isfinite(monthly).all()
