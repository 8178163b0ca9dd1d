"""HiPPO: matrices, kernels and discretisation against scipy oracles; S4 convolution equals its recurrence;
LRA parsers on tiny files in the real formats."""

import io
import pickle
import tarfile
from pathlib import Path

import mpmath
import numpy as np
import pytest
import scipy.linalg
import scipy.signal
import scipy.stats
import torch
from omegaconf import OmegaConf
from scipy.special import eval_legendre

from repro.core.errors import ReproError
from repro.papers.hippo import hippo, lra
from repro.papers.hippo.s4 import (
    S4Classifier,
    S4Kernel,
    bidirectional_convolution,
    causal_convolution,
    initial_dplr,
    ssm_parameters,
)
from repro.papers.hippo.task import delay_batch, kernel_convergence_rows, signal, signal_terms


def test_legs_matches_the_written_formula() -> None:
    a, b = hippo.transition("legs", 5)
    assert a[3, 1] == pytest.approx(-np.sqrt(7 * 3)) and a[2, 2] == -3 and a[1, 3] == 0
    assert np.allclose(b, np.sqrt(2 * np.arange(5) + 1))


@pytest.mark.parametrize("t", [0.05, 0.3, 1.0, 2.5, 6.0])
def test_legs_kernel_is_warped_legendre(t: float) -> None:
    """expm(tA) B = sqrt(2n+1) P_n(2 e^-t - 1) e^-t, for the time-invariant LegS system."""
    a, b = hippo.transition("legs", 6)
    n = np.arange(6)
    exact = np.sqrt(2 * n + 1) * eval_legendre(n, 2 * np.exp(-t) - 1) * np.exp(-t)
    assert np.allclose(scipy.linalg.expm(t * a) @ b, exact, atol=1e-10)


def test_legt_kernel_converges_to_windowed_legendre() -> None:
    def err(n: int) -> float:
        a, b = hippo.transition("legt", n)
        return max(np.abs(scipy.linalg.expm(t * a) @ b - np.sqrt(2 * np.arange(n) + 1)
                          * eval_legendre(np.arange(n), 1 - 2 * t) * (t <= 1))[:4].max() for t in (0.3, 0.8, 1.5))

    assert err(256) < err(16) and err(256) < 0.05


def test_legt_kernel_error_is_not_a_numerical_artefact() -> None:
    """scipy's expm(tA)B for LegT agrees with 20-digit mpmath, so the kernel_err at finite N is the
    truncated system's own ringing around the windowed Legendre basis, not round-off."""
    a, b = hippo.transition("legt", 24)
    mpmath.mp.dps = 20
    exact = mpmath.expm(mpmath.matrix(a.tolist()) * 0.8) * mpmath.matrix(b.tolist())
    assert np.allclose(scipy.linalg.expm(0.8 * a) @ b, np.array(exact.tolist(), dtype=float)[:, 0], atol=1e-10)


def test_windowed_kernels_converge_in_n() -> None:
    rows = kernel_convergence_rows(OmegaConf.create({"n_values": [8, 32, 128], "n_compare": 4}))
    for measure in ("legt", "fout"):
        rms = [r["kernel_rms"] for r in rows if r["measure"] == measure]
        assert rms[0] > rms[1] > rms[2]


@pytest.mark.parametrize("measure,degree", [("legs", 3), ("legt", 2), ("fout", 5)])
def test_projection_of_a_basis_function_is_a_unit_vector(measure: str, degree: int) -> None:
    """Orthonormality in L2(omega): projecting g_d gives e_d (the quadrature oracle itself is right)."""
    coefficients = hippo.projection(measure, 8, lambda tau: hippo.basis(measure, 8, tau)[degree], tau_max=60.0)
    assert np.allclose(coefficients, np.eye(8)[degree], atol=1e-9)


