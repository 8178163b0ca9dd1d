"""Flow-equivariant RNNs: the exact flow-equivariance identity of the FERNN recurrence (and its failure for the
G-RNN), the sequence generator against numpy.roll / scipy.ndimage.shift, the closed-form reference predictor,
and the MNIST IDX loader on files written in the real format."""

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats
from scipy.ndimage import correlate
from scipy.ndimage import shift as ndimage_shift
from sklearn.datasets import load_digits

from repro.core.errors import DataUnavailableError
from repro.papers.flow_equiv_rnn.data import (
    digits_sprites,
    load_mnist_sprites,
    pad_to_frame,
    render,
    translating_sequences,
)
from repro.papers.flow_equiv_rnn.models import FlowCell, Seq2SeqFERNN, ShiftConv, shift_index, velocity_set
from repro.papers.flow_equiv_rnn.task import step_errors
from tests.helpers import write_idx


def hidden_states(model: Seq2SeqFERNN, frames: np.ndarray) -> np.ndarray:
    """(T, |V|, C, H, W) hidden states of one sequence (T, H, W), in float64."""
    with torch.no_grad():
        states = model.encode(torch.tensor(frames, dtype=torch.float64)[None, :, None])
    return torch.stack(states).squeeze(1).numpy()


def moved_input(frames: np.ndarray, nu: tuple[int, int]) -> np.ndarray:
    """u'_t = roll(u_t, nu * t) with numpy's own roll, t = 0 at the first frame."""
    return np.stack([np.roll(f, (nu[0] * t, nu[1] * t), axis=(0, 1)) for t, f in enumerate(frames)])


def test_shift_index_is_roll_then_circular_padding() -> None:
    """The one-gather shift of every velocity copy equals numpy's roll by v followed by wrap-around padding."""
    velocities = velocity_set(2)
    h = np.random.default_rng(0).random((len(velocities), 7, 9))
    index = shift_index(velocities, 7, 9, torch.device("cpu"))[:, 0]
    moved = torch.tensor(h).reshape(len(velocities), -1).gather(1, index).reshape(len(velocities), 9, 11).numpy()
    for k, v in enumerate(velocities):
        np.testing.assert_array_equal(moved[k], np.pad(np.roll(h[k], v, axis=(0, 1)), 1, mode="wrap"))


