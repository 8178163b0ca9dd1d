"""The run context and training loop: seeds, determinism, NaN guard, checkpoint + exact resume, data fetch."""

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from repro.core.context import RunContext, make_logger
from repro.core.data import fetch, require, sha256
from repro.core.errors import DataUnavailableError, NonFiniteError
from repro.core.train import fit, plateaued
from repro.core.units import Unit


def make_ctx(run_dir: Path, seed: int = 0) -> RunContext:
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    cfg = OmegaConf.create({"seed": seed, "scale": {"name": "smoke", "replicates": 3}, "data_dir": str(run_dir)})
    return RunContext(cfg, run_dir, "cpu", Unit("fit", "m"), make_logger(run_dir, run_dir.name))


class Interrupt(Exception):
    pass


def regression_fit(ctx: RunContext, epochs: int, interrupt_at: int | None = None, lr: float = 0.05):
    """A small noisy regression with dropout and shuffling: RNG state matters for exact resume."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, generator=gen)
    y = x @ torch.tensor([1.0, -2.0, 0.5]) + 0.1 * torch.randn(64, generator=gen)
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Dropout(0.2), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)

    def batches(epoch: int):
        if epoch == interrupt_at:
            raise Interrupt
        order = torch.randperm(64, generator=torch.Generator().manual_seed(epoch))
        return [(x[order[i:i + 16]], y[order[i:i + 16]]) for i in range(0, 64, 16)]

    def loss_fn(model, batch):
        return ((model(batch[0]).squeeze(-1) - batch[1]) ** 2).mean()

    def evaluate(model):
        return {"val/mse": float(((model(x).squeeze(-1) - y) ** 2).mean())}

    result = fit(ctx, "unit", model, optimizer, batches, loss_fn, epochs, evaluate, select="val/mse")
    return result, model


def test_resume_after_interruption_equals_uninterrupted(tmp_path: Path) -> None:
    full, full_model = regression_fit(make_ctx(tmp_path / "a"), epochs=6)
    ctx = make_ctx(tmp_path / "b")
    with pytest.raises(Interrupt):
        regression_fit(ctx, epochs=6, interrupt_at=3)
    assert ctx.checkpoint_path("unit").exists()
    assert ctx.converged == []
    torch.manual_seed(12345)  # a fresh process would not share the interrupted one's RNG state
    resumed, resumed_model = regression_fit(ctx, epochs=6)
    assert resumed.history == full.history
    assert ctx.converged == [plateaued([h["val/mse"] for h in full.history])]
    for a, b in zip(full_model.state_dict().values(), resumed_model.state_dict().values()):
        assert torch.equal(a, b)


def test_training_is_deterministic(tmp_path: Path) -> None:
    first, _ = regression_fit(make_ctx(tmp_path / "a"), epochs=3)
    second, _ = regression_fit(make_ctx(tmp_path / "b"), epochs=3)
    assert first.history == second.history


def test_nan_guard_names_the_step(tmp_path: Path) -> None:
    with pytest.raises(NonFiniteError, match=r"fit/m/-/r0/unit: loss became (nan|inf) at epoch \d+, step \d+"):
        regression_fit(make_ctx(tmp_path), epochs=50, lr=1e12)


@pytest.mark.parametrize(("curve", "expected"), [
    ([1.0, 0.5, 0.3, 0.2, 0.2, 0.2, 0.2, 0.2], True),      # flat over the last quarter
    ([1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1], False),     # still falling
    ([1.0, 0.5, 0.4], False),                               # too short to tell
    ([1.0, 0.5, 0.3, 0.2, 0.2, 0.2, 0.2, 0.199], True),     # within 1% of the earlier best
    ([1.0, 0.5, 0.3, 0.2, 0.2, 0.2, 0.2, 0.19], False),
])
def test_plateau_rule(curve: list[float], expected: bool) -> None:
    assert plateaued(curve) is expected


def test_long_training_is_flagged_converged(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    regression_fit(ctx, epochs=150, lr=0.02)
    assert ctx.converged == [True]
    short = make_ctx(tmp_path / "short")
    regression_fit(short, epochs=2)
    assert short.converged == [False]


def scripted_fit(ctx: RunContext, curve: list[float], patience: int | None, interrupt_at: int | None = None):
    """A fit whose validation score is ``curve[epoch]`` (the model is a bystander)."""
    model, current = torch.nn.Linear(1, 1), {}

    def batches(epoch: int):
        if epoch == interrupt_at:
            raise Interrupt
        current["epoch"] = epoch
        return [torch.zeros(1, 1)]

    return fit(ctx, "unit", model, torch.optim.SGD(model.parameters(), lr=0.0), batches,
               lambda model, batch: model(batch).sum() * 0, len(curve),
               lambda model: {"val/loss": curve[current["epoch"]]}, select="val/loss", patience=patience)


def test_patience_stops_after_that_many_epochs_without_improvement(tmp_path: Path) -> None:
    curve = [5.0, 4.0, 3.0, 3.5, 3.2, 2.9, 3.0, 3.0, 3.0, 1.0, 1.0, 1.0]
    # best 2.9 at epoch 5 (epochs 3 and 4 did not improve, the count restarts); 6, 7 and 8 do not improve:
    # patience 3 stops after epoch 8 and never sees the 1.0 at epoch 9
    stopped = scripted_fit(make_ctx(tmp_path / "a"), curve, patience=3)
    assert [h["epoch"] for h in stopped.history] == list(range(9)) and stopped.best_epoch == 5
    assert scripted_fit(make_ctx(tmp_path / "b"), curve, patience=None).best_epoch == 9
    ctx = make_ctx(tmp_path / "c")          # the rule holds across an interruption
    with pytest.raises(Interrupt):
        scripted_fit(ctx, curve, patience=3, interrupt_at=7)
    resumed = scripted_fit(ctx, curve, patience=3)
    assert resumed.history == stopped.history


def test_fetch_uses_cache_and_fails_clearly_offline(tmp_path: Path) -> None:
    cached = tmp_path / "file.bin"
    cached.write_bytes(b"payload")
    assert fetch("https://example.invalid/file.bin", cached, sha256(cached)) == cached
    with pytest.raises(DataUnavailableError, match="place it at"):
        fetch("https://example.invalid/other.bin", tmp_path / "other.bin")
    with pytest.raises(DataUnavailableError, match="wrong SHA-256|place it at"):
        fetch("https://example.invalid/file.bin", cached, "0" * 64)
    with pytest.raises(DataUnavailableError, match="how to get it"):
        require(tmp_path / "missing.csv", "the CSV", "how to get it")


def test_sliding_windows_are_views_equal_to_copied_windows() -> None:
    import numpy as np

    from repro.core.forecasting import sliding_windows

    series = np.arange(40.0).reshape(20, 2)
    x, y = sliding_windows(series, lookback=5, horizon=3, stride=2)
    starts = range(0, 20 - 8 + 1, 2)
    assert np.array_equal(x, np.stack([series[s:s + 5] for s in starts]))
    assert np.array_equal(y, np.stack([series[s + 5:s + 8] for s in starts]))
    assert np.shares_memory(x, series) and not x.flags.writeable
    with pytest.raises(ValueError, match="shorter than lookback"):
        sliding_windows(series, lookback=15, horizon=6)


def test_step_based_training_evaluates_every_k_steps_and_resumes_exactly(tmp_path: Path) -> None:
    from repro.core.train import fit_steps

    def train(ctx: RunContext, interrupt_at: int | None = None):
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(64, 3, generator=gen)
        y = x @ torch.tensor([1.0, -2.0, 0.5])
        torch.manual_seed(1)
        model = torch.nn.Linear(3, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05)

        def batch_at(step: int):
            if step == interrupt_at:
                raise Interrupt
            order = torch.randperm(64, generator=torch.Generator().manual_seed(step))[:8]
            return x[order], y[order]

        def loss_fn(model, batch):
            return ((model(batch[0]).squeeze(-1) - batch[1]) ** 2).mean()

        def evaluate(model):
            return {"val/mse": float(((model(x).squeeze(-1) - y) ** 2).mean())}

        return fit_steps(ctx, "", model, optimizer, batch_at, loss_fn, steps=40, every=10, evaluate=evaluate,
                         select="val/mse"), model

    full, full_model = train(make_ctx(tmp_path / "a"))
    assert len(full.history) == 4
    ctx = make_ctx(tmp_path / "b")
    with pytest.raises(Interrupt):
        train(ctx, interrupt_at=25)
    resumed, resumed_model = train(ctx)
    assert resumed.history == full.history
    assert torch.equal(full_model.weight, resumed_model.weight)


def test_precision_and_loader_options(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    assert ctx.loader_options() == {"num_workers": 0, "persistent_workers": False, "pin_memory": False}
    ctx.precision = "bf16"
    with ctx.autocast():
        product = torch.ones(4, 4) @ torch.ones(4, 4)
    assert product.dtype == torch.bfloat16


def test_tensor_unpickler_reads_data_and_refuses_code(tmp_path: Path) -> None:
    import pickle

    from repro.core.errors import ReproError
    from repro.core.safe_pickle import load_tensor_pickle

    data = [{"x": torch.arange(6).view(2, 3), "y": torch.tensor([0.5]), "n": 3}]
    (tmp_path / "ok.pickle").write_bytes(pickle.dumps(data))
    back = load_tensor_pickle(tmp_path / "ok.pickle")
    assert torch.equal(back[0]["x"], data[0]["x"]) and back[0]["n"] == 3

    from tests.helpers import Payload

    (tmp_path / "bad.pickle").write_bytes(pickle.dumps([Payload(tmp_path / "pwned")]))
    with pytest.raises(ReproError, match="bad.pickle is not a plain pickle.*system"):
        load_tensor_pickle(tmp_path / "bad.pickle")
    assert not (tmp_path / "pwned").exists()


def test_stopwatch_cpu_seconds_count_work_not_waiting() -> None:
    """A sleep takes wall time and almost no CPU; a busy loop takes both."""
    import time

    from repro.core.context import Stopwatch

    with Stopwatch("cpu") as idle:
        time.sleep(0.3)
    with Stopwatch("cpu") as busy:
        end = time.process_time() + 0.3
        while time.process_time() < end:
            pass
    assert idle.seconds >= 0.3 and idle.cpu_seconds < 0.1
    assert busy.cpu_seconds >= 0.3


def test_fetch_zip_unpacks_into_the_directory_and_names_a_broken_archive(tmp_path: Path) -> None:
    import zipfile

    from repro.core.data import fetch_zip

    source = tmp_path / "source.zip"
    with zipfile.ZipFile(source, "w") as archive:
        archive.writestr("inner/values.txt", "1 2 3")
    target = tmp_path / "data"
    fetch_zip(source.as_uri(), target / "copy.zip", target)
    assert (target / "inner" / "values.txt").read_text() == "1 2 3"

    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"not a zip")
    with pytest.raises(DataUnavailableError, match="broken.zip is not a zip archive"):
        fetch_zip(broken.as_uri(), broken, tmp_path / "elsewhere")
