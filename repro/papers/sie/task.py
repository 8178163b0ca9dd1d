"""SIE on mini-3DIEBench: each method pretrained on pairs of views of the same object, then probed frozen.

Grid: ``ssl/<method>`` (one pretraining per replicate; every method of a replicate sees the same rendered
objects, views and probe pairs). Rows: one per representation part probed (full, inv, equi), with the
rotation R^2 (MLP probe on two views' representations -> relative quaternion; sklearn's uniform average and the
official pooled R^2) and linear-probe top-1; the predictor's retrieval (MRR, Hit@1, Hit@5) and pose error (PRE), as
the official evaluation scripts define them, on the full row of methods that have a predictor.
"""

import copy

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from scipy.spatial.transform import Rotation
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import r2_score
from sklearn.preprocessing import StandardScaler

from repro.core.context import RunContext
from repro.core.errors import ConfigError
from repro.core.train import fit, plateaued
from repro.core.units import Unit, grid
from repro.papers.sie.data import Benchmark, load_benchmark, make_benchmark, sample_pairs
from repro.papers.sie.models import METHODS, SSLModel, build_encoder  # noqa: F401  (METHODS: the framework checks)


def units(cfg: DictConfig) -> list[Unit]:
    if cfg.data.source not in ("rendered", "3diebench"):
        raise ConfigError(f"paper.data.source={cfg.data.source!r} is unknown; choose rendered or 3diebench")
    return grid("ssl", cfg.methods)


def run_unit(cfg: DictConfig, ctx: RunContext, u: Unit) -> list[dict]:
    bench = ctx.shared("benchmark", lambda: build_benchmark(cfg, ctx))
    model = pretrain(cfg, ctx, bench, u.method)
    return probe_rows(cfg, ctx, bench, model)


def build_benchmark(cfg: DictConfig, ctx: RunContext) -> Benchmark:
    if cfg.data.source == "3diebench":
        return load_benchmark(ctx.data_dir / "3DIEBench", cfg.data, ctx.data_seed("views"))
    return make_benchmark(cfg.data, ctx.data_seed("render"))


