"""GIFT-Eval zero-shot evaluation (Aksu et al. 2024, arXiv 2410.10393) for scale=paper.

Data: the Hugging Face dataset `Salesforce/GiftEval` holds one folder per configuration (`m4_yearly`,
`ett1/H`, `LOOP_SEATTLE/5T`, ...), each a `datasets.save_to_disk` folder whose `data-*.arrow` files are
Arrow IPC streams with columns item_id (str), start (timestamp), freq (str, pandas alias such as "15T"),
target (list<float>, or list<list<float>> for multivariate series; NaN = missing). The non-leaking
pretraining corpus `Salesforce/GiftEvalPretrain` has the same format.

Protocol (the benchmark's `gift_eval/data.py`): prediction length = term multiplier (short 1, medium 10,
long 15) x a base length per frequency (M4 has its own); windows = min(max(1, ceil(0.1 min_length /
pred_len)), 20) (M4: 1); the last windows x pred_len steps are test, cut into non-overlapping windows;
multivariate targets are evaluated per dimension. Metrics: MASE = mean over windows of MAE / in-sample
seasonal-naive MAE (gluonts seasonality); CRPS ~ mean weighted quantile loss over levels 0.1..0.9, each
level 2 sum pinball / sum |y| over the whole configuration. Both are divided by seasonal naive's value on
the same configuration and aggregated by geometric mean over configurations.
"""

import math
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from repro.core.context import RunContext
from repro.core.data import require
from repro.core.errors import ConfigError, DataUnavailableError, ReproError
from repro.core.units import Unit, grid
from repro.papers.flowstate.models import FlowState, patch_steps
from repro.papers.flowstate.training import Batches, build_flowstate, fit_flowstate

TEST_SPLIT, MAX_WINDOWS = 0.1, 20
TERM_MULTIPLIER = {"short": 1, "medium": 10, "long": 15}
BASE_LENGTH = {"M": 12, "W": 8, "D": 30, "H": 48, "T": 48, "S": 60}
M4_BASE_LENGTH = {"A": 6, "Q": 8, "M": 18, "W": 13, "D": 14, "H": 48}
SEASONALITY = {"S": 3600, "T": 1440, "H": 24, "D": 1, "W": 1, "M": 12, "B": 5, "Q": 4}   # gluonts defaults
UNIT_ALIASES = {"min": "T", "h": "H", "s": "S", "ME": "M", "MS": "M", "QE": "Q", "QS": "Q", "Y": "A",
                "YE": "A", "AS": "A"}

METHODS = ("flowstate_hlegs", "flowstate_fourier", "flowstate_linear", "flowstate_last_only")   # paper.ablations

Forecaster = Callable[[list[np.ndarray], float, int], np.ndarray]


def parse_freq(freq: str) -> tuple[int, str]:
    """A pandas frequency alias -> (multiple, unit in S T H D B W M Q A): "15T" -> (15, "T"), "W-SUN" -> (1, "W")."""
    match = re.fullmatch(r"(\d*)([A-Za-z]+)(-[A-Za-z]+)?", freq)
    if not match:
        raise ValueError(f"cannot parse frequency {freq!r}")
    unit = UNIT_ALIASES.get(match[2], match[2])
    if unit not in SEASONALITY and unit != "A":
        raise ValueError(f"unknown frequency unit in {freq!r}")
    return int(match[1] or 1), unit


def seasonality(freq: str) -> int:
    """gluonts' get_seasonality: the unit's default period divided by the multiple when it divides, else 1."""
    n, unit = parse_freq(freq)
    base = SEASONALITY.get(unit, 1)
    return base // n if base % n == 0 else 1


def scale_factor(freq: str, weekly_rhythm: bool) -> float:
    """s = 24 / (period in steps), the official `get_fixed_factor` rule: sub-daily data relative to the day,
    daily relative to the week (human-rhythm domains) or the year, weekly 24 / (365/7), monthly 2, quarterly
    and yearly 6."""
    n, unit = parse_freq(freq)
    steps_per_day = {"S": 86400, "T": 1440, "H": 24}
    if unit in steps_per_day:
        return 24.0 / (steps_per_day[unit] / n)
    if unit in ("D", "B"):
        return n * 24.0 / (7 if weekly_rhythm else 365)
    return {"W": 24 / (365 / 7), "M": 24 / 12, "Q": 24 / 4, "A": 24 / 4}[unit]


