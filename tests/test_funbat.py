"""FunBaT against independent oracles: the dense GP posterior (sklearn), scipy's matrix exponential for the
state-space transition, the Kronecker/unfolding convention, and the authors' array format; the baselines
(P-Tucker, Tucker-SVI, FTT-ALS) against tensors whose low-rank structure is known (tensorly builds them)."""

from pathlib import Path

import numpy as np
import pytest
import tensorly as tl
from scipy.linalg import expm
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel
from sklearn.gaussian_process.kernels import Matern as SklearnMatern

from repro.core.data import sha256
from repro.core.errors import DataUnavailableError
from repro.papers.funbat import data as funbat_data
from repro.papers.funbat.baselines import (
    BinnedTucker,
    FunctionalTT,
    TuckerSVI,
    bin_index,
    design_second_moment,
    ftt_als,
)
from repro.papers.funbat.data import (
    PAPER_FILES,
    BadDataError,
    UnsafeDataError,
    convert,
    git_blob_id,
    paper_file,
    parse_fold,
    synthetic,
)
from repro.papers.funbat.model import FunBaT, batched_kron, unfold_core
from repro.papers.funbat.statespace import Matern, smooth
from repro.papers.funbat.task import errors
from tests.helpers import compose_config


def _folds(entries: int, rng: np.random.Generator) -> list[np.ndarray]:
    """The authors' 5 random 80/20 splits (np.random.shuffle of the entry order per fold)."""
    order, train = np.arange(entries), int(entries * 0.8)
    splits = []
    for _ in range(5):
        rng.shuffle(order)
        splits.append((order[:train].copy(), order[train:].copy()))
    return splits


def beijing_conti_array(entries: int = 150, seed: int = 0) -> dict:
    """A small dict in the layout of the authors' CONTI_428x501x1461.npy (process_beijing.ipynb,
    process_conti_data): TEMP / PRES / time rescaled to [0, 10] and rounded (decimals 1, 1, 3), their unique-value
    recodings, 5 folds with DISCT and CONTI indices, targets, ndims and the never-seen test ids."""
    rng = np.random.default_rng(seed)
    conti = np.stack([np.round(rng.uniform(0, 10, entries), d) for d in (1, 1, 3)], 1)
    recodings = [{key: i for i, key in enumerate(np.unique(conti[:, k]))} for k in range(3)]
    disct = np.stack([np.array([recodings[k][v] for v in conti[:, k]], dtype=np.int64) for k in range(3)], 1)
    y = np.sin(conti[:, 0] / 3) * np.cos(conti[:, 2] / 4) + 0.1 * conti[:, 1] + 0.05 * rng.standard_normal(entries)
    ndims = [np.int64(len(r)) for r in recodings]
    folds = []
    for train, test in _folds(entries, rng):
        seen = [set(disct[train, k].tolist()) for k in range(3)]
        folds.append({"tr_ind_DISCT": disct[train], "tr_ind_CONTI": conti[train], "tr_y": y[train],
                      "te_ind_DISCT": disct[test], "te_ind_CONTI": conti[test], "te_y": y[test], "ndims": ndims,
                      "never_seen_test_idx": [sorted(set(r.values()) - seen[k]) for k, r in enumerate(recodings)]})
    return {"ndims": ndims, "data": folds, "CONTI_2_DISCT_dicts": recodings,
            "DISCT_2_CONTI_dicts": [{i: key for key, i in r.items()} for r in recodings]}


def us_temp_disct_array(entries: int = 150, seed: int = 1) -> dict:
    """A small dict in the layout of the authors' DISCT_15x95x267.npy (as read from their repository at the pinned
    commit): top-level ndims as numpy ints, 5 folds of int16 (N, 3) indices, float targets and an ndims array."""
    rng = np.random.default_rng(seed)
    ndims = np.array([15, 95, 267])
    index = np.stack([rng.integers(0, n, entries) for n in ndims], 1).astype(np.int16)
    y = 50 + 10 * np.sin(index[:, 2] / 40) - 0.3 * index[:, 0] + rng.standard_normal(entries)
    folds = [{"tr_ind": index[train], "tr_y": y[train], "te_ind": index[test], "te_y": y[test], "ndims": ndims}
             for train, test in _folds(entries, rng)]
    return {"ndims": [np.int64(n) for n in ndims], "data": folds}


