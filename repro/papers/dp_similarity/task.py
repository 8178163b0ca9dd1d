"""The experiment: private l1 queries (error vs eps, vs d, tree vs flat over bins), private Gaussian KDE (error
and query time vs projected dimension), and private classification by average similarity vs DP-SGD.

Grid (each unit once per replicate; the data of a replicate are shared by all its units via ``ctx.data_seed``):
  l1_digits/<binned>/log2_bins=<L>,eps=<e>      digits, R = 16; <binned> = tree (the paper's), prefix_sums, flat
  l1_digits/huang_roth/eps=<e>                  the Huang-Roth grid (no bins)
  l1_dim/<structure>/d=<d>                      Gaussian mixture in [0, 1]^d at one eps and bin count
  l1_1d/<binned>/log2_bins=<L>, l1_1d/huang_roth/-   1-D mixture at one eps
  kde/-/eps=<e>                                 full-dimensional RFF and every projected d' (rows' method
                                                rff / rff_proj): the speed and error ratios are measured
                                                in the same unit, on the same queries
  classify/-/eps=<e>                            DP-SGD, private average Gaussian-kernel similarity and private
                                                average cosine similarity (rows' method), timed side by side
  classify/centroid_nonprivate/-                the non-private nearest-centroid reference
"""

from collections.abc import Callable
from pathlib import Path

import numpy as np
from omegaconf import DictConfig
from scipy.spatial.distance import cdist

from repro.core.context import RunContext
from repro.core.errors import ConfigError, DataUnavailableError
from repro.core.units import Unit, grid, unit
from repro.papers.dp_similarity.data import DigitsSplit, digits_split, gaussian_mixture, load_embeddings
from repro.papers.dp_similarity.dpsgd import noise_for_epsilon, predict_logreg, train_dpsgd_logreg
from repro.papers.dp_similarity.kde import PrivateRFFKDE, median_distance
from repro.papers.dp_similarity.l1 import BINNED, STRUCTURES, make_structure

DIGIT_RADIUS = 16.0   # digits pixels lie in [0, 16]
CLASSES = 10
METHODS = (*STRUCTURES, "centroid_nonprivate")


def units(cfg: DictConfig) -> list[Unit]:
    structures = list(cfg.l1.structures)
    binned = [name for name in structures if name in BINNED]
    unbinned = [name for name in structures if name not in BINNED]
    return [*grid("l1_digits", binned, log2_bins=list(cfg.l1.log_bins), eps=list(cfg.l1.eps)),
            *grid("l1_digits", unbinned, eps=list(cfg.l1.eps)),
            *grid("l1_dim", structures, d=list(cfg.l1_dim.dims)),
            *grid("l1_1d", binned, log2_bins=list(cfg.l1_1d.log_bins)),
            *[unit("l1_1d", name) for name in unbinned],
            *grid("kde", eps=list(cfg.kde.eps)),
            unit("classify", "centroid_nonprivate"),
            *grid("classify", eps=list(cfg.classify.eps))]


def run_unit(cfg: DictConfig, ctx: RunContext, u: Unit) -> list[dict]:
    if u.experiment == "l1_digits":
        return l1_digits_rows(cfg, ctx, u.method, u.settings.get("log2_bins"), u.settings["eps"])
    if u.experiment == "l1_dim":
        return l1_dim_rows(cfg, ctx, u.method, u.settings["d"])
    if u.experiment == "l1_1d":
        return l1_one_dim_rows(cfg, ctx, u.method, u.settings.get("log2_bins"))
    if u.experiment == "kde":
        return kde_rows(cfg, ctx, u.settings["eps"])
    if u.method == "centroid_nonprivate":
        return centroid_rows(cfg, ctx)
    return classify_rows(cfg, ctx, u.settings["eps"])


def digits(cfg: DictConfig, ctx: RunContext) -> DigitsSplit:
    """This replicate's split of the digits (the same for every unit of the replicate)."""
    return ctx.shared("digits", lambda: digits_split(cfg.digits.private, cfg.digits.public, ctx.data_seed("digits")))


def errors(estimate: np.ndarray, exact: np.ndarray, count: int) -> dict:
    """Median relative and absolute error over queries, and the absolute error per private point."""
    absolute = np.abs(estimate - exact)
    return {"rel_err": float(np.median(absolute / np.abs(exact))), "abs_err": float(np.median(absolute)),
            "abs_err_per_n": float(np.median(absolute) / count)}


def timed(ctx: RunContext, function: Callable[[], np.ndarray], repeats: int = 1) -> tuple[np.ndarray, float]:
    """Result (of the last call) and the best wall time of `repeats` calls."""
    best = np.inf
    for _ in range(repeats):
        with ctx.stopwatch() as clock:
            result = function()
        best = min(best, clock.seconds)
    return result, best