@pytest.mark.parametrize("measure,n", [("legs", 32), ("legt", 64), ("fout", 64)])
def test_online_state_is_the_exact_projection(measure: str, n: int) -> None:
    """The bilinear HiPPO recurrence's final state equals the exact projection coefficients of the
    continuous history for the random test signal: up to the O(Delta) discretisation error for
    LegS (exact kernels at every N), and up to the finite-N kernel error as well for LegT / FouT."""
    length, dt = 2000, 0.005
    terms = signal_terms(32, 20.0, np.random.default_rng(3))
    u = signal(terms, np.linspace(0, 1, length))
    a, b = hippo.transition(measure, n)
    state = hippo.run_recurrence(*hippo.bilinear(a, b, dt), u)
    exact = hippo.projection(measure, n, lambda tau: signal(terms, 1 - tau / (dt * (length - 1))),
                             tau_max=dt * (length - 1))
    assert np.linalg.norm(state - exact) < 0.05 * np.linalg.norm(exact)


def test_fout_kernel_is_windowed_fourier() -> None:
    a, b = hippo.transition("fout", 256)
    for t in (0.2, 0.7):
        kernel = scipy.linalg.expm(t * a) @ b
        assert kernel[0] == pytest.approx(1, abs=0.02)
        assert kernel[2] == pytest.approx(np.sqrt(2) * np.cos(2 * np.pi * t), abs=0.02)
        assert kernel[3] == pytest.approx(np.sqrt(2) * np.sin(2 * np.pi * t), abs=0.02)
    assert np.abs(scipy.linalg.expm(1.5 * a) @ b)[:8].max() < 0.02


@pytest.mark.parametrize("measure,real_part", [("legs", -0.5), ("legt", 0.0), ("fout", 0.0)])
def test_normal_plus_low_rank(measure: str, real_part: float) -> None:
    n = 64
    a, _ = hippo.transition(measure, n)
    p = hippo.rank_correction(measure, n)
    s = a + p.T @ p
    assert np.allclose(s + s.T, 2 * real_part * np.eye(n), atol=1e-12)      # -I/2 (or 0) + skew
    assert np.allclose(np.linalg.eigvals(s).real, real_part, atol=1e-9)
    if measure == "legs":
        assert np.allclose(p[0], np.sqrt(np.arange(n) + 0.5))
    lam, pt, bt, v = hippo.conjugate_pairs(*hippo.nplr(measure, n))
    assert np.allclose(v @ v.conj().T, np.eye(n), atol=1e-12)
    assert np.allclose(v @ (np.diag(lam) - pt.T @ pt.conj()) @ v.conj().T, a, atol=1e-9)
    assert np.allclose(v @ bt, hippo.transition(measure, n)[1], atol=1e-12)


def test_bilinear_matches_scipy() -> None:
    a, b = hippo.transition("legs", 8)
    abar, bbar = hippo.bilinear(a, b, 0.01)
    ad, bd, *_ = scipy.signal.cont2discrete((a, b[:, None], np.eye(8), np.zeros((8, 1))), 0.01, method="bilinear")
    assert np.allclose(abar, ad, atol=1e-12) and np.allclose(bbar, bd[:, 0], atol=1e-12)


