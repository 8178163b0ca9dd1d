"""FlowState against independent oracles: HiPPO-N spectrum, ZOH (scipy), FFT scan vs recurrence, rate
consistency of the continuous-time encoder, Legendre basis (numpy, scipy, Gauss quadrature), causal RevIN,
the parallel-prediction loss, the OU law, GIFT-Eval's protocol and metrics (closed-form CRPS), its parser."""

import math

import numpy as np
import pytest
import scipy.signal
import scipy.stats
import torch
from numpy.polynomial import legendre
from scipy.special import eval_legendre

from repro.core.errors import ConfigError, DataUnavailableError, ReproError
from repro.papers.flowstate import data, gift_eval
from repro.papers.flowstate.models import (
    FlowState,
    ScaledSSM,
    causal_stats,
    decoder_grid,
    fourier_basis,
    hippo_n,
    legendre_basis,
    with_missing,
)
from repro.papers.flowstate.task import resampled, rollout
from repro.papers.flowstate.training import contiguous_patch_mask, parallel_pinball


def _ssm(seed: int = 0, width: int = 3, states: int = 8, block: int = 4) -> ScaledSSM:
    return ScaledSSM(width, states, block, rng=np.random.default_rng(seed)).double()


def _model(seed: int = 0, layers: int = 2) -> FlowState:
    return FlowState(width=8, states=8, block=4, layers=layers, degree=6, quantiles=3, patch=24.0, seed=seed).double()


def test_hippo_n_spectrum_has_real_part_one_half() -> None:
    a = hippo_n(16)
    assert np.allclose(a + a.T, -np.eye(16))                       # -I/2 + skew-symmetric
    assert np.allclose(np.linalg.eigvals(a).real, -0.5, atol=1e-10)
    assert a[1, 0] == pytest.approx(np.sqrt(3 * 5) / 2)            # n_k = sqrt(2k + 3), lower part +n n^T/2
    assert torch.allclose(_ssm().eigenvalues().real, torch.full((8,), -0.5, dtype=torch.float64))


def _recurrence(ssm: ScaledSSM, u: np.ndarray, s: float) -> np.ndarray:
    """x_k = Lambda_bar x_{k-1} + B_bar u_k with scipy's ZOH matrices, y_k = Re(C x_k) + D u_k."""
    lam = ssm.eigenvalues().detach().numpy()
    b, c = (torch.view_as_complex(p).detach().numpy() for p in (ssm.b, ssm.c))
    dt = ssm.log_delta.exp().detach().numpy() * s
    a_bar, b_bar = np.empty(len(lam), complex), np.empty_like(b)
    for p in range(len(lam)):           # each state has its own step, so discretise state by state
        ad, bd, *_ = scipy.signal.cont2discrete((lam[p:p + 1, None], b[p:p + 1], np.eye(1), np.zeros((1, b.shape[1]))),
                                                dt[p], method="zoh")
        a_bar[p], b_bar[p] = ad[0, 0], bd[0]
    x, out = np.zeros(len(lam), complex), []
    for u_k in u:
        x = a_bar * x + b_bar @ u_k
        out.append((c @ x).real + ssm.d.detach().numpy() * u_k)
    return np.array(out)