def prediction_length(name: str, freq: str, term: str) -> int:
    unit = parse_freq(freq)[1]
    table = M4_BASE_LENGTH if name.startswith("m4") else BASE_LENGTH
    return TERM_MULTIPLIER[term] * table[unit]


def num_windows(name: str, min_length: int, pred_len: int) -> int:
    if name.startswith("m4"):
        return 1
    return min(max(1, math.ceil(TEST_SPLIT * min_length / pred_len)), MAX_WINDOWS)


class ArrowSeries:
    """The series of one configuration folder, memory-mapped: every ``*.arrow`` file (an Arrow IPC stream)
    is mapped, its targets stay in the file (flat float buffers, zero-copy), and a series is (buffer, start,
    length); multivariate targets count one series per dimension. Nothing is turned into Python lists, so
    memory stays that of the page cache plus three integers per series. Validated on load: the columns
    item_id, freq, target; one frequency per folder; float targets (NaN or null = missing, never infinite)."""

    def __init__(self, folder: Path) -> None:
        try:
            import pyarrow
            import pyarrow.ipc
        except ImportError as error:
            raise DataUnavailableError("reading GIFT-Eval's Arrow files needs pyarrow: `pip install pyarrow`") \
                from error
        self.folder, self.buffers, self.tables = folder, [], []
        items, index, freqs = [], [], set()
        for path in sorted(folder.glob("*.arrow")):
            try:
                table = pyarrow.ipc.open_stream(pyarrow.memory_map(str(path))).read_all()
            except (pyarrow.ArrowInvalid, OSError) as error:
                raise ReproError(f"{path} is not an Arrow IPC stream ({error}); {REDOWNLOAD}") from error
            missing = {"item_id", "freq", "target"} - set(table.column_names)
            if missing:
                raise ReproError(f"{path}: no column(s) {sorted(missing)} (has {table.column_names}); {REDOWNLOAD}")
            self.tables.append(table)          # keeps the memory map alive
            freqs.update(str(f) for f in table.column("freq").unique().to_pylist())
            ids = table.column("item_id").to_pylist()
            row = 0
            for chunk in table.column("target").chunks:
                multivariate = pyarrow.types.is_list(chunk.type.value_type) or \
                    pyarrow.types.is_large_list(chunk.type.value_type)
                series = chunk.values if multivariate else chunk           # one list of floats per series
                values = series.values
                if not pyarrow.types.is_floating(values.type) and not pyarrow.types.is_integer(values.type):
                    raise ReproError(f"{path}: target holds {values.type}, not numbers; {REDOWNLOAD}")
                flat = values.to_numpy(zero_copy_only=True) if values.null_count == 0 and \
                    pyarrow.types.is_floating(values.type) else values.to_numpy(zero_copy_only=False).astype(float)
                if np.isinf(flat).any():
                    raise ReproError(f"{path}: infinite values in target; {REDOWNLOAD}")
                offsets = series.offsets.to_numpy()
                buffer = len(self.buffers)
                self.buffers.append(flat)
                if multivariate:                       # row r spans dims chunk.offsets[r] .. chunk.offsets[r + 1]
                    dims = chunk.offsets.to_numpy()
                    for r in range(len(chunk)):
                        for d, k in enumerate(range(dims[r], dims[r + 1])):
                            items.append(f"{ids[row + r]}_dim{d}")
                            index.append((buffer, offsets[k], offsets[k + 1] - offsets[k]))
                else:
                    items += ids[row:row + len(chunk)]
                    index += [(buffer, a, b - a) for a, b in zip(offsets[:-1], offsets[1:])]
                row += len(chunk)
        if not index:
            raise DataUnavailableError(f"no *.arrow records under {folder}: {download_hint(folder.parent)}")
        if len(freqs) != 1:
            raise ReproError(f"{folder}: one frequency per configuration expected, found {sorted(freqs)}; {REDOWNLOAD}")
        self.freq = freqs.pop()
        self.items = items
        self.index = np.array(index, dtype=np.int64).reshape(-1, 3)   # (buffer, start, length) per series

    def __len__(self) -> int:
        return len(self.index)

    def series(self, i: int, start: int = 0, length: int | None = None) -> np.ndarray:
        """Series i (or its steps start .. start + length), a view into the memory map."""
        buffer, offset, total = self.index[i]
        end = total if length is None else start + length
        return self.buffers[buffer][offset + start: offset + end]


