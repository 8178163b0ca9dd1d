"""OLinear: OrthoTrans against closed-form correlations and eigh, DCT against scipy, NormLin, metrics, CSV parsing."""

import numpy as np
import pytest
import scipy.fft
import scipy.linalg
import torch
from omegaconf import OmegaConf
from scipy import stats
from sklearn.metrics import mean_absolute_error, mean_squared_error

from repro.core import forecasting
from repro.core.errors import ConfigError, DataUnavailableError, ReproError
from repro.papers.olinear import data, models
from repro.papers.olinear.task import errors, gather, horizon_weighted_l1, lr_factor, recipe


def test_ortho_basis_is_orthogonal_and_diagonalises_the_correlation() -> None:
    train = data.latent_factor_series(2000, 4, seed=0)
    q = models.ortho_basis(train, 24)
    assert np.allclose(q @ q.T, np.eye(24), atol=1e-6)
    windows, _ = forecasting.sliding_windows(train, 24, 0)
    corr = np.mean([np.corrcoef(windows[:, :, c], rowvar=False) for c in range(4)], axis=0)
    rotated = q @ corr @ q.T
    assert np.allclose(rotated, np.diag(np.diag(rotated)), atol=1e-8)
    assert np.all(np.diff(np.diag(rotated)) <= 1e-12)                   # eigenvalues decreasing


def test_ortho_basis_spans_the_exact_toeplitz_eigenspaces() -> None:
    """AR(1) (phi 0.9) plus a random-phase sinusoid of period 12: exact correlation is Toeplitz in
    r_k = (a^2/2 cos(2 pi k / 12) + s^2 phi^k / (1 - phi^2)) / r_0; the leading eigenspaces agree."""
    rng = np.random.default_rng(0)
    length, phi, sd, amplitude = 200_000, 0.9, 0.5, 1.0
    series = data.ar1(length, phi, sd, rng) + amplitude * np.sin(2 * np.pi * np.arange(length) / 12 + 1.0)
    k = np.arange(16)
    r = amplitude**2 / 2 * np.cos(2 * np.pi * k / 12) + sd**2 * phi**k / (1 - phi**2)
    _, exact = np.linalg.eigh(scipy.linalg.toeplitz(r / r[0]))
    estimated = models.ortho_basis(series[:, None], 16)
    angles = scipy.linalg.subspace_angles(estimated[:3].T, exact[:, ::-1][:, :3])
    assert np.max(angles) < 0.05


def test_dct_basis_matches_scipy() -> None:
    q = models.basis("dct", np.zeros((10, 1)), 16)
    x = np.random.default_rng(0).standard_normal(16)
    assert np.allclose(q @ x, scipy.fft.dct(x, type=2, norm="ortho"))
    assert np.allclose(q @ q.T, np.eye(16), atol=1e-12)


def test_normlin_mixing_is_row_stochastic_and_attention_costs_more() -> None:
    torch.manual_seed(0)
    mixing = models.NormLin(8, 16).mixing()
    assert torch.all(mixing > 0) and torch.allclose(mixing.sum(1), torch.ones(8))
    from repro.papers.olinear.task import flops

    q_in, q_out = np.eye(96), np.eye(24)
    normlin = models.OLinear(q_in, q_out, 8, 8, 64, 64, 1, "normlin", 0.0)
    attention = models.OLinear(q_in, q_out, 8, 8, 64, 64, 1, "attention", 0.0)
    normlin.eval()
    attention.eval()                                   # the fused attention path must still be counted
    mixer_gap = flops(attention, 96, 8) - flops(normlin, 96, 8)
    # Q, K projections + QK^T + softmax(QK^T) V (4 heads of 16) - NormLin's A V, 2 FLOPs per multiply-add
    assert mixer_gap == 2 * (2 * 8 * 64 * 64 + 2 * 8 * 8 * 64 - 8 * 8 * 64)
    linear = models.RLinear(96, 24, 8)
    assert flops(linear, 96, 8) == 2 * 96 * 24 * 8                      # FlopCounterMode counts 2 per MAC