def write_dry_data(data_dir: Path) -> None:
    """The authors' four arrays, tiny but in their pickled .npy layout, where the paper-scale loader looks for its
    downloads (<data_dir>/funbat/<file>_<name>.npy); scale=dry converts them with the restricted unpickler."""
    for name, relative in PAPER_FILES.items():
        dest = data_dir / "funbat" / Path(relative).name.replace(".npy", f"_{name}.npy")
        dest.parent.mkdir(parents=True, exist_ok=True)
        content = us_temp_disct_array() if name == "us_temp" else beijing_conti_array(seed=len(name))
        np.save(dest, content, allow_pickle=True)


@pytest.mark.parametrize("nu", [0.5, 1.5])
def test_transition_matches_matrix_exponential(nu: float) -> None:
    kernel = Matern(nu, 0.3, 2.0)
    lam = np.sqrt(3) / 0.3
    drift = np.array([[-1 / 0.3]]) if nu == 0.5 else np.array([[0.0, 1.0], [-lam**2, -2 * lam]])
    for dt in (0.01, 0.2, 1.5):
        assert np.allclose(kernel.transition(np.array([dt]))[0], expm(drift * dt), atol=1e-12)
    # the stationary covariance solves F P + P F^T + L Qc L^T = 0, i.e. A P A^T + Q = P with Q >= 0
    a = kernel.transition(np.array([0.1]))[0]
    noise = kernel.stationary() - a @ kernel.stationary() @ a.T
    assert np.all(np.linalg.eigvalsh(noise) >= -1e-12)
    if nu == 0.5:
        assert noise[0, 0] == pytest.approx(2.0 * (1 - np.exp(-2 * 0.1 / 0.3)))


@pytest.mark.parametrize("nu", [0.5, 1.5])
def test_smoother_equals_dense_gp_posterior(nu: float) -> None:
    rng = np.random.default_rng(0)
    train, test = np.sort(rng.uniform(0, 1, 60)), np.sort(rng.uniform(0, 1, 25))
    y = np.sin(6 * train) + 0.1 * rng.normal(size=train.size)
    variance, lengthscale, noise = 1.3, 0.2, 0.1**2
    grid = np.unique(np.concatenate([train, test]))
    at = np.searchsorted(grid, train)
    lam, eta = np.zeros((grid.size, 1, 1)), np.zeros((grid.size, 1))
    lam[at, 0, 0], eta[at, 0] = 1 / noise, y / noise                 # Gaussian likelihood as a message
    mean, cov = smooth(grid, lam, eta, Matern(nu, lengthscale, variance))
    kernel = ConstantKernel(variance, "fixed") * SklearnMatern(lengthscale, "fixed", nu=nu)
    gp = GaussianProcessRegressor(kernel, alpha=noise, optimizer=None).fit(train[:, None], y)
    oracle_mean, oracle_sd = gp.predict(grid[:, None], return_std=True)
    assert np.allclose(mean[:, 0], oracle_mean, atol=1e-8)
    assert np.allclose(np.sqrt(cov[:, 0, 0]), oracle_sd, atol=1e-8)


def test_points_without_messages_do_not_change_the_posterior() -> None:
    rng = np.random.default_rng(1)
    grid = np.sort(rng.uniform(0, 1, 40))
    lam = np.einsum("nij,nkj->nik", a := rng.normal(size=(40, 2, 2)), a)
    eta = rng.normal(size=(40, 2))
    kernel = Matern(1.5, 0.1, 1.0)
    mean, cov = smooth(grid, lam, eta, kernel)
    extra = np.sort(np.concatenate([grid, rng.uniform(0, 1, 15)]))
    keep = np.searchsorted(extra, grid)
    big_lam, big_eta = np.zeros((extra.size, 2, 2)), np.zeros((extra.size, 2))
    big_lam[keep], big_eta[keep] = lam, eta
    mean2, cov2 = smooth(extra, big_lam, big_eta, kernel)
    assert np.allclose(mean2[keep], mean, atol=1e-10) and np.allclose(cov2[keep], cov, atol=1e-10)


