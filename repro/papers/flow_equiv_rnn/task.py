"""Next-step prediction of translating digits: G-RNN against flow-equivariant RNNs (FERNN-V1, FERNN-V2).

Grid: ``data_v<r>/<method>``: one model trained per replicate on sequences whose sprites move with
velocities in {-r..r}^2; every method of a replicate sees the same sequences. Each trained model is then
evaluated on the test sequences (in distribution), on longer sequences (length generalisation) and, where the
experiment asks for it, on sequences with one fixed velocity per grid point (velocity generalisation).
"""

import numpy as np
import torch
from omegaconf import DictConfig

from repro.core.context import RunContext
from repro.core.errors import ConfigError
from repro.core.train import fit
from repro.core.units import Unit, grid
from repro.papers.flow_equiv_rnn.data import digits_sprites, load_mnist_sprites, pad_to_frame, translating_sequences
from repro.papers.flow_equiv_rnn.models import METHODS, build_model  # noqa: F401  (METHODS: the framework checks the grid)

SOURCES = ("digits", "mnist")


def units(cfg: DictConfig) -> list[Unit]:
    if cfg.data.source not in SOURCES:
        raise ConfigError(f"paper.data.source={cfg.data.source!r} is unknown; choose one of {SOURCES}")
    # Each experiment trains its own methods, restricted to paper.methods (e.g. paper.methods=[grnn]).
    return [u for name, spec in cfg.experiments.items()
            for u in grid(name, [m for m in spec.methods if m in cfg.methods])]


def run_unit(cfg: DictConfig, ctx: RunContext, u: Unit) -> list[dict]:
    spec = cfg.experiments[u.experiment]
    banks = ctx.shared("sprites", lambda: sprite_banks(cfg, ctx))
    sets = ctx.shared(f"eval_{u.experiment}", lambda: evaluation_sets(cfg, ctx, banks, spec))
    return train_and_evaluate(cfg, ctx, u, spec, banks, sets)


def sprite_banks(cfg: DictConfig, ctx: RunContext) -> dict[str, torch.Tensor]:
    """Sprites zero-padded to the frame, per split, on the device (train, val, test)."""
    data = cfg.data
    if data.source == "digits":
        # Validation sequences are drawn from the training sprites, as the official validation split
        # draws its digits from the whole MNIST training set.
        sprites = digits_sprites(data.sprites_train, ctx.data_seed("sprites"))
        sprites["val"] = sprites["train"]
    else:
        sprites = load_mnist_sprites(ctx.data_dir / "mnist", data.validation_fraction, ctx.data_seed("sprites"))
    return {split: torch.tensor(pad_to_frame(images, data.frame), dtype=torch.float32, device=ctx.device)
            for split, images in sprites.items()}


def sequences(cfg: DictConfig, bank: torch.Tensor, count: int, length: int, seed: int, v_range: int = 0,
              velocity: tuple[int, int] | None = None) -> torch.Tensor:
    return translating_sequences(bank, count, length, np.random.default_rng(seed), v_range, velocity,
                                 cfg.data.digits)


def evaluation_sets(cfg: DictConfig, ctx: RunContext, banks: dict, spec: DictConfig) -> dict:
    """Validation, test, length- and velocity-generalisation sequences of one experiment and replicate."""
    data, r = cfg.data, spec.data_v_range
    frames = data.input_frames + data.pred_frames
    sets = {
        "val": sequences(cfg, banks["val"], data.val, frames, ctx.data_seed("val", r), r),
        "test": sequences(cfg, banks["test"], data.test, frames, ctx.data_seed("test", r), r),
        "length": sequences(cfg, banks["test"], data.length_count, data.input_frames + data.length_pred_frames,
                            ctx.data_seed("length", r), r),
        "velocity": {},
    }
    if spec.velocity_generalisation:
        speeds = range(-data.velgen_range, data.velgen_range + 1)
        sets["velocity"] = {(vy, vx): sequences(cfg, banks["test"], data.velgen_per_velocity, frames,
                                                ctx.data_seed("velocity", vy, vx), velocity=(vy, vx))
                            for vy in speeds for vx in speeds}
    return sets


