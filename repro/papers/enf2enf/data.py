"""Data sets as lists of samples: Joukowski airfoils in exact potential flow (cpu scale) and AirfRANS (paper scale).

A sample is a dict of numpy arrays: ``coords`` [N, 2] (model units), ``sdf`` [N] (signed distance to the body, model
units), ``cond`` [k] (global conditions), ``target`` [N, m] (the solution fields). Joukowski samples also carry
``foil`` (the exact solution) and ``surface`` [S, 2] (the surface polyline, for the lift integral).
"""

import json
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from repro.core.data import fetch_zip
from repro.core.errors import DataUnavailableError
from repro.papers.enf2enf.joukowski import Airfoil, query_zeta, signed_distance

JOUKOWSKI_FIELDS = ("cp", "u", "v")


def joukowski_fields(foil: Airfoil, zeta: np.ndarray, cp_clip: tuple[float, float]) -> np.ndarray:
    """[Cp clipped, u, v] at circle-plane points zeta (mapped to the airfoil plane)."""
    velocity = foil.velocity(zeta)  # u - iv
    cp = np.clip(1 - np.abs(velocity) ** 2, *cp_clip)
    return np.stack([cp, velocity.real, -velocity.imag], 1)


def joukowski_sample(foil: Airfoil, count: int, cfg: DictConfig, rng: np.random.Generator) -> dict:
    """``count`` query points around one airfoil with their signed distance and exact fields; the physical plane is
    scaled by ``cfg.coordinate_scale`` so that the chord is about 1 in model units."""
    zeta = query_zeta(foil, count, tuple(cfg.s_range), rng)
    z = zeta + 1 / zeta
    polyline = foil.surface(cfg.surface_points)
    scale = cfg.coordinate_scale
    return {"coords": (np.stack([z.real, z.imag], 1) * scale).astype(np.float32),
            "sdf": (signed_distance(z, polyline) * scale).astype(np.float32),
            "cond": np.array([np.rad2deg(foil.alpha)], dtype=np.float32),
            "target": joukowski_fields(foil, zeta, tuple(cfg.cp_clip)).astype(np.float32),
            "surface": (np.stack([polyline.real, polyline.imag], 1) * scale).astype(np.float32),
            "foil": foil}


def random_foils(count: int, a_range: list[float], cfg: DictConfig, rng: np.random.Generator) -> list[Airfoil]:
    a = rng.uniform(*a_range, count)
    b = rng.uniform(*cfg.b_range, count)
    alpha = np.deg2rad(rng.uniform(*cfg.alpha_deg, count))
    return [Airfoil(float(ai), float(bi), float(al)) for ai, bi, al in zip(a, b, alpha)]


def joukowski_splits(cfg: DictConfig, seed: int) -> dict[str, list[dict]]:
    """train / val / test (a in a_range) and ood (thicker: a in ood_a_range) at the training resolution, plus
    ``resolution/<n>``: the first ``resolution_shapes`` test shapes re-sampled at each query count n."""
    rng = np.random.default_rng(seed)
    sizes = {"train": cfg.train, "val": cfg.val, "test": cfg.test}
    foils = {name: random_foils(size, cfg.a_range, cfg, rng) for name, size in sizes.items()}
    foils["ood"] = random_foils(cfg.ood, cfg.ood_a_range, cfg, rng)
    splits = {name: [joukowski_sample(f, cfg.points, cfg, rng) for f in group] for name, group in foils.items()}
    for count in cfg.resolutions:
        splits[f"resolution/{count}"] = [joukowski_sample(f, count, cfg, rng)
                                         for f in foils["test"][:cfg.resolution_shapes]]
    return splits


# ---- AirfRANS (scale=paper): PyTorch Geometric's release of the 1,000 simulations -------------------------------
# AirfRANS.pt holds, per simulation, a dict of tensors: pos [N, 2] (mesh nodes, m), x [N, 5] (inlet velocity u, v,
# signed distance to the airfoil, wall normal nx, ny), y [N, 4] (u, v, p / rho, nu_t) and surf [N] (bool, on the
# airfoil); manifest.json names the simulations of each task's splits, in the order of AirfRANS.pt
# (full_train then full_test).
AIRFRANS_URL = "https://data.isir.upmc.fr/extrality/pytorch_geometric/AirfRANS.zip"
AIRFRANS_SHA256 = None  # not published; the archive's contents are validated instead
AIRFRANS_FIELDS = ("u", "v", "p", "nut")