def l1_row(cfg: DictConfig, ctx: RunContext, name: str, points: np.ndarray, queries: np.ndarray, exact: np.ndarray,
           radius: float, bits: int | None, eps: float) -> dict:
    """Build one structure on the points (pure eps-DP), answer every query, and compare with the exact sums."""
    rng = np.random.default_rng(ctx.child_seed("noise"))
    structure = make_structure(name, radius, bits, cfg.l1.alpha, len(points), points.shape[1], eps)
    structure, build_s = timed(ctx, lambda: structure.build(points, eps, rng))
    estimate, query_s = timed(ctx, lambda: structure.query(queries))
    row = {"eps": eps, "d": points.shape[1], "n": len(points), "build_time_s": build_s,
           "query_time_s": query_s / len(queries), **errors(estimate, exact, len(points))}
    if name in BINNED:
        row["log2_bins"] = bits
    else:
        row["grid_points"] = structure.grid_points
    return row


def exact_l1(points: np.ndarray, queries: np.ndarray) -> np.ndarray:
    return cdist(points, queries, "cityblock").sum(0)


def l1_digits_rows(cfg: DictConfig, ctx: RunContext, name: str, bits: int | None, eps: float) -> list[dict]:
    split = digits(cfg, ctx)
    exact = ctx.shared("l1_digits_exact", lambda: exact_l1(split.private, split.queries))
    return [l1_row(cfg, ctx, name, split.private, split.queries, exact, DIGIT_RADIUS, bits, eps)]


def mixture(cfg: DictConfig, ctx: RunContext, dim: int, count: int, queries: int) -> tuple:
    """Points and queries from one Gaussian mixture in [0, 1]^dim (R = 1), and the exact l1 sums."""
    rng = np.random.default_rng(ctx.data_seed("mixture", dim))
    points, centres = gaussian_mixture(count, dim, cfg.mixture.centres, cfg.mixture.sd, rng)
    asked, _ = gaussian_mixture(queries, dim, cfg.mixture.centres, cfg.mixture.sd, rng, centres)
    return points, asked, exact_l1(points, asked)


def l1_dim_rows(cfg: DictConfig, ctx: RunContext, name: str, dim: int) -> list[dict]:
    """How the error grows with d at fixed eps and bins."""
    c = cfg.l1_dim
    points, queries, exact = ctx.shared(f"mixture-d{dim}", lambda: mixture(cfg, ctx, dim, c.n, c.queries))
    return [l1_row(cfg, ctx, name, points, queries, exact, 1.0, c.log_bins, c.eps)]


def l1_one_dim_rows(cfg: DictConfig, ctx: RunContext, name: str, bits: int | None) -> list[dict]:
    """1-D mixture: the structures over the bin count at one eps."""
    c = cfg.l1_1d
    points, queries, exact = ctx.shared("mixture-1d", lambda: mixture(cfg, ctx, 1, c.n, c.queries))
    return [l1_row(cfg, ctx, name, points, queries, exact, 1.0, bits, c.eps)]


def kde_rows(cfg: DictConfig, ctx: RunContext, eps: float) -> list[dict]:
    """Digits: RFF DP-KDE in the full d = 64 vs after a JL projection to d'; sigma from the public split."""
    split = digits(cfg, ctx)
    private, queries = split.private, split.queries
    sigma = median_distance(split.public)
    exact = np.exp(-cdist(private, queries, "sqeuclidean") / sigma**2).sum(0)
    rows, full = [], None
    for projected in [None, *cfg.kde.projected_dims]:
        maps = np.random.default_rng(ctx.child_seed("features", projected or 0))   # public randomness
        structure = PrivateRFFKDE(private.shape[1], cfg.kde.features, sigma, projected, maps)
        noise = np.random.default_rng(ctx.child_seed("noise", projected or 0))
        structure, build_s = timed(ctx, lambda s=structure, r=noise: s.build(private, eps, r))
        estimate, query_s = timed(ctx, lambda s=structure: s.query(queries), cfg.kde.timing_repeats)
        row = {"method": "rff" if projected is None else "rff_proj", "bandwidth": sigma,
               "projected_dim": projected or private.shape[1], "build_time_s": build_s,
               "query_time_s": query_s / len(queries), **errors(estimate, exact, len(private))}
        if projected is None:
            full = row
        else:   # same unit, same queries: the speed ratio the claim is about
            row["speedup_vs_full_x"] = full["query_time_s"] / row["query_time_s"]
            row["err_ratio_vs_full"] = row["rel_err"] / full["rel_err"]
        rows.append(row)
    return rows


def unit_rows(features: np.ndarray) -> np.ndarray:
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


