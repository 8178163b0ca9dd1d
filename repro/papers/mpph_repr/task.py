"""Experiments of the MMA-representation paper.

Grid:
- ``<dataset>`` (orbit5k at cpu scale, each UCR data set at paper scale): every vectorisation of the same
  bifiltrations fed to the same cross-validated RBF SVM; accuracy and time per sample, timed side by side in
  one process (the module approximation is computed once and charged to both methods that read it).
- ``convergence/<method>/n1=...``: distance between the normalised representation of a noisy annulus with n1
  points and one with growth * n1 points (same law).
- ``stability/<method>``: change of the representation when every filtration value moves by at most eps.
- ``outliers/<method>``: change of the representation when uniform outliers are added to a clean annulus.
"""

import numpy as np
from omegaconf import DictConfig
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from repro.core.context import RunContext
from repro.core.errors import ConfigError
from repro.core.units import Unit, grid, unit
from repro.papers.mpph_repr import vectorise
from repro.papers.mpph_repr.bifiltration import Bifiltration, alpha_codensity, codensity, rips_codensity
from repro.papers.mpph_repr.data import annulus, orbits, ucr_clouds

METHODS = ("mma_image", "mp_landscape", "hilbert_sm", "pi_1p", "landscape_1p")
ON_BIFILTRATION = {"hilbert_sm": vectorise.hilbert_measure, "pi_1p": vectorise.persistence_image_1p,
                   "landscape_1p": vectorise.landscape_1p}
ON_MODULE = {"mma_image": vectorise.mma_image, "mp_landscape": vectorise.mp_landscape}


def units(cfg: DictConfig) -> list[Unit]:
    if cfg.data.dataset == "orbit5k":
        classification = [unit("orbit5k")]
    elif cfg.data.dataset == "ucr":  # fixed train/test split, deterministic pipeline: one run per data set
        classification = [unit(name, stochastic=False) for name in cfg.data.ucr.names]
    else:
        raise ConfigError(f"paper.data.dataset={cfg.data.dataset!r} is unknown; choose orbit5k or ucr")
    a = cfg.annulus
    return [*classification,
            *grid("convergence", a.methods, n1=list(a.n1)),
            *grid("stability", a.methods),
            *grid("outliers", a.methods)]


def run_unit(cfg: DictConfig, ctx: RunContext, u: Unit) -> list[dict]:
    if u.experiment in ("convergence", "stability", "outliers"):
        return annulus_rows(cfg, ctx, u)
    return classification_rows(cfg, ctx, u.experiment)


# ---------------------------------------------------------------- classification


def load_clouds(cfg: DictConfig, ctx: RunContext, dataset: str) -> tuple[list, np.ndarray, list, np.ndarray]:
    if cfg.data.dataset == "ucr":
        u = cfg.data.ucr
        return ucr_clouds(ctx.data_dir / u.root, dataset, u.dimension, u.delay, u.skip)
    o = cfg.data.orbit
    clouds, labels = orbits(list(o.rs), o.per_class, o.points, np.random.default_rng(ctx.data_seed("orbits")))
    order = np.random.default_rng(ctx.data_seed("split")).permutation(len(labels))
    cut = int(round(o.train_fraction * len(labels)))
    train, test = order[:cut], order[cut:]
    return [clouds[i] for i in train], labels[train], [clouds[i] for i in test], labels[test]


def rips_bifiltrations(f: DictConfig, train: list[np.ndarray], test: list[np.ndarray]) -> list[Bifiltration]:
    """Rips x co-density of every cloud on one box. Each cloud's Rips complex stops at the ``rips_quantile`` of
    its own pairwise distances (bounding its number of edges); the radius axis is normalised by the median of
    those caps over the training clouds and the co-density axis by its training min and max (the box depends on
    training clouds only)."""
    def cap(x: np.ndarray) -> float:
        return float(np.quantile(np.linalg.norm(x[:, None] - x[None], axis=-1)[np.triu_indices(len(x), 1)],
                                 f.rips_quantile))

    caps = [cap(x) for x in train + test]
    radius_scale = float(np.median(caps[:len(train)]))
    codensities = [codensity(x, f.kde_bandwidth) for x in train + test]
    pooled = np.concatenate(codensities[:len(train)])
    box = (float(pooled.min()), float(pooled.max()))
    return [rips_codensity(x, r, c, box, radius_scale) for x, r, c in zip(train + test, caps, codensities)]