def test_kronecker_order_matches_the_core_and_its_unfoldings() -> None:
    rng = np.random.default_rng(2)
    ranks = [2, 3, 4]
    core = rng.normal(size=ranks)
    factors = [rng.normal(size=(7, r)) for r in ranks]
    oracle = np.einsum("abc,na,nb,nc->n", core, *factors)
    assert np.allclose(batched_kron(factors) @ core.ravel(), oracle)
    for k in range(3):
        others = batched_kron([f for j, f in enumerate(factors) if j != k])
        design = others @ unfold_core(core.ravel(), ranks, k).T                     # a_n, (N, R_k)
        assert np.allclose((design * factors[k]).sum(1), oracle)
    second = batched_kron([np.einsum("ni,nj->nij", f, f) for f in factors])
    assert np.allclose(second, np.einsum("ni,nj->nij", *(2 * [batched_kron(factors)])))


def test_funbat_fits_a_rank_one_tensor() -> None:
    data = synthetic(2, 300, 150, 0.05, seed=3)
    model = FunBaT([1, 1], Matern(1.5, 0.1, 1.0)).fit(data.train_index, data.train_y, data.test_index, 15,
                                                      np.random.default_rng(3))
    rmse = np.sqrt(np.mean((model.predict(data.test_index) - data.test_y) ** 2))
    assert rmse < 0.1 < np.std(data.test_y) * 2
    for k, truth in enumerate(data.truth):
        grid = model.grids[k]
        assert abs(np.corrcoef(model.factor_means(k, grid)[:, 0], truth(grid)[:, 0])[0, 1]) > 0.9


def test_binned_tucker_recovers_a_binned_tensor() -> None:
    rng = np.random.default_rng(4)
    index = np.vstack([rng.uniform(0, 1, size=(2000, 2)), [[0.0, 0.0], [1.0, 1.0]]])   # training range [0, 1]
    cells = np.minimum((index * 5).astype(int), 4)
    u, v = rng.normal(size=(5, 1)), rng.normal(size=(5, 1))
    y = u[cells[:, 0], 0] * v[cells[:, 1], 0]
    model = BinnedTucker([1, 1], 5, "tucker_als", iterations=30, ridge=1e-6).fit(index, y, rng)
    assert np.abs(model.predict(index) - y).max() < 1e-4