def private_average_classifier(embed: Callable[[np.ndarray], np.ndarray], sensitivity: float, features: np.ndarray,
                               labels: np.ndarray, eps: float, count_share: float, rng: np.random.Generator,
                               ) -> Callable[[np.ndarray], np.ndarray]:
    """Per class c: noisy sum of embeddings (Laplace(sensitivity / ((1 - s) eps))) over noisy count
    (Laplace(1 / (s eps))); each point is in one class, so the classes compose in parallel: eps-DP overall.
    Predict argmax_c <average_c, embed(y)>, the average similarity to the private examples of class c."""
    embedded = embed(features)
    averages = []
    for c in range(CLASSES):
        total = embedded[labels == c].sum(0) + rng.laplace(scale=sensitivity / ((1 - count_share) * eps),
                                                            size=embedded.shape[1])
        count = (labels == c).sum() + rng.laplace(scale=1 / (count_share * eps))
        averages.append(total / max(count, 1.0))
    averages = np.array(averages)
    return lambda queries: (embed(queries) @ averages.T).argmax(1)


def classification_data(cfg: DictConfig, ctx: RunContext) -> tuple[np.ndarray, ...]:
    """(private, labels, public, test, test labels), unit-norm rows. Digits (pixel vectors as the embedding)
    or CIFAR-10 embeddings; the public split of CIFAR-10 is the first ``classify.public`` training images,
    left out of the private set."""
    c = cfg.classify
    if c.dataset == "digits":
        split = digits(cfg, ctx)
        private, labels, public, test, test_labels = (split.private, split.private_labels, split.public,
                                                      split.queries, split.query_labels)
    elif c.dataset == "cifar10_embeddings":
        path = Path(ctx.data_dir) / c.embeddings_file
        train, train_labels, test, test_labels = ctx.shared("embeddings", lambda: load_embeddings(path, CLASSES))
        public, private, labels = train[:c.public], train[c.public:], train_labels[c.public:]
        absent = sorted(set(range(CLASSES)) - set(labels.tolist()))
        if absent:
            raise DataUnavailableError(
                f"{path}: classes {absent} have no training row after the first paper.classify.public = "
                f"{c.public} rows (the public split); every class needs private examples: store more training "
                "rows or lower paper.classify.public")
    else:
        raise ConfigError(f"paper.classify.dataset = {c.dataset!r}; use digits or cifar10_embeddings")
    return unit_rows(private), labels, unit_rows(public), unit_rows(test), test_labels


def centroid_rows(cfg: DictConfig, ctx: RunContext) -> list[dict]:
    private, labels, _, test, test_labels = classification_data(cfg, ctx)
    centroids = np.array([private[labels == k].mean(0) for k in range(CLASSES)])
    return [{"acc": float(((test @ centroids.T).argmax(1) == test_labels).mean())}]


def classify_rows(cfg: DictConfig, ctx: RunContext, eps: float) -> list[dict]:
    """Accuracy and wall time of DP-SGD and of the private average-similarity classifiers at one eps
    (embedding extraction is not timed); the Gaussian kernel's bandwidth comes from the public split."""
    private, labels, public, test, test_labels = classification_data(cfg, ctx)
    c = cfg.classify
    kde = PrivateRFFKDE(private.shape[1], c.features, median_distance(public), None,
                        np.random.default_rng(ctx.child_seed("features")))
    methods = {
        "avg_kde": (kde.feature_map, kde.sensitivity),
        "avg_cosine": (lambda x: x, float(np.sqrt(private.shape[1]))),   # ||x||_1 <= sqrt(d) ||x||_2
    }
    q = c.dpsgd.batch_size / len(private)
    steps = int(c.dpsgd.epochs / q)
    with ctx.stopwatch() as clock:
        noise = noise_for_epsilon(q, steps, eps, c.dpsgd.delta)
    calibration_s = clock.seconds
    sgd = np.random.default_rng(ctx.child_seed("dpsgd"))

    def dpsgd() -> np.ndarray:
        weights = train_dpsgd_logreg(private, labels, CLASSES, noise, c.dpsgd.batch_size, c.dpsgd.epochs,
                                     c.dpsgd.lr, c.dpsgd.clip, sgd)
        return predict_logreg(weights, test)

    predicted, dpsgd_s = timed(ctx, dpsgd, c.timing_repeats)          # best of repeats: the host is shared
    dpsgd_acc = float((predicted == test_labels).mean())
    rows = [{"method": "dpsgd_logreg", "acc": dpsgd_acc, "time_s": dpsgd_s, "noise_multiplier": noise,
             "calibration_time_s": calibration_s}]
    for name, (embed, sensitivity) in methods.items():
        rng = np.random.default_rng(ctx.child_seed("noise", name))

        def similarity(f: Callable = embed, delta: float = sensitivity, r: np.random.Generator = rng) -> np.ndarray:
            return private_average_classifier(f, delta, private, labels, eps, c.count_share, r)(test)

        predicted, seconds = timed(ctx, similarity, c.timing_repeats)
        acc = float((predicted == test_labels).mean())
        rows.append({"method": name, "acc": acc, "time_s": seconds, "acc_gap_vs_dpsgd": acc - dpsgd_acc,
                     "speedup_vs_dpsgd_x": dpsgd_s / seconds})
    return rows