def test_olinear_shapes_and_revin_inverse() -> None:
    torch.manual_seed(0)
    model = models.OLinear(np.eye(32), np.eye(8), 3, 4, 16, 16, 1, "normlin", 0.0)
    x = torch.randn(5, 32, 3)
    assert model(x).shape == (5, 8, 3)
    z, statistics = model.revin.normalise(x)
    assert torch.allclose(model.revin.denormalise(z, statistics), x, atol=1e-5)


def test_metrics_against_sklearn_and_crps() -> None:
    rng = np.random.default_rng(0)
    y, y_hat = rng.standard_normal(50), rng.standard_normal(50)
    assert forecasting.mse(y, y_hat) == pytest.approx(mean_squared_error(y, y_hat))
    assert forecasting.mae(y, y_hat) == pytest.approx(mean_absolute_error(y, y_hat))
    history = np.sin(np.arange(100))
    assert forecasting.mase(y, y_hat, history, 7) == pytest.approx(
        mean_absolute_error(y, y_hat) / np.mean(np.abs(history[7:] - history[:-7])))
    assert forecasting.quantile_loss(y, y_hat[:, None], np.array([0.5])) == pytest.approx(mean_absolute_error(y, y_hat))
    # dense quantile grid of N(mu, sigma): mean pinball x 2 -> closed-form Gaussian CRPS
    levels = np.linspace(0.0005, 0.9995, 2000)
    mu, sigma, target = 0.3, 1.5, 1.1
    z = (target - mu) / sigma
    crps = sigma * (z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / np.sqrt(np.pi))
    assert forecasting.quantile_loss(np.array([target]), mu + sigma * stats.norm.ppf(levels)[None], levels) \
        == pytest.approx(crps, rel=1e-2)


def test_splits_windows_and_scaler_use_training_statistics() -> None:
    series = np.arange(100, dtype=float)[:, None] * np.array([[1.0, -2.0]])
    parts = forecasting.chronological_splits(series, (0.7, 0.1, 0.2), lookback=5)
    assert len(parts["train"]) == 70 and parts["val"][0, 0] == 65 and parts["test"][-1, 0] == 99
    scaler = forecasting.StandardScaler(parts["train"])
    assert np.allclose(scaler.mean, series[:70].mean(0))
    assert np.allclose(scaler.inverse(scaler.transform(series)), series)
    x, y = forecasting.sliding_windows(parts["test"], 5, 3)
    assert x.shape == (len(parts["test"]) - 7, 5, 2) and np.array_equal(y[0, :, 0], parts["test"][5:8, 0])


def test_macrodata_is_log_differenced() -> None:
    values = data.macrodata()
    assert values.shape == (202, 12) and np.isfinite(values).all()
    assert abs(values[:, 0].mean()) < 0.05                          # quarterly GDP growth, not a level


ETT_HEAD = "date,HUFL,HULL,MUFL,MULL,LUFL,LULL,OT\n"


def test_parse_ett_format(tmp_path) -> None:
    path = tmp_path / "ETTh1.csv"
    path.write_text(ETT_HEAD + "2016-07-01 00:00:00,5.827,2.009,1.599,0.462,4.203,1.340,30.531\n"
                    "2016-07-01 01:00:00,5.693,2.076,1.492,0.426,4.142,1.371,27.787\n")
    values = data.parse_benchmark_csv(path)
    assert values.shape == (2, 7) and values[1, -1] == pytest.approx(27.787)
    (tmp_path / "bad.csv").write_text("time,a\n1,2\n")
    with pytest.raises(ReproError, match="date"):
        data.parse_benchmark_csv(tmp_path / "bad.csv")
    for body, match in (("2016-07-01,1.0\n2016-07-02,\n", "row 1 column 'OT'"),
                        ("2016-07-01,1.0\n2016-07-02,inf\n", "infinite"),
                        ("2016-07-01,1.0\n", "two rows"), ("2016-07-01,x\n2016-07-02,1\n", "not a number")):
        (tmp_path / "bad.csv").write_text("date,OT\n" + body)
        with pytest.raises(ReproError, match=match):
            data.parse_benchmark_csv(tmp_path / "bad.csv")