def test_fft_scan_matches_zoh_recurrence_per_sample_and_shared_scale() -> None:
    ssm = _ssm()
    u = torch.randn(2, 40, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    per_sample = ssm(u, torch.tensor([1.0, 0.25], dtype=torch.float64))
    shared = ssm(u, torch.tensor([0.25], dtype=torch.float64))
    for batch, s in enumerate((1.0, 0.25)):
        assert np.allclose(per_sample[batch].detach().numpy(), _recurrence(ssm, u[batch].numpy(), s), atol=1e-8)
    assert np.allclose(shared[1].detach().numpy(), per_sample[1].detach().numpy(), atol=1e-10)


def test_untrained_ssm_is_rate_consistent() -> None:
    """The same continuous signal sampled every 1/r and 1/(2r) hours, with s = step in hours, gives nearly
    the same outputs at shared times; with s left at 1 the finer sampling runs the dynamics 2x too fast."""
    ssm = _ssm(1, width=3, states=16, block=8)
    with torch.no_grad():
        ssm.log_delta.copy_(torch.linspace(np.log(0.02), np.log(0.2), 16))

    def signal(t: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.stack([np.sin(2 * np.pi * t / 24), np.cos(2 * np.pi * t / 60), t / 100], -1))[None]

    def outputs(step: float, s: float) -> np.ndarray:
        t = step * np.arange(1, round(200 / step) + 1)
        return ssm(signal(t), torch.tensor([s], dtype=torch.float64))[0].detach().numpy()

    coarse, fine, unscaled = outputs(0.5, 0.5), outputs(0.25, 0.25), outputs(0.25, 0.5)
    shared = slice(1, None, 2)                                     # fine steps at the coarse times
    error = np.abs(fine[shared] - coarse).max()
    assert error < 0.05 * np.abs(coarse).max()
    assert error < 0.1 * np.abs(unscaled[shared] - coarse).max()
    reference = outputs(1 / 32, 1 / 32)                            # towards the continuous-time response
    coarse_error = np.abs(reference[15::16] - coarse).max()
    assert np.abs(reference[7::8] - fine).max() < 0.75 * coarse_error   # ZOH error shrinks with the step


def test_legendre_basis_matches_numpy_scipy_and_is_orthogonal() -> None:
    grid = np.linspace(-1, 1, 11)
    basis = legendre_basis(6, torch.as_tensor(grid)).numpy()
    assert np.allclose(basis, legendre.legvander(grid, 5))
    assert np.allclose(basis, np.stack([eval_legendre(n, grid) for n in range(6)], 1))
    nodes, weights = legendre.leggauss(20)                         # exact for degree <= 39
    p = legendre_basis(12, torch.as_tensor(nodes)).numpy()
    assert np.allclose((p * weights[:, None]).T @ p, np.diag(2 / (2 * np.arange(12) + 1)), atol=1e-12)


def test_fourier_basis_is_orthogonal_on_the_unit_interval() -> None:
    t = (np.arange(64) + 0.5) / 64                                 # midpoint rule: exact for these trig products
    f = fourier_basis(7, torch.as_tensor(t)).numpy()
    assert np.allclose(f[:, 1:3], np.stack([np.sin(2 * np.pi * t), np.cos(2 * np.pi * t)], 1))
    assert np.allclose(f.T @ f / 64, np.diag([1.0] + [0.5] * 6), atol=1e-12)


def test_decoder_variants_and_linear_head() -> None:
    context = torch.randn(2, 64, dtype=torch.float64)
    for basis, degree in (("hlegs", 6), ("fourier", 7)):
        model = FlowState(8, 8, 4, 1, degree, 3, 24.0, seed=0, basis=basis).double()
        assert model.forecast(context, 0.5, 48).shape == (2, 48, 3)
    linear = FlowState(8, 8, 4, 1, 6, 3, 24.0, seed=0, basis="linear").double()
    assert linear.max_steps(0.25) == linear.max_steps(4.0) == 24        # blind to s
    assert linear.forecast(context, 0.25, 40).shape == (2, 40, 3)
    with pytest.raises(ValueError, match="odd"):
        FlowState(8, 8, 4, 1, 6, 3, 24.0, seed=0, basis="fourier")
    with pytest.raises(ValueError, match="basis"):
        FlowState(8, 8, 4, 1, 6, 3, 24.0, seed=0, basis="chebyshev")


def test_decoder_grid_and_any_horizon() -> None:
    s = torch.tensor([1.0, 0.25], dtype=torch.float64)
    grid = decoder_grid(s, 96, patch=24.0)
    assert grid[0, 23].item() == pytest.approx(0.95) and grid[1, 95].item() == pytest.approx(0.95)
    assert torch.allclose(grid[1, 3::4], grid[0, :24])            # step 4j at s = 1/4 is step j at s = 1
    model = _model()
    context = torch.randn(2, 64, dtype=torch.float64)
    assert model.forecast(context, 1.0, 24).shape == (2, 24, 3)
    assert model.forecast(context, 0.25, 96).shape == (2, 96, 3)
    model.layers = torch.nn.ModuleList()                           # decoder alone: coefficients do not see s
    assert torch.allclose(model.forecast(context, 0.25, 96)[:, 3::4], model.forecast(context, 1.0, 24))


def test_multi_patch_forecast_reads_masked_positions() -> None:
    """Beyond one patch (fl steps) the official inference appends missing steps and reads step j from the
    position fl floor((j-1)/fl) (the last position for the final partial patch): rebuilt here one position
    at a time from single-patch forecasts of the NaN-extended context."""
    model = _model()
    context = torch.randn(2, 40, dtype=torch.float64, generator=torch.Generator().manual_seed(3)).cumsum(1)
    s, fl = 2.0, 12
    for horizon in (12, 23, 24, 30, 36):                # 23: horizon - fl + 1 = fl, the case the official index drops
        masked = horizon - fl
        expected = []
        for j in range(1, horizon + 1):
            p = min(fl * ((j - 1) // fl), masked)
            extended = torch.cat([context, torch.full((2, p), torch.nan, dtype=torch.float64)], 1)
            expected.append(model.forecast(extended, s, fl)[:, j - p - 1])
        assert torch.allclose(model.forecast(context, s, horizon), torch.stack(expected, 1), atol=1e-10)


def test_missing_value_channel() -> None:
    """NaN = missing: causal RevIN over the observed prefix only (numpy oracle), the mask reaches the
    encoder (a missing step is not a zero), and a missing step does not move the statistics."""
    x = torch.randn(2, 30, dtype=torch.float64, generator=torch.Generator().manual_seed(4)) * 3 + 1
    x[0, [0, 5, 6, 7, 20]] = torch.nan
    x[1, 12] = torch.nan
    mean, std = causal_stats(*with_missing(x))
    for b in range(2):
        row = x[b].numpy()
        for t in (4, 7, 12, 29):
            seen = np.isfinite(row[:t + 1])
            running = np.array([np.nanmean(row[:k + 1]) if np.isfinite(row[:k + 1]).any() else 0.0
                                for k in range(t + 1)])
            assert mean[b, t].item() == pytest.approx(row[:t + 1][seen].mean())
            deviations = ((row[:t + 1] - running)[seen]) ** 2
            assert std[b, t].item() == pytest.approx(np.sqrt(max(deviations.sum() / seen.sum(), 1e-5)))
    assert torch.equal(mean[0, 5:8], mean[0, 4:5].expand(3)) and torch.equal(std[0, 5:8], std[0, 4:5].expand(3))
    model = _model()
    scale = torch.tensor([1.0], dtype=torch.float64)
    zeros = torch.nan_to_num(x, nan=0.0)
    assert torch.isfinite(model.normalised_forecasts(x, scale, 5)).all()
    assert not torch.allclose(model.normalised_forecasts(x, scale, 5), model.normalised_forecasts(zeros, scale, 5))
    assert torch.isfinite(model.forecast(x, 1.0, 30)).all()


def test_contiguous_patch_mask() -> None:
    window = np.arange(60.0).reshape(3, 20)
    rng = np.random.default_rng(0)
    for _ in range(20):
        masked = contiguous_patch_mask(window, 15, 4, 1.0, rng)
        for row in np.isnan(masked):
            hits = np.flatnonzero(row)
            assert 1 <= len(hits) <= 4 and hits[-1] < 15 and np.all(np.diff(hits) == 1)   # one span in the context
    assert not np.isnan(window).any()                                 # the targets stay intact
    assert np.array_equal(contiguous_patch_mask(window, 15, 4, 0.0, rng), window)


def test_causal_revin_statistics_and_causality() -> None:
    x = torch.randn(3, 50, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 4 + 2
    mean, std = causal_stats(x)
    running = np.stack([x[:, :k + 1].numpy().mean(1) for k in range(50)], 1)
    for t in (0, 7, 49):
        assert np.allclose(mean[:, t], x[:, :t + 1].mean(1))
        deviations = (x[:, :t + 1].numpy() - running[:, :t + 1]) ** 2       # each x_k by its own running mean
        assert np.allclose(std[:, t], np.sqrt(np.maximum(deviations.mean(1), 1e-5)))
    model = _model()
    z = model.normalised_forecasts(x, torch.tensor([1.0], dtype=torch.float64), 5)
    changed = x.clone()
    changed[:, 30:] += 10
    z_changed = model.normalised_forecasts(changed, torch.tensor([1.0], dtype=torch.float64), 5)
    assert torch.allclose(z[:, :30], z_changed[:, :30], atol=1e-10)   # position t sees only the prefix
    assert not torch.allclose(z[:, 30:], z_changed[:, 30:])


def test_parallel_loss_equals_a_loop_over_context_lengths() -> None:
    """Every position t >= min_context - 1 forecasts the next patch; the same as forecasting from each prefix
    of the (masked) inputs, the pinball terms pooled over observed targets only."""
    model, s, min_context = _model(layers=1), 2.0, 8.0
    levels = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    window = torch.randn(2, 30 + 12, dtype=torch.float64, generator=torch.Generator().manual_seed(2)).cumsum(1)
    window[1, 33] = torch.nan                                       # a missing target
    inputs = window.clone()
    inputs[0, 10:14] = torch.nan                                    # a CPM span in the inputs only

    def loop(last_only: bool) -> float:
        total, count = 0.0, 0
        for t in range(29 if last_only else 3, 30):                 # first position floor(8 / 2) - 1 = 3
            prefix = inputs[:, :t + 1]
            mean, std = causal_stats(*with_missing(prefix))
            z = (model.forecast(prefix, s, 12) - mean[:, -1, None, None]) / std[:, -1, None, None]
            diff = ((window[:, t + 1:t + 13] - mean[:, -1:]) / std[:, -1:])[..., None] - z
            terms = torch.maximum(levels * diff, (levels - 1) * diff)
            observed = ~terms.isnan()
            total, count = total + terms[observed].sum().item(), count + observed.sum().item()
        return total / count

    assert parallel_pinball(model, window, s, min_context, levels, inputs=inputs).item() == \
        pytest.approx(loop(False), rel=1e-9)
    assert parallel_pinball(model, window, s, min_context, levels, parallel=False, inputs=inputs).item() == \
        pytest.approx(loop(True), rel=1e-9)                         # the ablation: the last position only


def test_ou_exact_transition_law() -> None:
    z = data.ou_path(2000, 200, 2.0, np.random.default_rng(0))
    assert z.var() == pytest.approx(data.OU_SD**2, rel=0.03)
    lag1 = np.mean(z[:, 1:] * z[:, :-1]) / z.var()
    assert lag1 == pytest.approx(np.exp(-data.THETA * 2.0), abs=0.01)


def test_rollout_and_resampling_helpers() -> None:
    context = np.arange(10.0)[None]
    assert rollout(lambda c: c[:, -2:] + 2, context, 5).tolist() == [[10, 11, 12, 13, 14]]
    line = np.arange(-255, 1, dtype=float)[None] * 0.5                   # a ramp sampled every 2 h
    out = resampled(lambda x: x[:, -1:] + 0.25 * np.arange(1, 49)[None], line, 2.0, 256, 24)
    assert np.allclose(out[0], 0.5 * np.arange(1, 25))                   # the same ramp continued


def test_co2_rates() -> None:
    weekly, monthly = data.co2("weekly"), data.co2("monthly")
    assert len(weekly) == 2284 and np.isfinite(weekly).all()
    assert 500 < len(monthly) < 540 and np.isfinite(monthly).all()


def test_gift_eval_protocol() -> None:
    assert [gift_eval.seasonality(f) for f in ("15T", "H", "2H", "D", "W-SUN", "M", "Q-DEC", "10S", "A-DEC")] == \
        [96, 24, 12, 1, 1, 12, 4, 360, 1]
    assert gift_eval.scale_factor("H", False) == 1 and gift_eval.scale_factor("15T", False) == 0.25
    assert gift_eval.scale_factor("D", True) == pytest.approx(24 / 7)
    assert gift_eval.scale_factor("D", False) == pytest.approx(24 / 365)
    assert gift_eval.scale_factor("W-SUN", False) == pytest.approx(24 / (365 / 7))
    assert gift_eval.scale_factor("M", False) == 2 and gift_eval.scale_factor("Q-DEC", False) == 6
    assert gift_eval.prediction_length("ett1/H", "H", "long") == 720
    assert gift_eval.prediction_length("m4_yearly", "A-DEC", "short") == 6
    assert gift_eval.num_windows("ett1/H", 17420, 48) == 20 and gift_eval.num_windows("x", 500, 48) == 2
    windows = list(gift_eval.test_instances(np.arange(20.0), 4, 2))
    assert [(len(h), f.tolist()) for h, f in windows] == [(12, [12, 13, 14, 15]), (16, [16, 17, 18, 19])]
    assert gift_eval.fill_missing(np.array([np.nan, 1, np.nan, 3])).tolist() == [1, 1, 1, 3]
    crop = gift_eval.official_context(np.array([5, np.nan, np.nan, 1, np.nan, 3]), 8, 2.0)   # last 4 steps
    assert np.array_equal(crop, np.array([1, np.nan, 3]), equal_nan=True)     # leading NaN dropped, inner kept
    assert gift_eval.official_context(np.full(5, np.nan), 8, 1.0).tolist() == [0.0] * 5
    with pytest.raises(ValueError, match="frequency"):
        gift_eval.parse_freq("fortnightly")


def test_gift_eval_metrics_against_closed_forms() -> None:
    rng = np.random.default_rng(0)
    histories = [rng.normal(5, 1, 60) for _ in range(40)]
    futures = [rng.normal(5, 1, 10) for _ in range(40)]
    levels = np.round(np.arange(1, 10) / 10, 1)
    # a point forecast at every level: mean over 0.1..0.9 of 2 x pinball = |error| -> CRPS proxy = MAE / mean |y|
    point = np.full((40, 10), 5.0)
    metrics = gift_eval.score(histories, futures, np.repeat(point[..., None], 9, 2), 7, levels)
    errors = np.abs(np.stack(futures) - 5)
    assert metrics["crps"] == pytest.approx(errors.sum() / np.abs(np.stack(futures)).sum())
    scales = [np.mean(np.abs(h[7:] - h[:-7])) for h in histories]
    assert metrics["mase"] == pytest.approx(np.mean([e.mean() / s for e, s in zip(errors, scales)]))
    # dense quantiles of N(5, 1): the weighted quantile loss approaches the closed-form Gaussian CRPS
    dense = np.linspace(0.005, 0.995, 199)
    q = np.broadcast_to(scipy.stats.norm.ppf(dense, loc=5), (40, 10, 199))
    z = np.stack(futures) - 5
    crps = z * (2 * scipy.stats.norm.cdf(z) - 1) + 2 * scipy.stats.norm.pdf(z) - 1 / math.sqrt(math.pi)
    got = gift_eval.score(histories, futures, q, 7, dense)["crps"]
    assert got == pytest.approx(crps.sum() / np.abs(np.stack(futures)).sum(), rel=0.02)


def test_gift_eval_offline_message(tmp_path) -> None:
    with pytest.raises(DataUnavailableError, match="huggingface-cli download Salesforce/GiftEval"):
        gift_eval.load_configuration(tmp_path / "GiftEval", "ett1/H")


def _write_arrow(folder, pa, targets: list, target_type, freq: str = "H") -> None:
    """A `datasets.save_to_disk` data file: an Arrow IPC stream with item_id, start, freq, target."""
    folder.mkdir(parents=True)
    table = pa.table({"item_id": [f"item{i}" for i in range(len(targets))],
                      "start": pa.array([np.datetime64("2016-07-01T00:00:00", "s")] * len(targets), pa.timestamp("s")),
                      "freq": [freq] * len(targets),
                      "target": pa.array(targets, target_type)})
    with pa.OSFile(str(folder / "data-00000-of-00001.arrow"), "wb") as sink, \
            pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)


def test_gift_eval_arrow_parser(tmp_path) -> None:
    """Tiny files in the real format: univariate (list<float>) and multivariate (list<list<float>>) targets."""
    pa = pytest.importorskip("pyarrow")
    _write_arrow(tmp_path / "ett1" / "H", pa, [[1.0, 2.0, None], [3.0, 4.0, 5.0]], pa.list_(pa.float32()))
    _write_arrow(tmp_path / "jena_weather" / "H", pa, [[[1.0, 2.0], [6.0, 7.0]]], pa.list_(pa.list_(pa.float32())))
    uni = gift_eval.load_configuration(tmp_path, "ett1/H")
    assert [r["item_id"] for r in uni] == ["item0", "item1"] and uni[0]["freq"] == "H"
    assert np.isnan(uni[0]["target"][2]) and uni[1]["target"].tolist() == [3.0, 4.0, 5.0]
    multi = gift_eval.load_configuration(tmp_path, "jena_weather/H")
    assert [r["item_id"] for r in multi] == ["item0_dim0", "item0_dim1"]
    assert multi[1]["target"].tolist() == [6.0, 7.0]


def test_pretraining_corpus_is_memory_mapped_and_validated(tmp_path) -> None:
    """Windows come from the memory-mapped Arrow buffers (zero-copy views), only series long enough for a
    window are drawn, NaNs are filled inside the window; bad files name their path."""
    pa = pytest.importorskip("pyarrow")
    from omegaconf import OmegaConf

    rng = np.random.default_rng(0)
    long = [float(v) for v in rng.normal(size=60)]
    long[5] = None
    _write_arrow(tmp_path / "solar" / "H", pa, [long, [1.0] * 10], pa.list_(pa.float32()))
    _write_arrow(tmp_path / "LOOP_SEATTLE" / "D", pa, [[list(range(50)), list(range(100, 150))]],
                 pa.list_(pa.list_(pa.float64())), freq="D")
    cfg = OmegaConf.create({"data": {"context": 24}, "weekly_rhythm": ["LOOP_SEATTLE"]})
    corpus = gift_eval.PretrainingCorpus(tmp_path, cfg, patch=24.0)
    (solar, eligible, s, length), (loop, loop_eligible, s_daily, daily_length) = sorted(
        corpus.pools, key=lambda pool: pool[2])
    assert s_daily == pytest.approx(24 / 7) and (s, length) == (1.0, 48) and eligible.tolist() == [0]
    assert loop_eligible.tolist() == [0, 1] and daily_length == int(24 / s_daily) + int(24 / s_daily)
    assert np.shares_memory(solar.series(0), solar.buffers[0]) and np.isnan(solar.series(0)[5])
    assert loop.series(1)[:3].tolist() == [100, 101, 102]
    missing = 0
    for _ in range(5):
        windows, scale = corpus(rng, 3)
        assert windows.shape[0] == 3 and not np.isinf(windows).any() and np.isnan(windows).sum(1).max() <= 1
        missing += np.isnan(windows).sum()
    assert missing > 0                                    # solar's missing step stays NaN (the model's mask)
    for _ in range(5):
        windows, scale = corpus(rng, 3)
        assert windows.shape[1] == (48 if scale == 1.0 else daily_length)
    bad = tmp_path / "bad" / "H"
    _write_arrow(bad, pa, [[1.0, float("inf")]], pa.list_(pa.float32()))
    with pytest.raises(ReproError, match="infinite"):
        gift_eval.ArrowSeries(bad)
    (bad / "data-00000-of-00001.arrow").write_bytes(b"not arrow")
    with pytest.raises(ReproError, match="not an Arrow IPC stream"):
        gift_eval.ArrowSeries(bad)


def test_gift_eval_configuration_rows() -> None:
    """Seasonal naive scored against itself is exactly 1 relative to naive; FlowState's forecaster crops
    floor(context / s) steps, batches equal lengths, forecasts beyond one patch and clamps non-negative
    series at 0."""
    rng = np.random.default_rng(0)
    t = np.arange(600)
    records = [{"item_id": str(i), "freq": "H",
                "target": 3 + np.sin(2 * np.pi * t[:600 - 10 * i] / 24) + 0.1 * rng.normal(size=600 - 10 * i)}
               for i in range(4)]
    levels = np.round(np.arange(1, 10) / 10, 1)

    def naive(histories: list[np.ndarray], s: float, horizon: int) -> np.ndarray:
        return gift_eval.seasonal_naive(histories, 24, horizon, 9)

    rows = gift_eval.evaluate_configuration({"flowstate": naive}, records, "ett1/H", "short", 1.0, levels)
    mine = next(r for r in rows if r["method"] == "flowstate")
    assert mine["dataset"] == "ett1/H/short" and mine["mase_rel"] == mine["crps_rel"] == 1.0
    other = [{**r, "method": "flowstate_fourier", "mase_rel": 2 * r["mase_rel"]} for r in rows]
    summary = {r["method"]: r for r in gift_eval.aggregate(rows + other)}
    assert summary["flowstate_fourier"]["mase_rel"] == pytest.approx(2 * summary["flowstate"]["mase_rel"])
    assert summary["seasonal_naive"]["mase_rel"] == pytest.approx(1.0)
    model = FlowState(width=8, states=8, block=4, layers=1, degree=6, quantiles=9, patch=24.0, seed=0)
    forecaster = gift_eval.flowstate_forecaster(model, context=96, batch=2)
    out = forecaster([r["target"] for r in records], 2.0, 30)
    assert out.shape == (4, 30, 9) and np.isfinite(out).all()
    coins = rng.integers(0, 2, 59).astype(float)
    series = [np.r_[coins, 0.0], np.r_[coins, -0.01]]                # non-negative, then not
    with torch.no_grad():
        model.head.weight.mul_(20)                                     # wide quantiles, some below 0
    raw = [model.forecast(torch.as_tensor(x[None], dtype=torch.float32), 1.0, 24)[0].detach().numpy()
           for x in series]
    out = forecaster(series, 1.0, 24)
    assert raw[0].min() < 0 and np.allclose(out[0], np.maximum(raw[0], 0), atol=1e-5) \
        and np.allclose(out[1], raw[1], atol=1e-5)


def test_leaderboard_rank_rows() -> None:
    published = {"a": {"mase_rel": 0.70, "crps_rel": 0.55}, "b": {"mase_rel": 0.80, "crps_rel": 0.45},
                 "c": {"mase_rel": 0.75, "crps_rel": 0.50}}
    summary = [{"dataset": "gift_eval", "method": "flowstate", "mase_rel": 0.72, "crps_rel": 0.40},
               {"dataset": "gift_eval", "method": "seasonal_naive", "mase_rel": 1.0, "crps_rel": 1.0}]
    rows = {r["method"]: r for r in gift_eval.leaderboard_rows(summary, published)}
    assert (rows["flowstate"]["rank_mase"], rows["flowstate"]["rank_crps"]) == (2, 1)
    assert (rows["leaderboard_best"]["mase_rel"], rows["leaderboard_best"]["crps_rel"]) == (0.70, 0.45)
    assert "rank_mase" not in rows["seasonal_naive"]


def _gift_records(seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    records = []
    for i in range(4):
        t = np.arange(600 - 13 * i)
        y = 3 + np.sin(2 * np.pi * t / 24) + 0.3 * rng.normal(size=len(t))
        y[rng.integers(0, len(y), 8)] = np.nan
        records.append({"item_id": str(i), "freq": "H", "target": y})
    return records


def test_gluonts_evaluator_matches_ours() -> None:
    """GIFT-Eval's own evaluation (gluonts, optional) on its own test windows: the weighted quantile loss
    equals ours; MASE agrees to 1% (the in-sample scale treats missing values slightly differently)."""
    pytest.importorskip("gluonts")
    levels = np.round(np.arange(1, 10) / 10, 1)

    def spread(histories: list[np.ndarray], s: float, horizon: int) -> np.ndarray:
        filled = [gift_eval.fill_missing(h) for h in histories]
        return gift_eval.seasonal_naive(filled, 24, horizon, 9) + np.linspace(-0.5, 0.5, 9)

    records = _gift_records(0)
    ours, theirs = (gift_eval.evaluate_configuration({"flowstate": spread}, records, "ett1/H", "short", 1.0, levels,
                                                     evaluator) for evaluator in ("ours", "gluonts"))
    for a, b in zip(ours, theirs):
        assert a["method"] == b["method"] and a["crps"] == pytest.approx(b["crps"], rel=1e-9)
        assert a["mase"] == pytest.approx(b["mase"], rel=0.01)


def test_gluonts_evaluator_missing_is_one_clear_line(monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "gluonts", None)              # import gluonts -> ImportError
    with pytest.raises(ConfigError, match="pip install 'gluonts") as error:
        gift_eval.require_evaluator("gluonts")
    assert "\n" not in str(error.value)
    gift_eval.require_evaluator("ours")
    with pytest.raises(ConfigError, match="choose ours or gluonts"):
        gift_eval.require_evaluator("statsforecast")


def write_dry_data(data_dir) -> None:
    """GiftEvalPretrain and GiftEval snapshots in their real layout (`datasets` Arrow IPC streams) under
    data_dir/flowstate/: pretraining solar/H (three hourly series, one too short, NaNs) and LOOP_SEATTLE/D
    (a two-dimensional daily series); evaluation ett1/H and us_births/D (one series, one test window each)."""
    import pyarrow as pa

    rng = np.random.default_rng(0)

    def seasonal(length: int, period: int) -> list:
        t = np.arange(length)
        values = 5 + np.sin(2 * np.pi * t / period) + 0.2 * rng.normal(size=length)
        return [None if i % 97 == 13 else float(v) for i, v in enumerate(values)]

    root = data_dir / "flowstate"
    _write_arrow(root / "GiftEvalPretrain" / "solar" / "H", pa, [seasonal(2200, 24), seasonal(2150, 24),
                                                                 seasonal(300, 24)], pa.list_(pa.float32()))
    _write_arrow(root / "GiftEvalPretrain" / "LOOP_SEATTLE" / "D", pa, [[seasonal(700, 7), seasonal(700, 7)]],
                 pa.list_(pa.list_(pa.float32())), freq="D")
    _write_arrow(root / "GiftEval" / "ett1" / "H", pa, [seasonal(400, 24)], pa.list_(pa.float32()))
    _write_arrow(root / "GiftEval" / "us_births" / "D", pa, [seasonal(300, 7)], pa.list_(pa.float32()), freq="D")


# --- the decoder's scaling, the generator's clock and the seasonal-naive metric -----------------------------------

def test_decoder_reads_coefficients_through_legendre_over_four() -> None:
    """With the encoder's output ignored (head weight 0) and head bias c_(q, n), the forecast of step j is
    sum_n c_(q, n) P_n(t_j) / 4 (the official division by 4) on the grid t_j = -1 + j s 1.95 / 24."""
    model = _model(layers=1)
    coefficients = torch.randn(3, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.copy_(coefficients.flatten())
    s = 0.5
    z = model.normalised_forecasts(torch.randn(2, 10, dtype=torch.float64), torch.tensor([s], dtype=torch.float64), 48)
    grid = -1 + np.arange(1, 49) * s * 1.95 / 24
    basis = np.stack([eval_legendre(n, grid) for n in range(6)], 1)                 # (48, 6)
    expected = basis @ coefficients.numpy().T / 4                                     # (48, Q)
    assert np.allclose(z.detach().numpy(), np.broadcast_to(expected, z.shape), atol=1e-12)


def test_generator_runs_on_hours_not_steps() -> None:
    """The same seed at steps of 1 h and 0.5 h draws the same b, c, a, p, so the series agree at the shared hours
    up to their two independent OU paths: the difference has variance 2 OU_SD^2 (the seasonal terms cancel)."""
    hourly = data.generate(300, 120, 1.0, seed=4)
    half_hourly = data.generate(300, 240, 0.5, seed=4)
    difference = half_hourly[:, ::2] - hourly
    assert difference.var() == pytest.approx(2 * data.OU_SD**2, rel=0.15)


def test_seasonal_naive_mase_against_its_definition() -> None:
    """Seasonal naive repeats the last period; MASE_i = mean_j |y_ij - yhat_ij| / mean_t |x_it - x_i(t-m)| with each
    series' own in-sample scale, averaged over series (series of different amplitudes and noise levels)."""
    from omegaconf import OmegaConf

    from repro.papers.flowstate.task import evaluate

    cfg = OmegaConf.create({"quantiles": [0.1, 0.5, 0.9], "data": {"mlp_context": 8, "context": 8}})
    period, rng = 6, np.random.default_rng(0)
    t = np.arange(40 + 2 * period)
    clean = np.sin(2 * np.pi * t / period + rng.uniform(0, 6, (5, 1))) * rng.uniform(0.5, 3, (5, 1))
    noisy = clean + rng.uniform(0.1, 2, (5, 1)) * rng.standard_normal(clean.shape)
    x, y = noisy[:, :-2 * period], noisy[:, -2 * period:]
    forecast = np.concatenate([x[:, -period:], x[:, -period:]], 1)
    expected = np.mean([np.abs(y[i] - forecast[i]).mean() / np.abs(x[i, period:] - x[i, :-period]).mean()
                        for i in range(5)])
    (row,) = evaluate("noisy", noisy, period, cfg, "seasonal_naive", None, "cpu")
    assert row["mase"] == pytest.approx(expected, rel=1e-12)