def full_binned_tucker(ranks: list[int], bins: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Every cell of a bins^K grid observed once at its centre, values from a random Tucker tensor built by
    tensorly (its own contraction, not ours) plus Gaussian noise."""
    rng = np.random.default_rng(seed)
    core = rng.normal(size=ranks)
    factors = [rng.normal(size=(bins, r)) for r in ranks]
    tensor = tl.tucker_to_tensor((core, factors))
    cells = np.stack(np.meshgrid(*[np.arange(bins)] * len(ranks), indexing="ij"), -1).reshape(-1, len(ranks))
    y = tensor[tuple(cells.T)] + noise * rng.normal(size=len(cells))
    return (cells + 0.5) / bins, y


def test_p_tucker_recovers_a_full_low_rank_tensor() -> None:
    """Full observations of an exact rank-(3, 3) matrix: P-Tucker's row-wise ALS with its fixed random core (for
    two modes any invertible core spans the same model, U1 G U2^T) refits it; its stop rule ends the sweeps."""
    index, y = full_binned_tucker([3, 3], 12, 0.0, seed=5)
    model = BinnedTucker([3, 3], 12, "p_tucker", iterations=500, ridge=1e-6, tolerance=1e-6).fit(
        index, y, np.random.default_rng(5))
    assert model.stopped
    assert np.sqrt(np.mean((model.predict(index) - y) ** 2)) < 1e-3 * np.std(y)


def test_p_tucker_keeps_its_core_and_the_rows_of_empty_bins() -> None:
    """The official code never updates the core and skips rows without observations."""
    rng = np.random.default_rng(6)
    index = np.vstack([rng.uniform(0, 0.5, size=(200, 2)), [[1.0, 1.0]]])   # bins 5..9 of mode 0 mostly empty
    y = np.sin(3 * index[:, 0]) * np.cos(2 * index[:, 1])
    model = BinnedTucker([2, 2], 10, "p_tucker", iterations=3, ridge=1e-3, tolerance=0.0)
    start = np.random.default_rng(7)
    first = start.random((10, 2))   # the fit's draws in order: the factors of mode 0, mode 1, then the core
    start.random((10, 2))
    core = start.random(4)
    model.fit(index, y, np.random.default_rng(7))
    assert np.array_equal(model.core, core)
    empty = np.setdiff1d(np.arange(10), model.cells(index)[:, 0])
    assert len(empty) and np.array_equal(model.factors[0][empty], first[empty])


def test_tucker_svi_recovers_a_full_low_rank_tensor() -> None:
    """Noisy full observations of a Tucker (2, 2, 2) tensor: the SVI posterior mean predicts the noise-free tensor
    to well under the noise level and E[1 / tau] approaches the noise variance."""
    index, y = full_binned_tucker([2, 2, 2], 8, 0.1, seed=8)
    clean = full_binned_tucker([2, 2, 2], 8, 0.0, seed=8)[1]
    model = TuckerSVI([2, 2, 2], 8, epochs=60, batch=128, delay=1.0, forgetting=0.75, a0=1.0, b0=1.0,
                      init_noise_fraction=0.1).fit(index, y, np.random.default_rng(8))
    assert np.sqrt(np.mean((model.predict(index) - clean) ** 2)) < 0.06
    assert 0.5 * 0.01 < 1 / model.tau < 2 * 0.01


def test_tucker_svi_second_moment_includes_the_core_covariance() -> None:
    """E[a a^T] for a = W_(k) b: a Monte Carlo average over draws of W ~ N(m, S) (b fixed, W_(k) unfolded by
    numpy's moveaxis, not our helper) matches the closed form the SVI step uses; with S dropped they disagree."""
    rng = np.random.default_rng(9)
    ranks, k = [2, 3, 2], 1
    mean, root = rng.normal(size=12), rng.normal(size=(12, 12)) / 3
    cov = root @ root.T
    b = rng.normal(size=4)
    draws = rng.multivariate_normal(mean, cov, size=50_000)
    a = np.einsum("nrp,p->nr", np.moveaxis(draws.reshape(-1, *ranks), k + 1, 1).reshape(-1, 3, 4), b)
    monte_carlo = a.T @ a / len(a)
    closed = design_second_moment(mean, cov, ranks, k, np.outer(b, b)[None])[0]
    assert np.allclose(closed, monte_carlo, atol=0.05 * np.abs(closed).max())
    without = design_second_moment(mean, 0 * cov, ranks, k, np.outer(b, b)[None])[0]
    assert not np.allclose(without, monte_carlo, atol=0.05 * np.abs(closed).max())


def test_functional_tt_evaluates_a_known_separable_function() -> None:
    """Cores set by hand to f(x) = g1(x1) [h1(x2) h2(x2)] [k1(x3) k2(x3)]^T with polynomials of degree <= 3 (TT ranks
    1, 2, 1): the evaluation equals the product computed directly with numpy's Legendre series."""
    rng = np.random.default_rng(10)
    index = rng.uniform(-1, 1, size=(50, 3))
    index[:2] = [[-1, -1, -1], [1, 1, 1]]   # the training range is [-1, 1]: x maps onto itself
    model = FunctionalTT(rank=2, degree=3, sweeps=0, ridge=0.0).fit(index, np.zeros(50), rng)
    c1, c2, c3 = rng.normal(size=(4, 1, 2)), rng.normal(size=(4, 2, 2)), rng.normal(size=(4, 2, 1))
    model.cores = [c1, c2, c3]
    leg = np.polynomial.legendre.legval
    first = np.stack([leg(index[:, 0], c1[:, 0, j]) for j in range(2)], 1)
    middle = np.stack([np.stack([leg(index[:, 1], c2[:, i, j]) for j in range(2)], 1) for i in range(2)], 1)
    last = np.stack([leg(index[:, 2], c3[:, i, 0]) for i in range(2)], 1)
    assert np.allclose(model.predict(index), np.einsum("ni,nij,nj->n", first, middle, last))


def test_ftt_als_recovers_a_separable_polynomial() -> None:
    """Noise-free y = p1(x1) p2(x2) p3(x3) (rank 1, degree 3): FTT-ALS fits it to rounding on fresh points."""
    rng = np.random.default_rng(11)
    index = rng.uniform(0, 1, size=(400, 3))
    test = rng.uniform(0.05, 0.95, size=(100, 3))

    def truth(x: np.ndarray) -> np.ndarray:
        return (1 + x[:, 0] - 2 * x[:, 0] ** 3) * (0.5 - x[:, 1] ** 2) * (x[:, 2] + 3 * x[:, 2] ** 2)

    model = ftt_als(index, truth(index), rank=1, degrees=[1, 3], sweeps=20, ridge=1e-10, validation=0.2, rng=rng)
    assert model.degree == 3
    assert np.abs(model.predict(test) - truth(test)).max() < 1e-6


def test_parse_authors_array(tmp_path) -> None:
    """The authors' np.save'd dict {'ndims', 'data': [fold dicts]} with continuous or integer index keys, converted
    by the restricted reader into an .npz of plain arrays and parsed without pickle."""
    fold = {"tr_ind_CONTI": np.array([[1.0, 10.0], [3.0, 30.0], [2.0, 20.0]]), "tr_y": np.array([[1.0], [2.0], [3.0]]),
            "te_ind_CONTI": np.array([[2.5, 15.0]]), "te_y": np.array([4.0])}
    np.save(tmp_path / "conti.npy", {"ndims": [3, 3], "data": [fold]}, allow_pickle=True)
    data = parse_fold(convert(tmp_path / "conti.npy", tmp_path / "conti.npz"), 0)
    assert np.allclose(data.train_index, [[0, 0], [1, 1], [0.5, 0.5]])
    assert np.allclose(data.test_index, [[0.75, 0.25]]) and np.allclose(data.train_y, [1, 2, 3])
    integer = {"tr_ind": np.array([[0, 1], [4, 0]]), "tr_y": np.array([1.0, 2.0]), "te_ind": np.array([[2, 1]]),
               "te_y": np.array([0.5])}
    np.save(tmp_path / "disct.npy", {"ndims": np.array([5, 2]), "data": [integer, fold]}, allow_pickle=True)
    converted = convert(tmp_path / "disct.npy", tmp_path / "disct.npz")
    assert np.allclose(parse_fold(converted, 0).test_index, [[0.5, 1.0]])
    assert np.allclose(parse_fold(converted, 1).train_y, [1, 2, 3])


def test_pickled_object_array_is_refused_with_a_clear_error(tmp_path) -> None:
    """parse_fold reads with allow_pickle=False: the authors' raw pickled dict is refused, naming the fix."""
    np.save(tmp_path / "raw.npy", {"ndims": [3, 3], "data": [{"tr_y": np.ones(2)}]}, allow_pickle=True)
    fix = r"raw\.npy holds pickled Python objects.*python -m repro\.papers\.funbat\.data"
    with pytest.raises(UnsafeDataError, match=fix):
        parse_fold(tmp_path / "raw.npy", 0)


def test_planted_pickle_payload_never_runs(tmp_path) -> None:
    """A pickle that calls os.system when loaded: neither parse_fold nor the converter runs it."""
    marker = tmp_path / "pwned"
    from tests.helpers import Payload

    payload = Payload(marker)
    planted = np.empty((), dtype=object)
    planted[()] = {"ndims": [2, 2], "data": [payload]}
    np.save(tmp_path / "planted.npy", planted, allow_pickle=True)
    with pytest.raises(UnsafeDataError, match="pickled"):
        parse_fold(tmp_path / "planted.npy", 0)
    with pytest.raises(UnsafeDataError, match=r"(posix|os|nt)\.system.*refusing"):
        convert(tmp_path / "planted.npy", tmp_path / "planted.npz")
    assert not marker.exists() and not (tmp_path / "planted.npz").exists()
    np.save(tmp_path / "plain.npy", np.ones(3))
    with pytest.raises(UnsafeDataError, match="plain float64 array"):
        convert(tmp_path / "plain.npy", tmp_path / "plain.npz")


def test_dry_arrays_convert_and_parse_every_fold(tmp_path: Path) -> None:
    """The files scale=dry reads go through the paper-scale path: placed download, conversion, five folds."""
    write_dry_data(tmp_path)
    for name in PAPER_FILES:
        converted = paper_file(name, tmp_path)
        for fold in range(5):
            data = parse_fold(converted, fold)
            assert data.train_index.shape == (120, 3) and data.test_index.shape == (30, 3)
            assert data.train_index.min() == 0 and data.train_index.max() == 1


def test_git_blob_id_is_gits(tmp_path: Path) -> None:
    (tmp_path / "hello.txt").write_bytes(b"hello\n")
    assert git_blob_id(tmp_path / "hello.txt") == "ce013625030ba8dba906f756967f9e9ca394464a"   # git hash-object


def test_every_paper_file_is_pinned() -> None:
    pins = compose_config(["paper=funbat", "scale=paper"]).paper.data_pins
    assert set(pins) == set(PAPER_FILES)
    for name, pin in pins.items():
        assert len(pin.git_blob) == 40 and int(pin.git_blob, 16) >= 0, name
    assert len(pins.us_temp.sha256) == 64


def test_downloads_are_checked_against_the_pins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A download whose SHA-256 or git blob id is not the pinned one is refused, naming the file and the fix."""
    source = tmp_path / "authors"
    authors = source / PAPER_FILES["us_temp"]
    authors.parent.mkdir(parents=True)
    np.save(authors, us_temp_disct_array(), allow_pickle=True)
    monkeypatch.setattr(funbat_data, "REPOSITORY", source.as_uri() + "/")
    good = {"sha256": sha256(authors), "git_blob": git_blob_id(authors)}
    assert parse_fold(paper_file("us_temp", tmp_path / "ok", good), 2).train_y.shape == (120,)
    with pytest.raises(DataUnavailableError, match="wrong SHA-256"):
        paper_file("us_temp", tmp_path / "sha", {**good, "sha256": "0" * 64})
    with pytest.raises(DataUnavailableError, match=r"DISCT_15x95x267_us_temp\.npy: git blob id .* Delete it"):
        paper_file("us_temp", tmp_path / "blob", {"git_blob": "0" * 40})
    assert not (tmp_path / "blob" / "funbat" / "DISCT_15x95x267_us_temp.npz").exists()


@pytest.mark.parametrize(("change", "message"), [
    ({"fold0.tr_y": np.array([1.0, np.nan, 2.0])}, "NaN or inf"),
    ({"fold0.tr_ind": np.array([[0, 1], [-1, 0], [2, 2]])}, "negative integer indices"),
    ({"fold0.te_y": np.array([1.0, 2.0])}, r"te_y has shape \(2,\) for 1 entries"),
    ({"fold0.te_ind": np.array([[1, 1, 1]])}, "2 modes in training and 3 in test"),
    ({"fold0.tr_ind": np.zeros((0, 2), dtype=int), "fold0.tr_y": np.zeros(0)}, "not \\(entries > 0"),
])
def test_bad_folds_are_refused_naming_the_file(tmp_path: Path, change: dict, message: str) -> None:
    arrays = {"fold0.tr_ind": np.array([[0, 1], [1, 0], [2, 2]]), "fold0.tr_y": np.array([1.0, 2.0, 3.0]),
              "fold0.te_ind": np.array([[1, 1]]), "fold0.te_y": np.array([4.0])}
    np.savez(tmp_path / "folds.npz", **{**arrays, **change})
    with pytest.raises(BadDataError, match=rf"folds\.npz: fold 0 .*{message}.*delete"):
        parse_fold(tmp_path / "folds.npz", 0)


def test_missing_fold_and_empty_fold_list_are_refused(tmp_path: Path) -> None:
    np.savez(tmp_path / "one.npz", **{"fold0.tr_ind": np.ones((2, 2)), "fold0.tr_y": np.ones(2),
                                      "fold0.te_ind": np.ones((1, 2)), "fold0.te_y": np.ones(1)})
    with pytest.raises(BadDataError, match=r"one\.npz: no fold 3 \(the file has folds \[0\]"):
        parse_fold(tmp_path / "one.npz", 3)
    np.save(tmp_path / "empty.npy", {"ndims": [2, 2], "data": []}, allow_pickle=True)
    with pytest.raises(UnsafeDataError, match=r"empty\.npy: the authors' dict has an empty 'data' list"):
        convert(tmp_path / "empty.npy", tmp_path / "empty.npz")


def funbat_state(seed: int) -> tuple[FunBaT, np.random.Generator]:
    """A FunBaT (ranks 2, 2) on 3 observations with hand-set Gaussian posteriors of the factors and the core, no
    damping: one update then returns exactly the computed messages."""
    rng = np.random.default_rng(seed)
    index, y = rng.uniform(0, 1, size=(3, 2)), rng.normal(size=3)
    model = FunBaT([2, 2], Matern(1.5, 0.2, 1.0), damping=0.0, damping_tau=0.0, damping_core=0.0, b0=0.7)
    model.fit(index, y, index[:0], 0, rng)
    for k in range(2):
        model.means[k] = rng.normal(size=(3, 2))
        root = rng.normal(size=(3, 2, 2)) / 2
        model.covs[k] = root @ np.swapaxes(root, 1, 2) + 0.1 * np.eye(2)
    model.core_mean = rng.normal(size=4)
    root = rng.normal(size=(4, 4)) / 3
    model.core_cov = root @ root.T
    model.tau_b = model.tau_a / 2.5                                       # E[tau] = 2.5
    return model, rng


def sampled_factors(model: FunBaT, k: int, rng: np.random.Generator, draws: int) -> np.ndarray:
    """Draws (draws, N, R) of u^k at the observations from its Gaussian posterior marginals."""
    positions = model.train_pos[k]
    roots = np.linalg.cholesky(model.covs[k][positions])
    return model.means[k][positions] + np.einsum("nij,snj->sni", roots, rng.normal(size=(draws, len(positions), 2)))


def test_funbat_messages_and_updates_against_monte_carlo() -> None:
    """CEP with independent Gaussian factors and core: the message to u^1 at observation n has precision
    E[tau] W_(1) E[b b^T] W_(1)^T (b = u^2(i_n2)); the core's precision is E[tau] sum_n E[x_n x_n^T] (x = u^1 kron
    u^2); the Gamma rate is b0 + (1/2) sum_n E[(y_n - vec(W)^T x_n)^2]; the shape a0 + N / 2. Oracles: Monte Carlo
    averages over draws of the factors and the core (W_(1) unfolded by numpy's reshape, x by einsum)."""
    model, rng = funbat_state(13)
    draws = 60_000
    u1, u2 = sampled_factors(model, 0, rng, draws), sampled_factors(model, 1, rng, draws)
    w = model.core_mean.reshape(2, 2)
    a = np.einsum("rp,snp->snr", w, u2)                                      # W_(1) b for the mean core
    precision_mc = 2.5 * np.einsum("dnr,dns->nrs", a, a) / draws
    x = np.einsum("sni,snj->snij", u1, u2).reshape(draws, 3, 4)
    core_mc = 2.5 * np.einsum("snp,snq->pq", x, x) / draws
    cores = rng.multivariate_normal(model.core_mean, model.core_cov, size=draws)
    squared_mc = ((model.y - np.einsum("sp,snp->sn", cores, x)) ** 2).mean(0).sum()
    assert model.tau_a == pytest.approx(1.0 + 3 / 2)
    model.update_tau()
    assert model.tau_b == pytest.approx(0.7 + squared_mc / 2, rel=0.03)
    model.tau_b = model.tau_a / 2.5
    model.update_core()
    np.testing.assert_allclose(model.core_natural[0], core_mc, rtol=0.05, atol=0.05 * np.abs(core_mc).max())
    model.core_mean = w.ravel()
    model.update_mode(0)
    np.testing.assert_allclose(model.messages[0][0], precision_mc, atol=0.05 * np.abs(precision_mc).max())


def test_tied_index_values_share_one_state_and_add_their_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two observations at the same index value of mode 0 are one point of the chain; its message is the sum of
    theirs (the product of the two Gaussian likelihood factors)."""
    from repro.papers.funbat import model as funbat_model

    rng = np.random.default_rng(14)
    index = np.array([[0.3, 0.1], [0.3, 0.6], [0.8, 0.4]])
    model = FunBaT([1, 1], Matern(1.5, 0.2, 1.0), damping=0.0).fit(index, rng.normal(size=3), index[:0], 0, rng)
    seen = []
    monkeypatch.setattr(funbat_model, "smooth", lambda grid, lam, eta, kernel: seen.append((grid, lam, eta))
                        or (np.zeros((len(grid), 1)), np.ones((len(grid), 1, 1))))
    model.update_mode(0)
    grid, lam, eta = seen[0]
    assert len(grid) == 2
    np.testing.assert_allclose(lam[0], model.messages[0][0][0] + model.messages[0][0][1])
    np.testing.assert_allclose(eta[0], model.messages[0][1][0] + model.messages[0][1][1])


def test_svi_minibatch_step_equals_a_full_step_on_the_repeated_minibatch() -> None:
    """SVI's noisy natural gradient: a step on minibatch S scaled by N / |S| is the coordinate optimum for the
    data set made of S repeated N / |S| times (rho = 1)."""
    import copy

    rng = np.random.default_rng(15)
    index, y = rng.uniform(0, 1, size=(8, 2)), rng.normal(size=8)
    model = TuckerSVI([2, 2], 3, 0, 8, 1.0, 0.75, 1.0, 1.0, 0.1).fit(index, y, rng)
    cells = model.cells(index)
    scaled, repeated = copy.deepcopy(model), copy.deepcopy(model)
    scaled.svi_step(cells[:4], y[:4], 2.0, 1.0)
    repeated.svi_step(np.concatenate([cells[:4], cells[:4]]), np.concatenate([y[:4], y[:4]]), 1.0, 1.0)
    for k in range(2):
        for a, b in zip(scaled.rows[k], repeated.rows[k]):
            np.testing.assert_allclose(a, b, rtol=1e-10)
    np.testing.assert_allclose(scaled.core_natural[0], repeated.core_natural[0], rtol=1e-10)
    assert scaled.tau_b == pytest.approx(repeated.tau_b, rel=1e-10)


def test_bins_come_from_the_training_range_only() -> None:
    """Equal-width bins over the TRAINING range [0.2, 0.8] (edges 0.2, 0.4, 0.6, 0.8); test values outside it are
    clipped into the end bins."""
    train = np.array([0.2, 0.5, 0.8])
    np.testing.assert_array_equal(bin_index(train, np.array([0.0, 0.35, 0.45, 0.79, 1.0]), 3), [0, 0, 1, 2, 2])


def test_errors_are_rmse_and_mae() -> None:
    result = errors(np.array([1.0, 2.0, 6.0]), np.zeros(3))
    assert result["test/rmse"] == pytest.approx(np.sqrt(41 / 3)) and result["test/mae"] == pytest.approx(3.0)