@pytest.mark.parametrize("init", ["legs", "legt", "fout", "random"])
def test_convolution_mode_equals_recurrent_mode(init: str) -> None:
    """Woodbury generating-function kernel (half the modes, irfft) + FFT convolution == the step-by-step
    recurrence of the dense N x N system with both modes of every conjugate pair, float64; its output is real."""
    n, length = 16, 64
    kernel = S4Kernel(2, n, init, (1e-2, 1e-1), np.random.default_rng(0)).double()
    with torch.no_grad():
        torch.manual_seed(0)
        kernel.c.add_(torch.randn_like(kernel.c))
        k = kernel(length)
        lam = kernel.diagonal().numpy()
        p, b, c = (torch.view_as_complex(t).numpy() for t in (kernel.p, kernel.b, kernel.c))
        dts = kernel.log_dt.exp().numpy()
    lam, p, b, _ = hippo.conjugate_pairs(lam, p, b, np.eye(n // 2))
    c = np.concatenate([c, c.conj()], axis=-1)
    u = np.random.default_rng(1).standard_normal((3, length))
    y_conv = causal_convolution(torch.as_tensor(u[:, None, :]).expand(-1, 2, -1), k).numpy()
    a = np.diag(lam) - p.T @ p.conj()
    for h in range(2):
        abar, bbar = hippo.bilinear(a, b, dts[h])
        c_h = np.linalg.solve((np.eye(n) - np.linalg.matrix_power(abar, length)).T, c[h])   # C from C~
        assert np.abs(hippo.recurrent_kernel(abar, bbar, c_h, length).imag).max() < 1e-10
        assert np.allclose(k[h].numpy(), hippo.recurrent_kernel(abar, bbar, c_h, length).real, atol=1e-10)
        for row in range(3):
            x, y = np.zeros(n, complex), np.empty(length)
            for step in range(length):
                x = abar @ x + bbar * u[row, step]
                y[step] = (c_h @ x).real
            assert np.allclose(y_conv[row, h], y, atol=1e-10)


def test_random_dplr_is_the_official_stable_initialisation() -> None:
    """s4's dplr(init='rand'): Re Lambda = -1/2, Im Lambda = -exp(N(0, 1)) (log-normal), B = 1, P ~ CN(0, 1);
    the dense A of both conjugate halves is stable (every eigenvalue in the open left half-plane)."""
    lam, p, b = initial_dplr("random", 4000, np.random.default_rng(0))
    assert np.allclose(lam.real, -0.5) and np.allclose(b, 1) and p.shape == (1, 2000)
    g = np.log(-lam.imag)
    assert abs(g.mean()) < 0.1 and abs(g.std() - 1) < 0.05
    assert abs(np.mean(np.abs(p) ** 2) - 1) < 0.1
    lam, p, b = initial_dplr("random", 64, np.random.default_rng(1))
    lam, p, _, _ = hippo.conjugate_pairs(lam, p, b, np.eye(32))
    assert np.linalg.eigvals(np.diag(lam) - p.T @ p.conj()).real.max() < 0


def test_reconstruction_of_a_smooth_history() -> None:
    """LegT: a degree-3 polynomial on the last window is read back almost exactly from the state."""
    dt, length = 1e-3, 3000
    tau = dt * np.arange(length)
    history = 1 - 2 * tau + 3 * tau**2 - tau**3          # u(t - tau)
    a, b = hippo.transition("legt", 32)
    state = hippo.run_recurrence(*hippo.bilinear(a, b, dt), history[::-1])
    window = tau <= 1
    error = hippo.reconstruct("legt", state, tau[window]) - history[window]
    assert np.mean(error[50:-50] ** 2) < 1e-4


def test_delay_batch_is_a_shift_of_lowpassed_noise() -> None:
    u, y = delay_batch(4, 256, 32, 0.1, torch.Generator().manual_seed(0))
    assert torch.equal(y, u[:, :-32])
    spectrum = torch.fft.rfft(u.double()).abs()
    assert spectrum[:, 20:].max() < 1e-4 * spectrum.max()
    assert torch.allclose(u.std(dim=1), torch.ones(4), atol=1e-5)


# ------------------------------------------------------------------------ Long Range Arena (scale=paper)

def test_listops_tsv_parser_and_unpacked_release(tmp_path) -> None:
    folder = tmp_path / "hippo" / "lra_release" / "lra_release" / "listops-1000"
    folder.mkdir(parents=True)
    for split in ("train", "val", "test"):
        (folder / f"basic_{split}.tsv").write_text(
            "Source\tTarget\n( ( ( [MAX 2 9 ] ) 1 ) )\t9\n( ( [SM 3 ( ( [MIN 4 7 ] ) 5 ) ] ) )\t2\n")
    assert lra.lra_release(tmp_path) == folder.parent
    (train, val, test), classes, vocab = lra.load_task("listops", tmp_path, max_length=8, seed=0)
    v = lra.LISTOPS_VOCAB.index
    assert train.x[0].tolist() == [v("[MAX"), v("2"), v("9"), v("]"), v("1"), 0, 0, 0]
    assert train.lengths.tolist() == [5, 8] and train.y.tolist() == [9, 2]       # second one truncated to 8
    assert classes == 10 and vocab == len(lra.LISTOPS_VOCAB)
    with pytest.raises(ValueError, match="ListOps token"):
        lra.listops_tokens("( [MAX 2 x ] )")


def test_aan_tsv_parser(tmp_path) -> None:
    path = tmp_path / "new_aan_pairs.train.tsv"
    path.write_text("1.0\tid-a\tid-b\tdeep nets\tshallow\n0.0\tid-c\tid-d\tx\ty z\n")
    split = lra.parse_aan(path, max_length=6)
    assert split.y.tolist() == [1, 0]
    assert split.x[0].tolist() == [b + 1 for b in b"deep n"] and split.lengths.tolist() == [6, 1]
    assert split.x2[1, :3].tolist() == [b + 1 for b in b"y z"] and split.lengths2.tolist() == [6, 3]


def _add(archive: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    archive.addfile(info, io.BytesIO(payload))


def test_imdb_archive_parser(tmp_path) -> None:
    path = tmp_path / "aclImdb_v1.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        _add(archive, "aclImdb/train/pos/0_9.txt", b"Great film.")
        _add(archive, "aclImdb/train/neg/1_2.txt", "Dull, sadly — avoid.".encode())
        _add(archive, "aclImdb/train/unsup/2_0.txt", b"not labelled")
        _add(archive, "aclImdb/train/urls_pos.txt", b"http://")
        _add(archive, "aclImdb/test/neg/3_1.txt", b"Bad.")
    reviews = lra.parse_imdb_archive(path)
    assert sorted(zip(*reviews["train"])) == [("Dull, sadly — avoid.", 0), ("Great film.", 1)]
    assert reviews["test"] == (["Bad."], [0])
    assert lra.byte_tokens("é") == [0xC3 + 1, 0xA9 + 1]


def test_cifar_archive_parser_is_grayscale(tmp_path) -> None:
    rng = np.random.default_rng(0)
    batches = {name: {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": list(range(n))}
               for name, n in (("data_batch_1", 3), ("data_batch_2", 2), ("test_batch", 2))}
    path = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for name, batch in batches.items():
            _add(archive, f"cifar-10-batches-py/{name}", pickle.dumps(batch))
    cifar = lra.parse_cifar_archive(path)
    assert cifar["train"][0].shape == (5, 1024) and cifar["test"][1].tolist() == [0, 1]
    r, g, b = (batches["data_batch_2"][b"data"][1, c * 1024 + 37] for c in range(3))   # pixel (1, 5)
    assert cifar["train"][0][4, 37] == pytest.approx((0.299 * r + 0.587 * g + 0.114 * b) / 255, abs=1e-6)


def test_cifar_refuses_a_planted_pickle_and_cifar100(tmp_path) -> None:
    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    for name, batch, match in (("planted", {b"data": Payload(), b"labels": [0]}, "refusing"),
                               ("cifar100", {b"data": np.zeros((2, 3072), np.uint8), b"fine_labels": [0, 1]},
                                "CIFAR-100"),
                               ("labels", {b"data": np.zeros((2, 3072), np.uint8), b"labels": [3, 57]}, "0..9")):
        path = tmp_path / f"{name}.tar.gz"
        with tarfile.open(path, "w:gz") as archive:
            for member in ("data_batch_1", "test_batch"):
                _add(archive, f"cifar-10-batches-py/{member}", pickle.dumps(batch, protocol=2))
        with pytest.raises(ReproError, match=match):
            lra.parse_cifar_archive(path)


def test_listops_and_aan_refuse_missing_or_out_of_range_labels(tmp_path) -> None:
    path = tmp_path / "basic_train.tsv"
    path.write_text("Source\tTarget\n( [MAX 2 9 ] )\t9\n( [MIN 2 9 ] )\t\n")
    with pytest.raises(ReproError, match="Target of row 1"):
        lra.parse_listops(path, 8)
    path.write_text("Source\tTarget\n( [MAX 2 9 ] )\t10\n")
    with pytest.raises(ReproError, match="0..9"):
        lra.parse_listops(path, 8)
    path = tmp_path / "new_aan_pairs.train.tsv"
    path.write_text("2\tid-a\tid-b\tx\ty\n")
    with pytest.raises(ReproError, match="0..1"):
        lra.parse_aan(path, 8)


def test_pathfinder_parser(tmp_path) -> None:
    from PIL import Image

    (tmp_path / "imgs" / "0").mkdir(parents=True)
    (tmp_path / "metadata").mkdir()
    pictures = np.random.default_rng(0).integers(0, 256, (2, 32, 32), dtype=np.uint8)
    for i, picture in enumerate(pictures):
        Image.fromarray(picture, mode="L").save(tmp_path / "imgs" / "0" / f"sample_{i}.png")
    (tmp_path / "imgs" / "0" / "sample_2.png").write_bytes(b"")          # the release's one empty image
    (tmp_path / "metadata" / "0.npy").write_text(
        "imgs/0 sample_0.png 0 1 14 1.5 2\nimgs/0 sample_1.png 1 0 14 1.5 2\nimgs/0 sample_2.png 2 1 14 1.5 2\n")
    pixels, labels = lra.parse_pathfinder(tmp_path)
    assert labels.tolist() == [1, 0]
    assert np.array_equal(pixels, pictures.reshape(2, -1))
    x = lra.normalised(pixels, 0.5, 0.5)
    assert x.dtype == torch.float16 and torch.allclose(x.float(), torch.as_tensor(pictures.reshape(2, -1) / 127.5 - 1,
                                                                                 dtype=torch.float32), atol=1e-2)


def test_split_off_is_a_seeded_partition() -> None:
    x, labels = torch.arange(20, dtype=torch.float16)[:, None].expand(20, 3), np.arange(20)
    parts = lra.split_off(x, labels, (0.8, 0.1, 0.1), seed=0)
    assert [len(p) for p in parts] == [16, 2, 2]
    assert sorted(torch.cat([p.y for p in parts]).tolist()) == list(range(20))
    assert all(torch.equal(p.x[:, 0].long(), p.y) for p in parts)           # pixels stay with their labels
    assert lra.split_off(x, labels, (0.8, 0.1, 0.1), seed=0)[1].y.tolist() == parts[1].y.tolist()


def test_bidirectional_convolution_is_the_two_sided_sum() -> None:
    torch.manual_seed(0)
    u, kernel = torch.randn(2, 3, 10, dtype=torch.float64), torch.randn(6, 10, dtype=torch.float64)
    direct = torch.zeros_like(u)
    for t in range(10):
        for s in range(10):
            if s <= t:
                direct[..., t] += kernel[:3, t - s] * u[..., s]
            if s >= t:
                direct[..., t] += kernel[3:, s - t] * u[..., s]
    assert torch.allclose(bidirectional_convolution(u, kernel), direct, atol=1e-10)


@pytest.mark.parametrize("vocab,pool,pair", [(16, "mean", False), (None, "last", False), (257, "mean", True)])
def test_s4_classifier_shapes_and_padding(vocab, pool: str, pair: bool) -> None:
    model = S4Classifier(3, vocab, 8, 8, 2, "legs", (1e-3, 1e-1), seed=0, pool=pool, pair=pair).eval()
    x = torch.randint(1, 16, (4, 12)) if vocab else torch.randn(4, 12)
    lengths = torch.tensor([12, 5, 7, 1])
    logits = model(x, lengths, x if pair else None, lengths if pair else None)
    assert logits.shape == (4, 3) and torch.isfinite(logits).all()
    logits.sum().backward()
    assert all(p.grad is not None for p in ssm_parameters(model))


def _pathfinder(folder, side: int, count: int, rng: np.random.Generator) -> None:
    from PIL import Image

    (folder / "imgs" / "0").mkdir(parents=True)
    (folder / "metadata").mkdir()
    lines = []
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (side, side), dtype=np.uint8), mode="L").save(
            folder / "imgs" / "0" / f"sample_{i}.png")
        lines.append(f"imgs/0 sample_{i}.png {i} {i % 2} 14 1.5 2")
    (folder / "metadata" / "0.npy").write_text("\n".join(lines) + "\n")


def write_dry_data(data_dir) -> None:
    """The paper scale's files in their real formats under data_dir/hippo/: the unpacked LRA release
    (ListOps TSVs, AAN pairs, pathfinder32 and pathfinder128 folders), the IMDB archive and the CIFAR-10
    python archive; 10-20 examples per split."""
    rng = np.random.default_rng(0)
    root = data_dir / "hippo"
    release = root / "lra_release"
    (release / "listops-1000").mkdir(parents=True)
    for split in ("train", "val", "test"):
        rows = [f"( ( [MAX {i % 10} ( [MIN 4 {9 - i % 10} ] ) ] ) )\t{i % 10}" for i in range(12)]
        (release / "listops-1000" / f"basic_{split}.tsv").write_text("Source\tTarget\n" + "\n".join(rows) + "\n")
    (release / "tsv_data").mkdir()
    for split in ("train", "eval", "test"):
        rows = [f"{i % 2}.0\tid-{i}\tid-{i + 1}\tpaper {i} on deep nets\tpaper {i + 1} on trees" for i in range(10)]
        (release / "tsv_data" / f"new_aan_pairs.{split}.tsv").write_text("\n".join(rows) + "\n")
    _pathfinder(release / "pathfinder32" / "curv_contour_length_14", 32, 10, rng)
    _pathfinder(release / "pathfinder128" / "curv_contour_length_14", 128, 10, rng)
    with tarfile.open(root / "aclImdb_v1.tar.gz", "w:gz") as archive:
        for split in ("train", "test"):
            for i in range(10):
                label = "pos" if i % 2 else "neg"
                _add(archive, f"aclImdb/{split}/{label}/{i}_{7 if i % 2 else 2}.txt",
                     f"Review {i}: {'great' if i % 2 else 'dull'} film.".encode())
    with tarfile.open(root / "cifar-10-python.tar.gz", "w:gz") as archive:
        for name, n in (("data_batch_1", 10), ("data_batch_2", 10), ("test_batch", 10)):
            batch = {b"batch_label": name.encode(), b"labels": [i % 10 for i in range(n)],
                     b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                     b"filenames": [f"img_{i}.png".encode() for i in range(n)]}
            _add(archive, f"cifar-10-batches-py/{name}", pickle.dumps(batch, protocol=2))


def test_paper_scale_without_lra_files_stops_before_any_unit(tmp_path: Path) -> None:
    """Offline, the LRA downloads fail in prepare_data: one line naming the file, before the kernel and delay units
    (which need no download) spend their time, and no unit file is written."""
    from tests.helpers import repro

    done = repro("train", "paper=hippo", "scale=paper", f"data_dir={tmp_path / 'data'}",
                 f"results_dir={tmp_path / 'results'}", "paper.lra.tasks=[listops]", check=False)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "lra_release" in done.stderr and done.stderr.strip().count("\n") == 0
    assert not list((tmp_path / "results").rglob("units/*.csv"))


# ------------------------------------------------------------- the kernels, metrics and set-up the claims use

def test_closed_form_kernels_against_expm_and_the_written_bases() -> None:
    """The closed forms the kernel claims compare with: LegS equals expm(tA)B exactly (any N); LegT and FouT are
    sqrt(2n+1) P_n(1 - 2t) and (1, 0, sqrt2 cos 2 pi t, sqrt2 sin 2 pi t, ...) on the window [0, 1], 0 after it."""
    t = np.array([0.05, 0.3, 0.8, 1.5, 4.0])
    a, b = hippo.transition("legs", 6)
    numeric = np.stack([scipy.linalg.expm(s * a) @ b for s in t], 1)
    assert np.allclose(hippo.closed_form_kernel("legs", 6, t), numeric, atol=1e-10)
    n = np.arange(6)[:, None]
    inside = t <= 1
    legendre = np.sqrt(2 * n + 1) * eval_legendre(n, 1 - 2 * t) * inside
    assert np.allclose(hippo.closed_form_kernel("legt", 6, t), legendre, atol=1e-12)
    fourier = np.stack([np.ones_like(t), np.zeros_like(t), np.sqrt(2) * np.cos(2 * np.pi * t),
                        np.sqrt(2) * np.sin(2 * np.pi * t), np.sqrt(2) * np.cos(4 * np.pi * t),
                        np.sqrt(2) * np.sin(4 * np.pi * t)]) * inside
    assert np.allclose(hippo.closed_form_kernel("fout", 6, t), fourier, atol=1e-12)


def test_kernel_convergence_rms_against_expm_at_every_midpoint() -> None:
    """The RMS of kernel_convergence_rows against a brute-force expm(t_i A) B at each midpoint t_i = (i + 1/2) h."""
    from repro.papers.hippo.task import kernel_convergence_rows as rows_of

    rows = rows_of(OmegaConf.create({"n_values": [8], "n_compare": 4}), grid=20)
    t = (np.arange(20) + 0.5) * 2 / 20
    for row in rows:
        a, b = hippo.transition(row["measure"], 8)
        numeric = np.stack([scipy.linalg.expm(s * a) @ b for s in t], 1)[:4]
        if row["measure"] == "legt":
            exact = np.sqrt(2 * np.arange(4)[:, None] + 1) * eval_legendre(np.arange(4)[:, None], 1 - 2 * t)
        else:
            exact = np.stack([np.ones_like(t), np.zeros_like(t), np.sqrt(2) * np.cos(2 * np.pi * t),
                              np.sqrt(2) * np.sin(2 * np.pi * t)])
        rms = np.sqrt(np.mean((numeric - exact * (t <= 1)) ** 2))
        assert row["kernel_rms"] == pytest.approx(rms, rel=1e-8)


def test_history_nmse_weights_by_the_measure() -> None:
    """Reading back the constant g_0 = 1 for the history h(tau) = tau: LegS weighs by e^-tau, so the nMSE is
    int e^-tau (1 - tau)^2 / int e^-tau tau^2 = 1 / 2; LegT weighs the window [0, 1]:
    int (1 - tau)^2 / int tau^2 = 1."""
    from repro.papers.hippo.task import history_nmse

    tau = np.arange(0, 40, 1e-3)
    coefficients = np.eye(4)[0]
    assert history_nmse("legs", coefficients, tau, tau) == pytest.approx(0.5, rel=3e-3)
    assert history_nmse("legt", coefficients, tau, tau) == pytest.approx(1.0, rel=3e-3)


def test_exact_projection_reads_back_a_smooth_window_to_round_off() -> None:
    """LegT: the history on the last window is analytic, so 64 Legendre coefficients of its exact projection
    reproduce it to round-off at every sample (proj_nmse ~ 0): sample j back from the end sits at tau = j Delta."""
    from repro.papers.hippo.task import reconstruction_rows

    cfg = OmegaConf.create({"length": 2000, "n": 64, "dts": [0.005], "terms": 32, "max_freq": 20.0})
    (row,) = reconstruction_rows(cfg, "legt", 0)
    assert row["proj_nmse"] < 1e-12 and row["window_samples"] == 200


def test_log_dt_is_log_uniform_on_the_range() -> None:
    """S4's Delta initialisation: log Delta ~ U[log dt_min, log dt_max] per channel."""
    kernel = S4Kernel(4000, 4, "legs", (1e-3, 1e-1), np.random.default_rng(0))
    log_dt = kernel.log_dt.detach().double().numpy()
    assert log_dt.min() >= np.log(1e-3) - 1e-6 and log_dt.max() <= np.log(1e-1) + 1e-6
    assert scipy.stats.kstest(log_dt, scipy.stats.uniform(np.log(1e-3), np.log(100)).cdf).pvalue > 1e-3