def svm_accuracy(cfg: DictConfig, ctx: RunContext, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                 y_test: np.ndarray) -> tuple[float, float]:
    """Standardised features, RBF SVM, (C, gamma) chosen by stratified k-fold cross-validation on training data."""
    s = cfg.svm
    folds = StratifiedKFold(n_splits=s.folds, shuffle=True, random_state=ctx.child_seed("folds") % 2 ** 31)
    search = GridSearchCV(make_pipeline(StandardScaler(), SVC(kernel="rbf")),
                          {"svc__C": list(s.C), "svc__gamma": list(s.gamma)}, cv=folds, n_jobs=1)
    search.fit(x_train, y_train)
    return float(search.score(x_test, y_test)), float(search.best_score_)


def classification_rows(cfg: DictConfig, ctx: RunContext, dataset: str) -> list[dict]:
    train, y_train, test, y_test = load_clouds(cfg, ctx, dataset)
    bifiltrations = rips_bifiltrations(cfg.filtration, train, test)
    n, n_train = len(bifiltrations), len(train)
    ctx.log.info("%s: %d clouds, %.0f simplices on average", dataset, n,
                 np.mean([b.num_simplices for b in bifiltrations]))
    module_seconds = 0.0
    if set(cfg.methods) & set(ON_MODULE):
        with ctx.stopwatch() as clock:
            modules = [vectorise.module(b, cfg.mma.nlines) for b in bifiltrations]
        module_seconds = clock.seconds
    rows = []
    for method in cfg.methods:  # side by side in one process: the timing comparison is the measured quantity
        with ctx.stopwatch() as clock:
            if method in ON_MODULE:
                features = np.stack([ON_MODULE[method](m, cfg.image) for m in modules])
            else:
                features = np.stack([ON_BIFILTRATION[method](b, cfg.image) for b in bifiltrations])
        seconds = clock.seconds + (module_seconds if method in ON_MODULE else 0.0)
        accuracy, cv_accuracy = svm_accuracy(cfg, ctx, features[:n_train], y_train, features[n_train:], y_test)
        ctx.log.info("%s %s: accuracy %.3f (cv %.3f), %.4f s per sample", dataset, method, accuracy, cv_accuracy,
                     seconds / n)
        rows.append({"dataset": dataset, "method": method, "accuracy": accuracy, "cv_accuracy": cv_accuracy,
                     "time_per_sample_s": seconds / n, "features": features.shape[1]})
    return rows


# ---------------------------------------------------------------- noisy annulus


def annulus_features(cfg: DictConfig, method: str, bif: Bifiltration) -> np.ndarray:
    if method in ON_MODULE:
        return ON_MODULE[method](vectorise.module(bif, cfg.mma.nlines), cfg.image)
    return ON_BIFILTRATION[method](bif, cfg.image)


def annulus_bifiltration(a: DictConfig, points: np.ndarray) -> Bifiltration:
    return alpha_codensity(points, a.radius_max, codensity(points, a.kde_bandwidth), tuple(a.codensity_box))


def relative_change(new: np.ndarray, old: np.ndarray) -> float:
    return float(np.linalg.norm(new - old) / np.linalg.norm(old))


def annulus_rows(cfg: DictConfig, ctx: RunContext, u: Unit) -> list[dict]:
    a, method = cfg.annulus, u.method

    def features(points: np.ndarray) -> np.ndarray:
        return annulus_features(cfg, method, annulus_bifiltration(a, points))

    def sample(n: int, *names: object) -> np.ndarray:
        rng = np.random.default_rng(ctx.data_seed("annulus", *names))
        return annulus(n, int(round(a.outlier_ratio * n)), rng, a.r1, a.r2)

    if u.experiment == "convergence":
        # Representations of n1 and growth * n1 samples, each scaled to unit norm (the number of summands, and
        # so the image's mass, grows with n; convergence is of the normalised image).
        n1 = u.settings["n1"]
        small, large = features(sample(n1, n1, "small")), features(sample(a.growth * n1, n1, "large"))
        distance = np.linalg.norm(small / np.linalg.norm(small) - large / np.linalg.norm(large))
        return [{"n1": n1, "distance": float(distance)}]
    if u.experiment == "stability":
        points = sample(a.stability_n1, "stability")
        bif = annulus_bifiltration(a, points)
        base = annulus_features(cfg, method, bif)
        rng = np.random.default_rng(ctx.child_seed("jitter"))
        return [{"eps": eps, "distance": relative_change(annulus_features(cfg, method, bif.jittered(eps, rng)),
                                                         base)}
                for eps in a.eps]
    rng = np.random.default_rng(ctx.data_seed("annulus", "outliers"))
    ring = annulus(a.outliers_n1, 0, rng, a.r1, a.r2)
    noisy = np.vstack([ring, annulus(0, int(round(a.outlier_ratio * a.outliers_n1)), rng, a.r1, a.r2)])
    return [{"distance": relative_change(features(noisy), features(ring))}]