def test_batches_are_gathered_from_the_series_not_materialised() -> None:
    """The per-batch gather equals the strided window view; the validation errors equal the metrics over
    every window at once."""
    series = np.random.default_rng(0).standard_normal((60, 3))
    x_view, y_view = forecasting.sliding_windows(series, 8, 4, stride=3)
    starts = torch.arange(len(x_view)) * 3
    index = torch.tensor([0, 5, 2, len(x_view) - 1])
    x, y = gather(torch.as_tensor(series, dtype=torch.float32), starts[index], 8, 4)
    assert torch.equal(x, torch.as_tensor(x_view[index.numpy()], dtype=torch.float32))
    assert torch.equal(y, torch.as_tensor(y_view[index.numpy()], dtype=torch.float32))
    model = models.RLinear(8, 4, 3)
    with torch.no_grad():
        y_hat = model(torch.as_tensor(np.ascontiguousarray(x_view), dtype=torch.float32)).numpy()
    got = errors(model, (x_view, y_view), batch=5, device="cpu")
    assert got["mse"] == pytest.approx(forecasting.mse(y_view, y_hat), rel=1e-12)
    assert got["mae"] == pytest.approx(forecasting.mae(y_view, y_hat), rel=1e-12)


def test_bundle_data_missing_says_how_to_get_it(tmp_path) -> None:
    with pytest.raises(DataUnavailableError, match="Time-Series-Library"):
        data.load_benchmark("ECL", tmp_path)


def test_orthotrans_is_absorbed_by_the_first_linear_layer() -> None:
    """OLinear with Q (deltas 0) equals OLinear with Q = I once W_in -> W_in (I_D kron Q_in) and
    W_out -> (I_D kron Q_out^T) W_out: the basis changes the optimisation, not the function class."""
    torch.manual_seed(0)
    lookback, horizon, channels, embed = 12, 4, 3, 2
    train = data.latent_factor_series(500, channels, seed=1)
    q_in, q_out = models.ortho_basis(train, lookback), models.ortho_basis(train, horizon)
    rotated = models.OLinear(q_in, q_out, channels, embed, 8, 8, 1, "normlin", 0.0).eval()
    plain = models.OLinear(np.eye(lookback), np.eye(horizon), channels, embed, 8, 8, 1, "normlin", 0.0).eval()
    plain.load_state_dict(rotated.state_dict() | {"q_in": plain.q_in, "q_out": plain.q_out})
    with torch.no_grad():
        plain.inp.weight.copy_(rotated.inp.weight @ torch.kron(torch.eye(embed), rotated.q_in))
        out = torch.kron(torch.eye(embed), rotated.q_out.T.contiguous())
        plain.outp.weight.copy_(out @ rotated.outp.weight)
        plain.outp.bias.copy_(out @ rotated.outp.bias)
    x = torch.randn(5, lookback, channels)
    assert torch.allclose(plain(x), rotated(x), atol=1e-4)
    assert not torch.allclose(plain(x), models.OLinear(np.eye(lookback), np.eye(horizon), channels, embed, 8, 8, 1,
                                                       "normlin", 0.0).eval()(x), atol=1e-2)


def _benchmark_csv(path, rows: int, channels: list[str], rng: np.random.Generator) -> None:
    t = np.arange(rows)
    values = np.sin(2 * np.pi * t[:, None] / 24 + rng.uniform(0, 6, len(channels))) + 0.3 * rng.standard_normal(
        (rows, len(channels)))
    dates = np.datetime64("2016-07-01T00:00") + t.astype("timedelta64[h]")
    lines = [",".join(["date", *channels])] + [
        ",".join([str(d).replace("T", " "), *(f"{v:.3f}" for v in row)]) for d, row in zip(dates, values)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def write_dry_data(data_dir) -> None:
    """ETTh1 / ETTm1 (7 channels) where the downloader caches them and the Time-Series-Library bundle's
    electricity.csv / weather.csv (4 channels each): the real CSV layout, 720 and 1000 rows."""
    rng = np.random.default_rng(0)
    ett = ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]
    for name in ("ETTh1", "ETTm1"):
        _benchmark_csv(data_dir / "olinear" / f"{name}.csv", 720, ett, rng)
    _benchmark_csv(data_dir / "olinear" / "electricity" / "electricity.csv", 1000, [*map(str, range(3)), "OT"], rng)
    _benchmark_csv(data_dir / "olinear" / "weather" / "weather.csv", 1000, [f"w{i}" for i in range(3)] + ["OT"], rng)