def step_errors(model: torch.nn.Module, seqs: torch.Tensor, input_frames: int, batch_size: int) -> torch.Tensor:
    """Per-sequence, per-predicted-frame MSE (N, T_pred) of an autoregressive rollout."""
    pred_len = seqs.shape[1] - input_frames
    errors = []
    for chunk in seqs.split(batch_size):
        prediction = model(chunk[:, :input_frames], pred_len)
        errors.append(((prediction - chunk[:, input_frames:]) ** 2).mean(dim=(2, 3, 4)))
    return torch.cat(errors)


def train_and_evaluate(cfg: DictConfig, ctx: RunContext, u: Unit, spec: DictConfig, banks: dict,
                       sets: dict) -> list[dict]:
    data, t = cfg.data, cfg.train
    frames = data.input_frames + data.pred_frames
    model = build_model(u.method, cfg.model.hidden, cfg.model.decoder_blocks).to(ctx.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=t.lr)

    def batches(epoch: int) -> tuple[torch.Tensor, ...]:
        # As the official generator does, every epoch draws fresh sequences (new sprites, starts and
        # velocities); they are the same for every method of the replicate.
        fresh = sequences(cfg, banks["train"], data.train_per_epoch, frames,
                          ctx.data_seed("train", spec.data_v_range, epoch), spec.data_v_range)
        return fresh.split(t.batch_size)

    def loss_fn(model: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
        return ((model(batch[:, :data.input_frames], data.pred_frames) - batch[:, data.input_frames:]) ** 2).mean()

    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        return {"val/mse": float(step_errors(model, sets["val"], data.input_frames, t.eval_batch).mean())}

    result = fit(ctx, "", model, optimizer, batches, loss_fn, t.epochs, evaluate, select="val/mse",
                 grad_clip=t.grad_clip)
    model.eval()
    with torch.no_grad():
        test = step_errors(model, sets["test"], data.input_frames, t.eval_batch)
        length = step_errors(model, sets["length"], data.input_frames, t.eval_batch).mean(0).cpu().numpy()
        velocity = {v: float(step_errors(model, seqs, data.input_frames, t.eval_batch).mean())
                    for v, seqs in sets["velocity"].items()}

    summary = {
        "eval": "summary", "params": sum(p.numel() for p in model.parameters()),
        "best_epoch": result.best_epoch, "val/mse": result.best_metrics["val/mse"],
        # Training speed (Fig. 2): validation error after the first epoch.
        "val/mse_epoch1": result.history[0]["val/mse"],
        "test/mse": float(test.mean()),
        # Length generalisation (Fig. 3): the trained horizon against the last as many steps of the rollout.
        "len/mse_trained": float(length[:data.pred_frames].mean()),
        "len/mse_late": float(length[-data.pred_frames:].mean()),
    }
    summary["len/growth_x"] = summary["len/mse_late"] / summary["len/mse_trained"]
    if velocity:
        # Velocity generalisation (Fig. 4): velocities inside the training range against those outside it.
        seen = [e for (vy, vx), e in velocity.items() if max(abs(vy), abs(vx)) <= spec.data_v_range]
        unseen = [e for (vy, vx), e in velocity.items() if max(abs(vy), abs(vx)) > spec.data_v_range]
        summary["vel/mse_seen"] = float(np.mean(seen))
        if unseen:
            summary["vel/mse_unseen"] = float(np.mean(unseen))
            summary["vel/unseen_x"] = summary["vel/mse_unseen"] / summary["vel/mse_seen"]
    ctx.log.info("%s %s: %s", u.experiment, u.method,
                 {k: round(v, 5) for k, v in summary.items() if isinstance(v, float)})
    rows = [summary]
    rows += [{"eval": "horizon", "horizon": k + 1, "within_training_horizon": k < data.pred_frames,
              "len/mse": float(e)} for k, e in enumerate(length)]
    rows += [{"eval": "velocity", "vy": vy, "vx": vx, "vel/mse": e} for (vy, vx), e in velocity.items()]
    return rows