def test_shift_conv_and_its_hand_written_gradient_match_autograd_through_torch_roll() -> None:
    """ShiftConv's forward and its adjoint backward equal autograd through torch.roll + circular padding +
    conv2d, copy by copy, on a non-square frame (rows and columns cannot be swapped unnoticed)."""
    torch.manual_seed(0)
    velocities = velocity_set(2)
    cell = FlowCell(1, 3, velocities).double()
    indices = cell.shift_indices(5, 7, torch.device("cpu"))
    h = torch.rand(2, len(velocities), 3, 5, 7, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(3, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    reference = torch.stack([F.conv2d(F.pad(torch.roll(h[:, k], v, dims=(2, 3)), (1, 1, 1, 1), mode="circular"),
                                      weight) for k, v in enumerate(velocities)], 1)
    out = ShiftConv.apply(h, weight, *indices)
    upstream = torch.randn_like(out)
    ours = torch.autograd.grad((out * upstream).sum(), (h, weight))
    expected = torch.autograd.grad((reference * upstream).sum(), (h, weight))
    torch.testing.assert_close(out, reference, rtol=0, atol=1e-12)
    torch.testing.assert_close(ours[0], expected[0], rtol=0, atol=1e-12)
    torch.testing.assert_close(ours[1], expected[1], rtol=0, atol=1e-11)


@pytest.mark.parametrize("nu", [(1, -1), (2, 1), (0, -2)])
def test_fernn_hidden_state_is_flow_equivariant(nu: tuple[int, int]) -> None:
    """h'_t[v] = roll(h_t[v - nu], nu t) for every v with v - nu in V, to float precision (h_0 = 0)."""
    torch.manual_seed(0)
    model = Seq2SeqFERNN(v_range=2, hidden=4, decoder_blocks=1).double()
    frames = np.random.default_rng(1).random((6, 10, 10))
    states, moved_states = hidden_states(model, frames), hidden_states(model, moved_input(frames, nu))
    index = {v: i for i, v in enumerate(velocity_set(2))}
    checked = 0
    for v, i in index.items():
        source = (v[0] - nu[0], v[1] - nu[1])
        if source not in index:
            continue
        for t in range(len(frames)):
            expected = np.roll(states[t, index[source]], (nu[0] * t, nu[1] * t), axis=(1, 2))
            np.testing.assert_allclose(moved_states[t, i], expected, rtol=0, atol=1e-12)
            checked += 1
    assert checked >= 6 * 9   # at least a 3x3 block of velocities overlaps for |nu| <= 2
    assert np.abs(states).max() > 0.1   # the states are not trivially zero


def test_grnn_hidden_state_is_not_flow_equivariant() -> None:
    """With V = {0} the moving input's state is not the moved state: the identity fails after one step."""
    torch.manual_seed(0)
    model = Seq2SeqFERNN(v_range=0, hidden=4, decoder_blocks=1).double()
    frames = np.random.default_rng(1).random((6, 10, 10))
    nu = (1, -1)
    states, moved_states = hidden_states(model, frames), hidden_states(model, moved_input(frames, nu))
    # t = 0: both start from the same frame and h_0 = 0, so they agree; later they must not.
    np.testing.assert_allclose(moved_states[0, 0], states[0, 0], atol=1e-12)
    for t in range(2, len(frames)):
        expected = np.roll(states[t, 0], (nu[0] * t, nu[1] * t), axis=(1, 2))
        gap = np.abs(moved_states[t, 0] - expected).max() / np.abs(expected).max()
        assert gap > 1e-2, f"G-RNN state at t={t} is flow equivariant (relative gap {gap:.2e})"


def test_every_layer_is_translation_equivariant_with_circular_padding() -> None:
    """A static shift (nu = 0 flow, shifted start) commutes with the whole model, outputs included."""
    torch.manual_seed(0)
    model = Seq2SeqFERNN(v_range=1, hidden=4, decoder_blocks=2).double()
    frames = torch.rand(1, 4, 1, 12, 12, dtype=torch.float64)
    with torch.no_grad():
        out = model(frames, 3)
        out_shifted = model(torch.roll(frames, (3, -5), dims=(3, 4)), 3)
    torch.testing.assert_close(out_shifted, torch.roll(out, (3, -5), dims=(3, 4)), rtol=0, atol=1e-12)


def test_render_matches_scipy_grid_wrap_shift() -> None:
    """Each frame is clamp(sum_d shift(sprite_d, start_d + v_d t)) with scipy's wrap-around integer shift."""
    rng = np.random.default_rng(3)
    sprites = pad_to_frame(rng.random((4, 8, 8)), 16)
    index = np.array([[0, 3], [2, 2]])
    start = rng.integers(0, 16, (2, 2, 2))
    velocity = rng.integers(-2, 3, (2, 2, 2))
    frames = render(torch.tensor(sprites), index, start, velocity, 7).numpy()
    for n in range(2):
        for t in range(7):
            total = sum(ndimage_shift(sprites[index[n, d]], start[n, d] + velocity[n, d] * t, order=0,
                                      mode="grid-wrap") for d in range(2))
            np.testing.assert_allclose(frames[n, t, 0], np.clip(total, 0, 1), atol=1e-12)


def test_pad_to_frame_centres_the_sprite() -> None:
    padded = pad_to_frame(np.ones((1, 8, 8)), 16)
    assert padded.shape == (1, 16, 16) and padded.sum() == 64
    assert padded[0, 4:12, 4:12].all()


def test_velocities_cover_the_range_and_fixed_velocity_is_exact() -> None:
    """Random velocities hit every value of {-r..r}; with one fixed velocity for every sprite, the closed-form
    reference predictor (roll the last input frame by the velocity) is exact, clamping included."""
    bank = torch.tensor(pad_to_frame(np.random.default_rng(0).random((20, 8, 8)), 16), dtype=torch.float32)
    seqs = translating_sequences(bank, 400, 2, np.random.default_rng(1), v_range=2)
    steps = (seqs[:, 1] - seqs[:, 0]).abs().sum(dim=(1, 2, 3))
    assert (steps > 0).float().mean() > 0.9   # almost every sequence moves
    fixed = translating_sequences(bank, 16, 12, np.random.default_rng(2), velocity=(2, -1))
    inputs, targets = fixed[:, :5], fixed[:, 5:]
    reference = torch.stack([torch.roll(inputs[:, -1], (2 * k, -1 * k), dims=(2, 3)) for k in range(1, 8)], 1)
    assert torch.equal(reference, targets)
    assert fixed.min() >= 0 and fixed.max() <= 1


def test_reference_predictor_is_the_floor_on_random_velocities() -> None:
    """With per-sprite velocities, rolling each sprite by its true velocity reproduces the target except where
    clamping merged overlapping sprites; the data's MSE floor is therefore small but not always zero."""
    rng = np.random.default_rng(4)
    bank = torch.tensor(pad_to_frame(rng.random((10, 8, 8)), 16), dtype=torch.float32)
    index, start = rng.integers(0, 10, (32, 2)), rng.integers(0, 16, (32, 2, 2))
    velocity = rng.integers(-1, 2, (32, 2, 2))
    frames = render(bank, index, start, velocity, 10)
    per_sprite = [render(bank, index[:, d:d + 1], start[:, d:d + 1], velocity[:, d:d + 1], 10) for d in range(2)]
    reference = (per_sprite[0] + per_sprite[1]).clamp(0, 1)
    assert torch.equal(reference, frames)
    copy_last = frames[:, 4:5].expand(-1, 5, -1, -1, -1)
    assert ((copy_last - frames[:, 5:]) ** 2).mean() > 1e-3   # the task is not solved by copying the last frame


def write_dry_data(data_dir: Path, train: int = 60, test: int = 20) -> None:
    """Small MNIST image files in the canonical gzip IDX format, where the paper-scale loader reads them."""
    rng = np.random.default_rng(0)
    for prefix, n in (("train", train), ("t10k", test)):
        write_idx(data_dir / "mnist" / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))


def test_mnist_loader_reads_and_validates(tmp_path: Path) -> None:
    write_dry_data(tmp_path, train=50, test=20)
    sprites = load_mnist_sprites(tmp_path / "mnist", 0.1, seed=0)
    assert {k: v.shape for k, v in sprites.items()} == {"train": (45, 28, 28), "val": (5, 28, 28),
                                                        "test": (20, 28, 28)}
    assert 0 <= sprites["test"].min() and sprites["test"].max() <= 1
    write_idx(tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz", np.zeros((20, 28, 28)))
    with pytest.raises(DataUnavailableError, match="every pixel is 0"):
        load_mnist_sprites(tmp_path / "mnist", 0.1, seed=0)
    write_idx(tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz", np.ones((20, 14, 14)))
    with pytest.raises(DataUnavailableError, match="expected \\(28, 28\\)"):
        load_mnist_sprites(tmp_path / "mnist", 0.1, seed=0)
    (tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz").write_bytes(b"not gzip")
    with pytest.raises(DataUnavailableError, match="not a readable gzip"):
        load_mnist_sprites(tmp_path / "mnist", 0.1, seed=0)


def numpy_rollout(model: Seq2SeqFERNN, v_range: int, frames: np.ndarray, pred_len: int) -> np.ndarray:
    """The paper's recurrence written out with scipy's wrap-around correlation and numpy.roll, one velocity
    copy at a time: h_t[v] = ReLU(conv_u(u_t) + conv_h(roll(h_{t-1}[v], v))), h_0 = 0; the decoder reads the
    last input frame, then its own predictions, through max over v and (conv + ReLU) blocks and a last conv."""
    def conv(x: np.ndarray, w: torch.Tensor) -> np.ndarray:
        w = w.detach().numpy()
        return np.stack([sum(correlate(x[c], w[o, c], mode="wrap") for c in range(x.shape[0]))
                         for o in range(w.shape[0])])

    convs = [m.weight for m in model.decoder if isinstance(m, torch.nn.Conv2d)]
    velocities = [(vy, vx) for vy in range(-v_range, v_range + 1) for vx in range(-v_range, v_range + 1)]
    hidden = model.cell.conv_h.weight.shape[0]
    h = {v: np.zeros((hidden, *frames.shape[1:])) for v in velocities}

    def step(u: np.ndarray) -> dict:
        drive = conv(u[None], model.cell.conv_u.weight)
        return {v: np.maximum(drive + conv(np.roll(h[v], v, axis=(1, 2)), model.cell.conv_h.weight), 0)
                for v in velocities}

    for u in frames:
        h = step(u)
    previous, outputs = frames[-1], []
    for _ in range(pred_len):
        h = step(previous)
        x = np.max(np.stack(list(h.values())), axis=0)
        for w in convs[:-1]:
            x = np.maximum(conv(x, w), 0)
        previous = conv(x, convs[-1])[0]
        outputs.append(previous)
    return np.stack(outputs)


def test_rollout_equals_the_recurrence_written_out_in_numpy() -> None:
    torch.manual_seed(5)
    model = Seq2SeqFERNN(v_range=1, hidden=3, decoder_blocks=1).double()
    frames = np.random.default_rng(5).random((4, 6, 7))
    with torch.no_grad():
        ours = model(torch.tensor(frames)[None, :, None], 3)[0, :, 0].numpy()
    np.testing.assert_allclose(ours, numpy_rollout(model, 1, frames, 3), rtol=0, atol=1e-10)


def test_random_velocities_are_uniform_on_the_integer_box() -> None:
    """One sprite per sequence: its velocity is the unique v in {-3..3}^2 with roll(frame_0, v) = frame_1
    (numpy.roll); every value of {-2..2}^2 occurs, with frequencies consistent with the uniform law."""
    bank = torch.tensor(pad_to_frame(np.random.default_rng(6).random((10, 8, 8)), 16), dtype=torch.float64)
    seqs = translating_sequences(bank, 500, 2, np.random.default_rng(7), v_range=2, digits=1)[:, :, 0].numpy()
    candidates = [(vy, vx) for vy in range(-3, 4) for vx in range(-3, 4)]
    matches = np.stack([(np.roll(seqs[:, 0], v, axis=(1, 2)) == seqs[:, 1]).all(axis=(1, 2)) for v in candidates], 1)
    assert (matches.sum(1) == 1).all()
    found = [candidates[k] for k in matches.argmax(1)]
    counts = {v: found.count(v) for v in set(found)}
    assert set(counts) == {(vy, vx) for vy in range(-2, 3) for vx in range(-2, 3)}
    assert stats.chisquare(list(counts.values())).pvalue > 1e-3


def test_digit_sprites_are_scaled_to_the_unit_interval_and_split_without_sharing() -> None:
    sprites = digits_sprites(1200, seed=0)
    assert sprites["train"].shape == (1200, 8, 8) and sprites["test"].shape == (597, 8, 8)
    everything = np.concatenate([sprites["train"], sprites["test"]])
    assert everything.min() == 0.0 and everything.max() == 1.0  # sklearn's digits take values 0..16
    assert np.allclose(np.sort((everything * 16).ravel()), np.sort(load_digits().images.ravel()))


def test_step_errors_are_per_pixel_mse_per_predicted_frame() -> None:
    class Zero(torch.nn.Module):
        def forward(self, frames: torch.Tensor, pred_len: int) -> torch.Tensor:
            return frames.new_zeros(frames.shape[0], pred_len, *frames.shape[2:])

    seqs = torch.rand(5, 6, 1, 4, 3, dtype=torch.float64)
    errors = step_errors(Zero(), seqs, 2, batch_size=2).numpy()
    np.testing.assert_allclose(errors, (seqs[:, 2:].numpy() ** 2).mean(axis=(2, 3, 4)), atol=1e-15)