def airfrans_raw(root: Path) -> tuple[list[dict], dict]:
    """The raw simulations and the manifest, downloading and unzipping the archive into ``root`` when absent."""
    data_file, manifest_file = root / "AirfRANS.pt", root / "manifest.json"
    if not (data_file.exists() and manifest_file.exists()):
        fetch_zip(AIRFRANS_URL, root / "AirfRANS.zip", root, AIRFRANS_SHA256)
    for path in (data_file, manifest_file):
        if not path.exists():
            raise DataUnavailableError(f"{path} is missing after unpacking {AIRFRANS_URL}; place AirfRANS.pt and "
                                       f"manifest.json from that archive in {root}")
    try:
        manifest = json.loads(manifest_file.read_text())
    except ValueError as error:
        raise DataUnavailableError(f"{manifest_file} is not valid JSON ({error}); "
                                   f"replace it from {AIRFRANS_URL}") from None
    try:
        # weights_only: plain containers of tensors only; a file that asks to run code is refused.
        simulations = torch.load(data_file, map_location="cpu", weights_only=True)
    except Exception as error:
        raise DataUnavailableError(f"{data_file} cannot be read as tensors ({type(error).__name__}: {error}); "
                                   f"replace it from {AIRFRANS_URL}") from error
    return simulations, manifest


def validate_simulation(sim: object, index: int, path: Path) -> None:
    where = f"{path} simulation {index}"
    if not isinstance(sim, dict) or not {"pos", "x", "y", "surf"} <= set(sim):
        raise DataUnavailableError(f"{where} is not a dict with pos, x, y, surf; replace the file from {AIRFRANS_URL}")
    n = sim["pos"].shape[0]
    shapes = {"pos": (n, 2), "x": (n, 5), "y": (n, 4), "surf": (n,)}
    for key, shape in shapes.items():
        if tuple(sim[key].shape) != shape:
            raise DataUnavailableError(f"{where}: {key} has shape {tuple(sim[key].shape)}, expected {shape}")
    if n == 0 or not bool(sim["surf"].any()):
        raise DataUnavailableError(f"{where} has no nodes or no airfoil nodes; replace the file from {AIRFRANS_URL}")
    for key in ("pos", "x", "y"):
        if not torch.isfinite(sim[key]).all():
            raise DataUnavailableError(f"{where}: {key} holds NaN or inf; replace the file from {AIRFRANS_URL}")


def airfrans_sample(sim: dict) -> dict:
    """Coordinates and the signed distance as stored (metres, chord 1), inlet velocity as the global conditions,
    (u, v, p, nu_t) as targets; ``on_surface`` marks the airfoil nodes."""
    x = sim["x"].numpy()
    return {"coords": sim["pos"].numpy().astype(np.float32), "sdf": x[:, 2].astype(np.float32),
            "cond": x[0, :2].astype(np.float32), "target": sim["y"].numpy().astype(np.float32),
            "on_surface": sim["surf"].numpy().astype(bool)}


def airfrans_splits(root: Path, task: str, val_fraction: float, limit: int | None) -> dict[str, list[dict]]:
    """train / val (the last ``val_fraction`` of the task's training list) / test, in the manifest's order;
    ``limit`` keeps the first simulations of each split (for short runs)."""
    simulations, manifest = airfrans_raw(root)
    order = list(manifest.get("full_train", [])) + list(manifest.get("full_test", []))
    test_key = "full_test" if task == "scarce" else f"{task}_test"
    for key in (f"{task}_train", test_key):
        if key not in manifest:
            raise DataUnavailableError(f"{root / 'manifest.json'} has no list {key!r}; replace it from {AIRFRANS_URL}")
    if len(order) != len(simulations):
        raise DataUnavailableError(f"{root / 'AirfRANS.pt'} holds {len(simulations)} simulations but manifest.json "
                                   f"names {len(order)}; the two files must come from the same archive")
    position = {name: i for i, name in enumerate(order)}

    def gather(names: list[str]) -> list[dict]:
        missing = [n for n in names if n not in position]
        if missing:
            raise DataUnavailableError(f"manifest.json names {missing[:3]} outside full_train/full_test")
        chosen = names[:limit] if limit else names
        for name in chosen:
            validate_simulation(simulations[position[name]], position[name], root / "AirfRANS.pt")
        return [airfrans_sample(simulations[position[name]]) for name in chosen]

    train_names = list(manifest[f"{task}_train"])
    cut = len(train_names) - max(1, round(val_fraction * len(train_names)))
    return {"train": gather(train_names[:cut]), "val": gather(train_names[cut:]),
            "test": gather(list(manifest[test_key]))}