def test_learning_rate_schedules_follow_the_repository_per_epoch() -> None:
    """The lr of each epoch as the repository's adjust_learning_rate leaves it (values written out by hand),
    reached through a per-batch LambdaLR as train_one builds it (3 batches per epoch)."""
    expected = {"type1": [1, 1, 0.5, 0.25, 0.125], "type3": [1, 1, 1, 1, 0.9, 0.81],
                "cosine": [1, 0.5 * (1 + np.cos(np.pi / 10)), 0.5 * (1 + np.cos(np.pi * 2 / 10))]}
    for schedule, lrs in expected.items():
        optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=2.0)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step, s=schedule: lr_factor(s, step // 3, 10))
        seen = []
        for _ in lrs:
            seen.append(optimizer.param_groups[0]["lr"])
            for _ in range(3):
                optimizer.step()
                scheduler.step()
        np.testing.assert_allclose(seen, 2.0 * np.array(lrs), rtol=1e-12, err_msg=schedule)


def test_horizon_weighted_l1_against_an_explicit_sum() -> None:
    rng = np.random.default_rng(0)
    forecast, target = rng.standard_normal((2, 4, 5, 3))
    explicit = sum(abs(forecast[b, i, c] - target[b, i, c]) / np.sqrt(i + 1)
                   for b in range(4) for i in range(5) for c in range(3)) / 60
    loss = horizon_weighted_l1(torch.tensor(forecast), torch.tensor(target), 0.5)
    assert float(loss) == pytest.approx(explicit, rel=1e-12)
    assert float(horizon_weighted_l1(torch.tensor(forecast), torch.tensor(target), 0.0)) == pytest.approx(
        np.abs(forecast - target).mean(), rel=1e-12)
    model = torch.nn.Identity()   # lookback = horizon: the forecast is the input window itself
    split = (forecast.astype(np.float32), target)
    assert errors(model, split, 3, "cpu", 0.5)["loss"] == pytest.approx(
        float(horizon_weighted_l1(torch.tensor(forecast.astype(np.float32)).double(), torch.tensor(target), 0.5)),
        rel=1e-6)


def test_recipes_override_the_defaults_per_data_set_and_horizon() -> None:
    cfg = OmegaConf.create({"train": {"lr": 5e-4, "patience": 8}, "model": {"dropout": 0.2, "blocks": 2},
                            "recipes": {"ETTh1": {"train": {"lr": {96: 5e-4, 720: 1e-4}}},
                                        "ECL": {"model": {"blocks": 3}}}})
    train, model = recipe(cfg, "ETTh1", 720)
    assert (train.lr, train.patience, model.blocks) == (1e-4, 8, 2)
    assert recipe(cfg, "ECL", 96)[1].blocks == 3 and recipe(cfg, "Weather", 96)[0].lr == 5e-4
    with pytest.raises(ConfigError, match="horizon 336"):
        recipe(cfg, "ETTh1", 336)


# --- NormLin, the mixer block, RevIN, the generator and the data pipeline against explicit formulas -------------

def test_normlin_mixing_is_the_row_normalised_softplus() -> None:
    """A = rownorm_L1(softplus(W)), softplus(w) = log(1 + e^w), written out in numpy."""
    torch.manual_seed(1)
    layer = models.NormLin(6, 4)
    w = layer.weight.detach().double().numpy()
    softplus = np.log1p(np.exp(w))
    np.testing.assert_allclose(layer.mixing().detach().numpy(), softplus / softplus.sum(1, keepdims=True), rtol=1e-5)


def _layer_norm(x: np.ndarray, norm: torch.nn.LayerNorm) -> np.ndarray:
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + norm.eps) * norm.weight.detach().numpy() + norm.bias.detach().numpy()