REDOWNLOAD = "the snapshot is damaged or not GIFT-Eval's: download it again (huggingface-cli download)"


def load_configuration(root: Path, name: str) -> list[dict]:
    """Every record of one configuration folder (e.g. `ett1/H`), multivariate targets split per dimension;
    targets are float64 copies of one configuration (read through the memory map, `ArrowSeries`)."""
    folder = require(root / name, f"GIFT-Eval configuration {name}", download_hint(root))
    series = ArrowSeries(folder)
    return [{"item_id": item, "freq": series.freq, "target": np.array(series.series(i), dtype=float)}
            for i, item in enumerate(series.items)]


def download_hint(root: Path) -> str:
    repo = "Salesforce/GiftEvalPretrain" if "Pretrain" in root.name else "Salesforce/GiftEval"
    return (f"run `huggingface-cli download {repo} --repo-type dataset --local-dir {root}` on a machine "
            "with network (and `pip install pyarrow` to read it)")


def test_instances(target: np.ndarray, pred_len: int, windows: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(history, future) of each of the last `windows` non-overlapping windows of pred_len steps."""
    for w in range(windows):
        end = len(target) - (windows - w) * pred_len
        yield target[:end], target[end:end + pred_len]


def fill_missing(history: np.ndarray) -> np.ndarray:
    """NaNs carried forward (leading NaNs take the first value; an all-NaN history becomes zeros): the
    histories seasonal naive repeats."""
    values = np.asarray(history, dtype=float).copy()
    valid = np.flatnonzero(np.isfinite(values))
    if len(valid) == 0:
        return np.zeros_like(values)
    index = np.maximum.accumulate(np.where(np.isfinite(values), np.arange(len(values)), valid[0]))
    return values[index]


def seasonal_naive(histories: list[np.ndarray], period: int, horizon: int, levels: int) -> np.ndarray:
    """The last season repeated (point forecast, all levels equal), (n, horizon, levels)."""
    out = []
    for history in histories:
        m = period if len(history) >= period else 1
        out.append(np.resize(history[-m:], horizon))
    return np.repeat(np.stack(out)[..., None], levels, axis=2)


def score(histories: list[np.ndarray], futures: list[np.ndarray], quantiles: np.ndarray, period: int,
          levels: np.ndarray) -> dict[str, float]:
    """GIFT-Eval's MASE (median, per window then mean) and CRPS (mean weighted quantile loss), NaN targets
    masked. quantiles (n, horizon, Q)."""
    median = int(np.argmin(np.abs(levels - 0.5)))
    mases, pinball, total = [], np.zeros(len(levels)), 0.0
    for history, future, q in zip(histories, futures, quantiles):
        observed = np.isfinite(future)
        if not observed.any():
            continue
        m = period if len(history) > period else 1
        scale = np.nanmean(np.abs(history[m:] - history[:-m]))
        diff = future[observed, None] - q[observed]
        pinball += (2 * np.maximum(levels * diff, (levels - 1) * diff)).sum(0)
        total += np.abs(future[observed]).sum()
        if np.isfinite(scale) and scale > 0:
            mases.append(np.abs(diff[:, median]).mean() / scale)
    return {"mase": float(np.mean(mases)), "crps": float(np.mean(pinball / total))}


GLUONTS_MISSING = ("paper.evaluator=gluonts (GIFT-Eval's own evaluator) needs the optional gluonts package: "
                   "`pip install 'gluonts>=0.16'`, or set paper.evaluator=ours")


def require_evaluator(evaluator: str) -> None:
    """Fail before any training when the configured evaluator cannot run (one line)."""
    if evaluator not in ("ours", "gluonts"):
        raise ConfigError(f"paper.evaluator={evaluator!r}; choose ours or gluonts")
    if evaluator == "gluonts":
        try:
            import gluonts  # noqa: F401
        except ImportError as error:
            raise ConfigError(GLUONTS_MISSING) from error


def gluonts_test_data(records: list[dict], pred_len: int, windows: int):
    """GIFT-Eval's `Dataset.test_data`: gluonts' split at -pred_len x windows, then `windows` instances
    pred_len apart. Dates do not enter the metrics, so every series starts at 2000-01-01."""
    import pandas as pd
    from gluonts.dataset.split import split

    entries = [{"item_id": r["item_id"], "start": pd.Period("2000-01-01", freq=r["freq"]), "target": r["target"]}
               for r in records]
    _, template = split(entries, offset=-pred_len * windows)
    return template.generate_instances(prediction_length=pred_len, windows=windows, distance=pred_len)


def gluonts_scores(test_data, forecasts: dict[str, np.ndarray], levels: np.ndarray) -> dict[str, dict[str, float]]:
    """MASE[0.5] and mean_weighted_sum_quantile_loss of each method's quantiles (n, horizon, Q) by gluonts'
    `evaluate_forecasts` with the arguments of GIFT-Eval's notebooks (axis=None, invalid labels masked)."""
    from gluonts.ev.metrics import MASE, MeanWeightedSumQuantileLoss
    from gluonts.model import evaluate_forecasts
    from gluonts.model.forecast import QuantileForecast

    keys = [f"{level:g}" for level in levels]
    metrics = [MASE(), MeanWeightedSumQuantileLoss(quantile_levels=[float(level) for level in levels])]
    out = {}
    for method, quantiles in forecasts.items():
        predictions = [QuantileForecast(q.T, start_date=label["start"], forecast_keys=keys)
                       for q, label in zip(quantiles, test_data.label)]
        result = evaluate_forecasts(predictions, test_data=test_data, metrics=metrics, axis=None,
                                    mask_invalid_label=True, allow_nan_forecast=False)
        out[method] = {"mase": float(result["MASE[0.5]"].iloc[0]),
                       "crps": float(result["mean_weighted_sum_quantile_loss"].iloc[0])}
    return out


def evaluate_configuration(forecasters: dict[str, Forecaster], records: list[dict], name: str, term: str,
                           s: float, levels: np.ndarray, evaluator: str = "ours") -> list[dict]:
    """Rows (MASE, CRPS and both relative to seasonal naive) of every forecaster and of seasonal naive on
    one configuration x term, scored by our `score` or (evaluator="gluonts") by GIFT-Eval's own gluonts
    evaluation on gluonts' own test windows."""
    freq = records[0]["freq"]
    pred_len = prediction_length(name, freq, term)
    windows = num_windows(name, min(len(r["target"]) for r in records), pred_len)
    if evaluator == "gluonts":
        require_evaluator(evaluator)
        test_data = gluonts_test_data(records, pred_len, windows)
        histories = [np.asarray(entry["target"], dtype=float) for entry in test_data.input]
    else:
        pairs = [pair for record in records for pair in test_instances(record["target"], pred_len, windows)]
        histories, futures = [history for history, _ in pairs], [future for _, future in pairs]
    period = seasonality(freq)
    forecasts = {method: forecast(histories, s, pred_len) for method, forecast in forecasters.items()}
    forecasts["seasonal_naive"] = seasonal_naive([fill_missing(h) for h in histories], period, pred_len, len(levels))
    if evaluator == "gluonts":
        metrics = gluonts_scores(test_data, forecasts, levels)
    else:
        metrics = {method: score(histories, futures, q, period, levels) for method, q in forecasts.items()}
    naive = metrics["seasonal_naive"]
    return [{"dataset": f"{name}/{term}", "method": method, **m, "mase_rel": m["mase"] / naive["mase"],
             "crps_rel": m["crps"] / naive["crps"]} for method, m in metrics.items()]


def aggregate(rows: list[dict]) -> list[dict]:
    """Per method, geometric means over configurations of MASE and CRPS relative to seasonal naive (the
    leaderboard's aggregate), as rows of the data set ``gift_eval``."""
    out = []
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        means = {key: float(np.exp(np.mean([np.log(r[key]) for r in mine]))) for key in ("mase_rel", "crps_rel")}
        out.append({"dataset": "gift_eval", "method": method, **means})
    return out


def leaderboard_rows(summary: list[dict], published: dict[str, dict[str, float]]) -> list[dict]:
    """FlowState's aggregate row with its rank among the published zero-shot entries (1 + the number of
    entries with a strictly lower value; `rank_mase`, `rank_crps`), and the row ``leaderboard_best``: the
    lowest published relative MASE and CRPS (each from its own best entry)."""
    ours = next(r for r in summary if r["method"] == "flowstate")
    ranks = {f"rank_{key}": 1 + sum(entry[f"{key}_rel"] < ours[f"{key}_rel"] for entry in published.values())
             for key in ("mase", "crps")}
    best = {key: min(entry[key] for entry in published.values()) for key in ("mase_rel", "crps_rel")}
    return [{**r, **ranks} if r is ours else r for r in summary] + \
        [{"dataset": "gift_eval", "method": "leaderboard_best", **best}]


def official_context(history: np.ndarray, context: int, s: float) -> np.ndarray:
    """What the official GIFT-Eval wrapper feeds FlowState: the last floor(context / s) steps (max_context),
    leading NaNs dropped, inner NaNs kept (the missing-value channel reads them), an all-NaN history as
    zeros."""
    crop = np.asarray(history, dtype=float)[-int(context / s):]
    observed = np.flatnonzero(np.isfinite(crop))
    return crop[observed[0]:] if len(observed) else np.zeros_like(crop)


def flowstate_forecaster(model: FlowState, context: int, batch: int) -> Forecaster:
    """FlowState on `official_context` crops, batched by equal context length, horizons beyond one patch by
    the official multi-patch inference (`FlowState.forecast`); forecasts of a series whose context is
    non-negative are clamped at 0 (the official wrapper's `enforce_only_positive`)."""
    def forecast(histories: list[np.ndarray], s: float, horizon: int) -> np.ndarray:
        device = next(model.parameters()).device
        crops = [official_context(h, context, s) for h in histories]
        out = np.empty((len(crops), horizon, model.quantiles))
        by_length: dict[int, list[int]] = {}
        for i, crop in enumerate(crops):
            by_length.setdefault(len(crop), []).append(i)
        with torch.no_grad():
            for indices in by_length.values():
                for start in range(0, len(indices), batch):
                    chunk = indices[start:start + batch]
                    x = torch.as_tensor(np.stack([crops[i] for i in chunk]), dtype=torch.float32, device=device)
                    out[chunk] = model.forecast(x, s, horizon).cpu().numpy()
        for i, crop in enumerate(crops):
            if np.all(np.nan_to_num(crop, nan=1.0) >= 0):
                out[i] = np.maximum(out[i], 0.0)
        return out

    return forecast


class PretrainingCorpus:
    """GiftEvalPretrain, indexed once per run (``ctx.shared``): per configuration folder its memory-mapped
    series (`ArrowSeries`), its scale s and the window length floor(context / s) + floor(patch / s), and the
    series long enough to hold one window. Windows are read from the memory map per batch."""

    def __init__(self, root: Path, cfg: DictConfig, patch: float) -> None:
        require(root, "GiftEvalPretrain snapshot", download_hint(root))
        self.pools = []
        for folder in sorted({path.parent for path in root.rglob("*.arrow")}):
            series = ArrowSeries(folder)
            s = scale_factor(series.freq, folder.relative_to(root).parts[0] in cfg.weekly_rhythm)
            length = int(cfg.data.context / s) + patch_steps(patch, s)
            eligible = np.flatnonzero(series.index[:, 2] >= length)
            if len(eligible):
                self.pools.append((series, eligible, s, length))
        if not self.pools:
            raise DataUnavailableError(f"no GiftEvalPretrain series under {root} is long enough for context "
                                       f"{cfg.data.context} model hours: {download_hint(root)}")

    def __call__(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, float]:
        """A batch of windows from one configuration (one s per batch): (size, length) float64, NaN =
        missing (the model's missing-value channel reads them; the loss leaves NaN targets out)."""
        series, eligible, s, length = self.pools[rng.integers(len(self.pools))]
        picks = eligible[rng.integers(0, len(eligible), size)]
        starts = [rng.integers(0, series.index[i, 2] - length + 1) for i in picks]
        return np.stack([np.asarray(series.series(i, a, length), dtype=float) for i, a in zip(picks, starts)]), s


def pretraining_batches(root: Path, cfg: DictConfig, patch: float) -> Batches:
    """Windows of GiftEvalPretrain: each batch from one configuration folder (one s per batch), windows of
    floor(context / s) + floor(patch / s) steps from series long enough to hold one (`PretrainingCorpus`)."""
    return PretrainingCorpus(root, cfg, patch)


def units(cfg: DictConfig) -> list[Unit]:
    """One unit per pretrained model: FlowState and each ablation of ``paper.ablations``."""
    unknown = sorted(set(cfg.get("ablations") or {}) - set(METHODS))
    if unknown:
        raise ConfigError(f"paper.ablations: unknown {unknown}; choose from {list(METHODS)}")
    return grid("gift_eval", ["flowstate", *(cfg.get("ablations") or {})])


def run_unit(cfg: DictConfig, ctx: RunContext, u: Unit) -> list[dict]:
    """Pretrain one model (FlowState or an ablation: basis / degree / parallel) on GiftEvalPretrain, then
    zero-shot on every GIFT-Eval configuration and term. Seasonal naive's rows come with FlowState's unit."""
    require_evaluator(cfg.evaluator)
    root = ctx.data_dir / "flowstate"
    levels = np.array(list(cfg.quantiles))
    variant = OmegaConf.to_container(cfg.ablations[u.method]) if u.method != "flowstate" else {}
    model = build_flowstate(cfg, ctx.child_seed("init"), variant.get("basis", "legs"),
                            variant.get("degree")).to(ctx.device)
    batches = ctx.shared(f"pretraining-{model.patch}",       # indexed once per run, shared by the variants
                         lambda: pretraining_batches(root / "GiftEvalPretrain", cfg, model.patch))
    # Validation windows: a fixed draw from the pretraining corpus (the same for every model of a replicate).
    validation = batches(np.random.default_rng(ctx.data_seed("val_windows")), cfg.train.val_windows)
    fit_flowstate(ctx, model, batches, validation, cfg, parallel=variant.get("parallel", True))
    model.eval()
    forecasters = {u.method: flowstate_forecaster(model, cfg.data.context, cfg.eval_batch)}
    rows = []
    for term, names in cfg.gift_eval_terms.items():
        for name in names:
            records = load_configuration(root / "GiftEval", name)
            s = scale_factor(records[0]["freq"], name.split("/")[0] in cfg.weekly_rhythm)
            if name.split("/")[0] in cfg.no_daily:      # the official wrapper: no daily cycle, only a weekly one
                s /= 7
            rows += [r for r in evaluate_configuration(forecasters, records, name, term, s, levels, cfg.evaluator)
                     if r["method"] == u.method or u.method == "flowstate"]
            ctx.log.info("%s: %s/%s evaluated", u.method, name, term)
    summary = aggregate(rows)
    if u.method == "flowstate":
        summary = leaderboard_rows(summary, OmegaConf.to_container(cfg.leaderboard.zero_shot))
    return rows + summary
