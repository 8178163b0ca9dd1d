"""EBV: the generator and the heads against independent oracles (Welch bound, the regular simplex, QR
orthonormal rows, scipy's pairwise cosines, sklearn's accuracy), and the ImageNet loader on JPEGs in the real
folder layout (write_dry_data)."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from scipy.spatial.distance import pdist
from scipy.stats import ortho_group
from sklearn.metrics import accuracy_score

from repro.core.errors import DataUnavailableError
from repro.papers.ebv.data import imagenet_files, imagenet_splits, synthetic_splits
from repro.papers.ebv.ebv import generate_ebv, max_abs_cos, pairwise_cos, welch_bound
from repro.papers.ebv.models import (
    Classifier,
    CosineHead,
    EBVHead,
    FCHead,
    ResNet50,
    ebv_dim,
    mlp,
    trainable_head_parameters,
)
from repro.papers.ebv.task import accuracy, mix_batch


def _gen(n: int, d: int, tau: float, steps: int = 3000, slice_size: int = 130, seed: int = 1, lr: float = 1e-3):
    return generate_ebv(n, d, tau, steps, lr, slice_size, torch.Generator().manual_seed(seed), "cpu")


def _scipy_max_abs_cos(w: np.ndarray) -> float:
    return float(np.abs(1.0 - pdist(np.asarray(w, dtype=np.float64), "cosine")).max())


def test_welch_bound_values_of_the_card() -> None:
    assert welch_bound(200, 100) == pytest.approx(0.0709, abs=5e-5)
    assert welch_bound(200, 50) == pytest.approx(0.1228, abs=5e-5)
    assert welch_bound(100, 100) == 0.0 and welch_bound(50, 200) == 0.0


@pytest.mark.parametrize("d", [2, 3, 7, 20])
def test_regular_simplex_attains_the_welch_bound(d: int) -> None:
    """N = d + 1: the centred standard basis of R^(d+1) lies in a d-dim subspace; every |cos| is 1/d."""
    simplex = np.eye(d + 1) - 1.0 / (d + 1)
    basis = np.linalg.svd(simplex)[2][:d]            # orthonormal coordinates of that subspace
    w = simplex @ basis.T                               # (d + 1) x d
    cos = 1.0 - pdist(w, "cosine")
    assert np.allclose(np.abs(cos), 1.0 / d, atol=1e-12)
    assert welch_bound(d + 1, d) == pytest.approx(1.0 / d, rel=1e-12)
    assert max_abs_cos(torch.tensor(w)) == pytest.approx(1.0 / d, rel=1e-9)


def test_cosine_summaries_match_scipy() -> None:
    w = torch.randn(30, 7, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 5
    assert np.allclose(np.sort(pairwise_cos(w)), np.sort(1.0 - pdist(w.numpy(), "cosine")), atol=1e-12)
    assert max_abs_cos(w) == pytest.approx(_scipy_max_abs_cos(w.numpy()), abs=1e-12)
    q = ortho_group.rvs(12, random_state=4)[:9]        # orthonormal rows: the exact optimum for N <= d
    assert max_abs_cos(torch.tensor(q)) < 1e-12


def test_generator_reaches_tau_when_n_le_d_as_qr_does() -> None:
    tau = 0.002
    out = _gen(40, 40, tau)
    assert out.reached and out.steps < 3000
    assert _scipy_max_abs_cos(out.basis.numpy()) <= tau + 1e-4 + 1e-6   # float32 rows, float64 check
    assert np.allclose(out.basis.norm(dim=1).numpy(), 1.0, atol=1e-6)
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(40, 40)))
    assert _scipy_max_abs_cos(q) < 1e-10                                  # the optimum the generator approaches


def test_generator_never_goes_below_the_welch_bound() -> None:
    n, d = 12, 4
    bound = welch_bound(n, d)
    below = _gen(n, d, tau=0.5 * bound, steps=400)
    assert not below.reached and below.steps == 400                      # tau below the bound never terminates
    assert _scipy_max_abs_cos(below.basis.numpy()) >= bound - 1e-7


def test_slicing_changes_nothing() -> None:
    whole = _gen(25, 10, tau=0.3, steps=50, slice_size=1000)
    sliced = _gen(25, 10, tau=0.3, steps=50, slice_size=4)
    assert whole.steps == sliced.steps
    assert torch.allclose(whole.basis, sliced.basis, atol=1e-5)


def test_same_seed_same_basis_and_it_is_frozen() -> None:
    a, b = _gen(10, 6, 0.1, steps=100), _gen(10, 6, 0.1, steps=100)
    assert torch.equal(a.basis, b.basis)
    head = EBVHead(8, a.basis * 3.0, temperature=0.07)                  # rows are normalised again on entry
    assert "basis" not in dict(head.named_parameters()) and not head.basis.requires_grad
    model = Classifier(mlp(5, 8, 2), head)
    before = head.basis.clone()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    x, y = torch.randn(16, 5), torch.randint(0, 10, (16,))
    F.cross_entropy(model(x), y, label_smoothing=0.1).backward()
    optimizer.step()
    assert torch.equal(head.basis, before)
    assert "head.basis" in model.state_dict()                            # saved with the model: test = train


def test_ebv_logits_are_cosines_over_temperature() -> None:
    torch.manual_seed(0)
    basis = F.normalize(torch.randn(6, 4), dim=1)
    head = EBVHead(5, basis, temperature=0.07)
    f = torch.randn(9, 5)
    z = head.project(f).detach().numpy().astype(np.float64)
    e = basis.numpy().astype(np.float64)
    expected = (z / np.linalg.norm(z, axis=1, keepdims=True)) @ e.T / 0.07
    assert np.allclose(head(f).detach().numpy(), expected, atol=1e-4)
    cosine = CosineHead(5, 6, 0.07)
    assert cosine(f).abs().max() <= 1 / 0.07 + 1e-4


def test_head_parameter_counts_and_dims() -> None:
    assert trainable_head_parameters(FCHead(256, 200)) == 256 * 200 + 200
    assert trainable_head_parameters(EBVHead(256, torch.randn(200, 50), 0.07)) == 256 * 50 + 50
    assert trainable_head_parameters(CosineHead(256, 200, 0.07)) == 256 * 200 + 200 + 200 * 200
    assert [ebv_dim(m, 200) for m in ("fc", "ebv", "ebv_half", "ebv_quarter")] == [None, 200, 100, 50]
    assert ebv_dim("ebv_quarter", 10) == 2


def test_accuracy_matches_sklearn() -> None:
    torch.manual_seed(1)
    model = torch.nn.Linear(4, 5)
    x, y = torch.randn(103, 4), torch.randint(0, 5, (103,))
    with torch.no_grad():
        acc, loss = accuracy(model, x, y, batch=10)
        pred = model(x).argmax(1).numpy()
        ce = F.cross_entropy(model(x), y).item()
    assert acc == pytest.approx(accuracy_score(y.numpy(), pred), abs=1e-12)
    assert loss == pytest.approx(ce, rel=1e-5)


def test_mixup_cutmix_soft_targets() -> None:
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    y = torch.tensor([0, 2])
    for seed in range(20):
        mixed, soft = mix_batch(x, y, 4, 0.2, 1.0, np.random.default_rng(seed))
        assert mixed.shape == x.shape and torch.allclose(soft.sum(1), torch.ones(2))
        lam = float(soft[0, 0])                                 # sample 0's own label share
        own = (mixed[0] == x[0]).all(0).float().mean().item()   # CutMix: pixels kept from sample 0
        other = (mixed[0] == x[1]).all(0).float().mean().item()
        if own + other == pytest.approx(1.0):                   # a CutMix batch: lam is the kept area
            assert lam == pytest.approx(own, abs=1e-6)


def test_synthetic_splits_are_stratified_and_standardised() -> None:
    cfg = OmegaConf.create({"samples": 2000, "features": 16, "informative": 10, "redundant": 2, "classes": 20,
                            "class_sep": 2.0, "test": 500, "val": 300})
    splits = synthetic_splits(cfg, seed=5)
    x, y = splits["train"]
    assert len(y) == 1200 and len(splits["val"][1]) == 300 and len(splits["test"][1]) == 500
    assert np.allclose(x.mean(0).numpy(), 0, atol=1e-5) and np.allclose(x.std(0, unbiased=False).numpy(), 1, atol=1e-4)
    assert set(y.tolist()) == set(range(20)) == set(splits["test"][1].tolist())
    again = synthetic_splits(cfg, seed=5)
    assert torch.equal(again["test"][0], splits["test"][0])


def _write_imagenet(root: Path, classes: int, train: int, val: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, count in (("train", train), ("val", val)):
        for c in range(classes):
            folder = root / split / f"n{c:08d}"
            folder.mkdir(parents=True)
            for k in range(count):
                size = (int(rng.integers(48, 96)), int(rng.integers(48, 96)))
                pixels = (rng.random((size[1], size[0], 3)) * 60 + 60 * c).clip(0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"n{c:08d}_{k}.JPEG", quality=90)


def write_dry_data(data_dir: Path) -> None:
    """ImageNet's extracted layout (data_dir/imagenet/{train,val}/<wnid>/*.JPEG): 4 classes, 4 train and 2 val
    JPEGs each, of different sizes."""
    _write_imagenet(Path(data_dir) / "imagenet", classes=4, train=4, val=2)


def test_imagenet_loader_reads_the_folder_layout(tmp_path: Path) -> None:
    _write_imagenet(tmp_path / "imagenet", classes=3, train=2, val=1)
    splits = imagenet_splits(tmp_path / "imagenet", crop=32, resize=40, eval_crop=32, erase=1.0)
    assert splits["classes"] == 3 and len(splits["train"]) == 6 and len(splits["test"]) == 3
    image, label = splits["train"][5]
    assert image.shape == (3, 32, 32) and label == 2 and torch.isfinite(image).all()
    image, label = splits["test"][0]
    assert image.shape == (3, 32, 32) and label == 0
    features = ResNet50((1, 1, 1, 1))(torch.stack([splits["test"][i][0] for i in range(3)]))
    assert features.shape == (3, 2048)


def test_imagenet_loader_errors_name_the_path_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(DataUnavailableError, match="licence-gated"):
        imagenet_files(tmp_path / "imagenet", "train")
    _write_imagenet(tmp_path / "imagenet", classes=2, train=1, val=1)
    (tmp_path / "imagenet" / "val" / "n00000001").rename(tmp_path / "imagenet" / "val" / "n00000009")
    _, _, wnids = imagenet_files(tmp_path / "imagenet", "train")
    with pytest.raises(DataUnavailableError, match="class folders differ"):
        imagenet_files(tmp_path / "imagenet", "val", classes=wnids)
    (tmp_path / "imagenet" / "train" / "n00000000" / "n00000000_0.JPEG").unlink()
    with pytest.raises(DataUnavailableError, match="holds no images"):
        imagenet_files(tmp_path / "imagenet", "train")
    bad = tmp_path / "broken" / "train" / "n0"
    bad.mkdir(parents=True)
    (bad / "x.JPEG").write_bytes(b"not a jpeg")
    (tmp_path / "broken" / "train" / "n1").mkdir()
    (tmp_path / "broken" / "train" / "n1" / "y.JPEG").write_bytes(b"not a jpeg")
    files, labels, _ = imagenet_files(tmp_path / "broken", "train")
    from repro.papers.ebv.data import ImageNetSplit
    with pytest.raises(DataUnavailableError, match="not a readable image"):
        ImageNetSplit(files, labels, 16, 20, True)[0]


def test_welch_bound_is_math_sqrt_formula() -> None:
    # independent restatement for a few (N, d) with N > d
    for n, d in ((1000, 100), (1000, 500), (81, 80)):
        assert welch_bound(n, d) == pytest.approx(math.sqrt((n - d) / (d * (n - 1))))


def _numpy_generator_steps(init: np.ndarray, tau: float, lr: float, steps: int) -> np.ndarray:
    """The generator written out: w_i <- w_i / |w_i|, then one SGD step on L = sum_{i != j} relu(|w_i.w_j| - tau),
    whose gradient is dL/dw_i = 2 sum_{j != i} sign(c_ij) [|c_ij| > tau] w_j (each pair appears twice)."""
    w = init / np.linalg.norm(init, axis=1, keepdims=True)
    for _ in range(steps):
        w = w / np.linalg.norm(w, axis=1, keepdims=True)
        c = w @ w.T
        np.fill_diagonal(c, 0.0)
        w = w - lr * 2 * (np.sign(c) * (np.abs(c) > tau)) @ w
    return w / np.linalg.norm(w, axis=1, keepdims=True)


def test_generator_steps_match_numpy_sgd() -> None:
    n, d, tau, lr, seed = 9, 5, 0.3, 0.05, 7           # Welch bound 0.32 > tau: it never stops early
    init = torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float32).double().numpy()
    expected = _numpy_generator_steps(init, tau, lr, steps=3)
    c = expected @ expected.T
    assert ((np.abs(c) > tau) & ~np.eye(n, dtype=bool)).any() and (np.abs(c) < tau).any()   # both regimes
    out = _gen(n, d, tau, steps=3, slice_size=4, seed=seed, lr=lr)
    assert out.steps == 3 and not out.reached
    assert np.allclose(out.basis.numpy(), expected, atol=2e-5)


def test_generator_stops_within_the_tolerance() -> None:
    """A tau 5e-5 below the initial max |cos| is met within the tolerance 1e-4: no step is taken."""
    n, d, seed = 10, 6, 2
    init = torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float32).double().numpy()
    start = _scipy_max_abs_cos(init)
    out = _gen(n, d, tau=start - 5e-5, steps=10, seed=seed)
    assert out.reached and out.steps == 0
    assert out.max_abs_cos == pytest.approx(start, abs=1e-6)


def test_heads_normalise_their_class_vectors_against_numpy() -> None:
    torch.manual_seed(0)
    basis = torch.randn(6, 4, dtype=torch.float64)
    scales = torch.tensor([0.2, 1.0, 3.0, 7.0, 0.5, 2.0], dtype=torch.float64)[:, None]
    f = torch.randn(9, 5, dtype=torch.float64)

    def cosines_over_t(z: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        z = z / np.linalg.norm(z, axis=1, keepdims=True)
        return z @ (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).T / 0.07

    ebv = EBVHead(5, basis * scales, temperature=0.07).double()
    expected = cosines_over_t(ebv.project(f).detach().numpy(), basis.numpy())
    assert np.allclose(ebv(f).detach().numpy(), expected, atol=1e-10)
    cosine = CosineHead(5, 6, 0.07).double()
    with torch.no_grad():
        cosine.prototypes.mul_(scales)                    # learned prototypes drift off the unit sphere
    expected = cosines_over_t(cosine.project(f).detach().numpy(), cosine.prototypes.detach().numpy())
    assert np.allclose(cosine(f).detach().numpy(), expected, atol=1e-10)


def test_mixup_is_the_convex_combination_of_images_and_labels() -> None:
    x = torch.rand(3, 2, 6, 6)
    y = torch.tensor([0, 1, 3])
    mixups = 0
    for seed in range(12):
        rng = np.random.default_rng(seed)
        if np.random.default_rng(seed).random() >= 0.5:    # the batch's first draw picks CutMix: skip it
            continue
        mixed, soft = mix_batch(x, y, 4, 0.2, 1.0, rng)
        lam = float(soft[0, 0])
        assert torch.allclose(mixed[0], lam * x[0] + (1 - lam) * x[2], atol=1e-6)   # rolled by one: 0 with 2
        assert float(soft[0, 3]) == pytest.approx(1 - lam, abs=1e-6)
        mixups += 1
    assert mixups > 0