def test_mixer_block_is_the_written_residual_block() -> None:
    """x = LN(x + W_o A W_v x); x = LN(x + W_2 GELU(W_1 x)) over the N channel tokens, in numpy (dropout 0)."""
    from scipy.special import erf

    torch.manual_seed(2)
    block = models.MixerBlock("normlin", 5, 8, 12, 0.0).double().eval()
    x = torch.randn(3, 5, 8, dtype=torch.float64)

    def linear(z: np.ndarray, layer: torch.nn.Linear) -> np.ndarray:
        return z @ layer.weight.detach().numpy().T + layer.bias.detach().numpy()

    z = x.numpy()
    mixed = linear(block.mix.mixing().detach().numpy() @ linear(z, block.mix.value), block.mix.out)
    z = _layer_norm(z + mixed, block.norm1)
    hidden = linear(z, block.ffn[0])
    hidden = hidden * 0.5 * (1 + erf(hidden / np.sqrt(2)))                      # exact GELU
    z = _layer_norm(z + linear(hidden, block.ffn[3]), block.norm2)
    np.testing.assert_allclose(block(x).detach().numpy(), z, rtol=1e-10, atol=1e-10)


def test_revin_normalises_each_channel_over_time() -> None:
    """RevIN (weight 1, bias 0): (x - mean_t x) / sqrt(var_t x + 1e-5) per sample and channel, numpy z-scores."""
    x = torch.randn(4, 30, 3, dtype=torch.float64) * torch.tensor([1.0, 5.0, 0.2], dtype=torch.float64) + 7
    z, _ = models.RevIN(3).double().normalise(x)
    values = x.numpy()
    expected = (values - values.mean(1, keepdims=True)) / np.sqrt(values.var(1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(z.detach().numpy(), expected, rtol=1e-10, atol=1e-10)


def test_ar1_starts_in_its_stationary_law() -> None:
    """z_0 ~ N(0, sd^2 / (1 - phi^2)), the variance every later z_t has (phi 0.98, sd 0.2: variance 1.0101)."""
    rng = np.random.default_rng(0)
    starts = np.array([data.ar1(2, 0.98, 0.2, rng)[0] for _ in range(4000)])
    assert starts.var() == pytest.approx(0.2**2 / (1 - 0.98**2), rel=0.1)     # 4000 draws: sd of the ratio 2.2%


def test_fixed_borders_follow_the_ett_loader() -> None:
    """ETTh1's borders 12/4/4 months of hours as in the Time-Series-Library's Dataset_ETT_hour: border1s =
    [0, 8640 - seq_len, 11520 - seq_len], border2s = [8640, 11520, 14400]."""
    from repro.papers.olinear.task import split_parts

    series = np.arange(17420.0)[:, None]
    parts = split_parts(series, OmegaConf.create({"name": "ETTh1", "borders": [8640, 2880, 2880], "lookback": 96}))
    assert np.array_equal(parts["train"], series[0:8640])
    assert np.array_equal(parts["val"], series[8640 - 96:11520])
    assert np.array_equal(parts["test"], series[11520 - 96:14400])


def test_prepare_scales_with_training_statistics_only() -> None:
    """z-scoring uses the training split's mean and std (numpy), never the later splits (a trended series makes
    any leak visible)."""
    from repro.papers.olinear.task import prepare

    series = np.arange(400.0)[:, None] * np.array([[1.0, -0.5]]) + np.random.default_rng(0).standard_normal((400, 2))
    dataset = OmegaConf.create({"name": "synthetic", "split": [0.7, 0.1, 0.2], "lookback": 24, "train_stride": 1})
    out = prepare(series, dataset, 8)
    train = series[:280]
    np.testing.assert_allclose(out["train_series"], (train - train.mean(0)) / train.std(0), atol=1e-12)
    x_test, _ = out["test"]
    np.testing.assert_allclose(x_test[0], (series[320 - 24:320] - train.mean(0)) / train.std(0), atol=1e-12)