def pretrain(cfg: DictConfig, ctx: RunContext, bench: Benchmark, method: str) -> SSLModel:
    m, t = cfg.model, cfg.train
    torch.manual_seed(ctx.child_seed("init"))
    encoder = build_encoder(m.backbone, list(m.channels), cfg.data.size, m.representation)
    model = SSLModel(method, encoder, m.representation, m.equi, list(m.projector), dict(cfg.loss)).to(ctx.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    train_objects = np.flatnonzero(bench.train_object)
    val_pairs = sample_pairs(np.flatnonzero(~bench.train_object), bench, t.val_pairs, ctx.data_seed("val_pairs"))

    def pair_batch(pairs: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple[torch.Tensor, ...]:
        first, second, quaternion = pairs
        return (bench.image_tensor(first, ctx.device), bench.image_tensor(second, ctx.device),
                torch.from_numpy(quaternion).float().to(ctx.device))

    def batches(epoch: int):
        first, second, quaternion = sample_pairs(train_objects, bench, t.pairs_per_epoch,
                                                 ctx.child_seed("pairs", epoch))
        for start in range(0, len(first) - t.batch_size + 1, t.batch_size):
            chunk = slice(start, start + t.batch_size)
            yield pair_batch((first[chunk], second[chunk], quaternion[chunk]))

    def loss_fn(model: torch.nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return model(*batch)

    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        # The pretraining loss on pairs of held-out objects, in eval mode (BatchNorm running statistics).
        return {"val/loss": float(model(*pair_batch(val_pairs)))}

    if t.schedule not in ("constant", "cosine"):
        raise ConfigError(f"paper.train.schedule={t.schedule!r} is unknown; choose constant or cosine")
    # constant: the official rate throughout; cosine: annealed to 0 over the run's steps (the cpu scale's budget).
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=t.epochs * (t.pairs_per_epoch // t.batch_size)) if t.schedule == "cosine" else None
    fit(ctx, "", model, optimizer, batches, loss_fn, t.epochs, evaluate, select="val/loss", scheduler=scheduler)
    return model.eval()


@torch.no_grad()
def representations(model: SSLModel, bench: Benchmark, device: str, chunk: int = 1000) -> np.ndarray:
    return np.concatenate([model.representation(bench.image_tensor(np.arange(s, min(s + chunk, bench.count)),
                                                                   device)).cpu().numpy()
                           for s in range(0, bench.count, chunk)])


def pooled_r2(target: np.ndarray, predicted: np.ndarray) -> float:
    """The official eval_angle_prediction.py R^2: 1 - SS_res / SS_tot with SS_tot around one mean over every
    component of every target (not per output, as sklearn's uniform average)."""
    return float(1 - ((target - predicted) ** 2).sum() / ((target - target.mean()) ** 2).sum())


def rotation_r2(cfg: DictConfig, ctx: RunContext, features: np.ndarray, fit_views: np.ndarray, train: tuple,
                test: tuple, part: str) -> tuple[float, float]:
    """R^2 of an MLP probe (2d -> h -> h -> 4) that regresses the relative quaternion from the two views'
    frozen representations, trained on pairs of training objects (a tenth of them held out to pick the epoch),
    scored on pairs of held-out objects: (sklearn's uniform average over the 4 outputs, the official pooled R^2)."""
    p = cfg.probe
    torch.manual_seed(ctx.child_seed("rotation_probe", part))
    dim = features.shape[1]
    head = torch.nn.Sequential(torch.nn.Linear(2 * dim, p.hidden), torch.nn.ReLU(), torch.nn.Linear(p.hidden, p.hidden),
                               torch.nn.ReLU(), torch.nn.Linear(p.hidden, 4)).to(ctx.device)
    scaler = StandardScaler().fit(features[fit_views])
    scaled = torch.from_numpy(scaler.transform(features)).float().to(ctx.device)

    def inputs(pairs: tuple) -> tuple[torch.Tensor, torch.Tensor]:
        first, second, quaternion = pairs
        x = torch.cat([scaled[torch.from_numpy(first).to(ctx.device)], scaled[torch.from_numpy(second).to(ctx.device)]],
                      1)
        return x, torch.from_numpy(quaternion).float().to(ctx.device)

    x_all, y_all = inputs(train)
    held = len(x_all) // 10
    x_val, y_val, x_train, y_train = x_all[:held], y_all[:held], x_all[held:], y_all[held:]
    x_test, _ = inputs(test)
    optimizer = torch.optim.Adam(head.parameters(), lr=p.lr)
    val_losses, best = [], None
    for epoch in range(p.epochs):
        order = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(
            ctx.child_seed("rotation_probe", part, epoch))).to(ctx.device)
        for start in range(0, len(order), p.batch_size):
            chosen = order[start:start + p.batch_size]
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(head(x_train[chosen]), y_train[chosen]).backward()
            optimizer.step()
        with torch.no_grad():
            val_losses.append(float(torch.nn.functional.mse_loss(head(x_val), y_val)))
        if best is None or val_losses[-1] < best[0]:
            best = (val_losses[-1], copy.deepcopy(head.state_dict()))
    ctx.record_convergence(plateaued(val_losses))
    head.load_state_dict(best[1])
    with torch.no_grad():
        predicted = head(x_test).cpu().numpy()
    return float(r2_score(test[2], predicted, multioutput="uniform_average")), pooled_r2(test[2], predicted)


def linear_top1(ctx: RunContext, features: np.ndarray, bench: Benchmark, max_iter: int) -> float:
    """Top-1 of a linear probe (multinomial logistic regression on standardised features), trained on the
    views of training objects, scored on the views of held-out objects."""
    train = bench.train_object[bench.object_of]
    scaler = StandardScaler().fit(features[train])
    probe = LogisticRegression(max_iter=max_iter).fit(scaler.transform(features[train]), bench.label_of[train])
    return float(probe.score(scaler.transform(features[~train]), bench.label_of[~train]))


def target_ranks(predicted: torch.Tensor, candidates: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Rank (1 = most similar) of candidate ``target[i]`` among ``candidates[i]`` (pairs, views, dim) by cosine
    similarity to ``predicted[i]``, as the official eval_MRR_Hk.py (embeddings and predictions L2-normalised)."""
    similarity = (F.normalize(candidates, dim=-1) @ F.normalize(predicted, dim=-1)[:, :, None])[..., 0]
    true = similarity[torch.arange(len(target), device=target.device), target]
    return 1 + (similarity > true[:, None]).sum(1)


def pose_error(true: np.ndarray, found: np.ndarray) -> np.ndarray:
    """The official PRE of each pair: 1 - <q, q'>^2 for unit quaternions (0 for the same rotation, 1 for rotations
    180 degrees apart; the sign of q does not matter)."""
    return 1 - (true * found).sum(-1) ** 2


@torch.no_grad()
def retrieval(model: SSLModel, bench: Benchmark, pairs: tuple, device: str, chunk: int = 256) -> dict[str, float]:
    """The predictor's quality as the official eval_MRR_Hk.py and eval_prediction_errors.py measure it: view 1's
    equivariant embedding and the relative rotation predict view 2's.
    MRR, Hit@1, Hit@5: the rank of view 2 among all views of the same object (cosine similarity).
    PRE: the held-out view whose embedding is nearest the prediction (cosine), scored by pose_error between its
    absolute rotation and view 2's."""
    first, second, quaternion = pairs
    held = np.flatnonzero(~bench.train_object[bench.object_of])       # every view of the held-out objects
    position = np.full(bench.count, -1)
    position[held] = np.arange(len(held))
    embedding = torch.cat([model.projector_equi(model.representation(bench.image_tensor(held[s:s + chunk], device))
                                                [:, model.inv:]) for s in range(0, len(held), chunk)])
    bank = F.normalize(embedding, dim=1)      # targets normalised; the predictor gets view 1's raw embedding
    pose = Rotation.from_euler("xyz", bench.latents[:, :3]).as_quat()
    ranks, errors = [], []
    for s in range(0, len(first), chunk):
        part = slice(s, s + chunk)
        predicted = model.predictor(embedding[torch.from_numpy(position[first[part]]).to(device)],
                                    torch.from_numpy(quaternion[part]).float().to(device))
        views = torch.from_numpy(position[bench.views_of(bench.object_of[first[part]])]).to(device)
        target = torch.from_numpy(np.argmax(bench.views_of(bench.object_of[second[part]]) == second[part, None], 1))
        ranks.append(target_ranks(predicted, bank[views], target.to(device)).cpu())
        nearest = (F.normalize(predicted, dim=1) @ bank.T).argmax(1).cpu().numpy()
        errors.append(pose_error(pose[second[part]], pose[held[nearest]]))
    rank = torch.cat(ranks).float()
    return {"pre": float(np.concatenate(errors).mean()), "mrr": float((1 / rank).mean()),
            "hit@1": float((rank <= 1).float().mean()), "hit@5": float((rank <= 5).float().mean())}


def probe_rows(cfg: DictConfig, ctx: RunContext, bench: Benchmark, model: SSLModel) -> list[dict]:
    features = representations(model, bench, ctx.device)
    train_pairs = sample_pairs(np.flatnonzero(bench.train_object), bench, cfg.probe.train_pairs,
                               ctx.data_seed("probe_train_pairs"))
    test_pairs = sample_pairs(np.flatnonzero(~bench.train_object), bench, cfg.probe.test_pairs,
                              ctx.data_seed("probe_test_pairs"))
    fit_views = bench.train_object[bench.object_of]
    parts = {"full": slice(None)}
    if model.inv and model.equi:
        parts |= {"inv": slice(0, model.inv), "equi": slice(model.inv, None)}
    rows = []
    for part, dims in parts.items():
        r2, r2_pooled = rotation_r2(cfg, ctx, features[:, dims], fit_views, train_pairs, test_pairs, part)
        row = {"part": part, "dims": features[:, dims].shape[1], "rotation/r2": r2, "rotation/r2_pooled": r2_pooled,
               "top1": linear_top1(ctx, features[:, dims], bench, cfg.probe.max_iter)}
        if part == "full" and model.equi:
            row |= {f"predictor/{k}": v for k, v in retrieval(model, bench, test_pairs, ctx.device).items()}
        rows.append(row)
    ctx.log.info("%s: %s", model.method, [(r["part"], round(r["rotation/r2"], 3), round(r["top1"], 3)) for r in rows])
    return rows
