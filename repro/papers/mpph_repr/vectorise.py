"""Vectorisations of a bifiltration, all on the normalised box [0, 1]^2 at the same resolution.

MMA image (the paper's): for each pixel x, sum over the interval summands I of the module approximation of
w(I)^p K(d(x, I) / sigma), w(I) the interval's size inside the box (multipers' ``PyModule.representation``).
Baselines: multiparameter landscapes of the same module, the Hilbert signed measure convolved with the same
Gaussian, and gudhi's one-parameter persistence images and landscapes of the scale filtration.
"""

import gudhi.representations as gr
import multipers as mp
import numpy as np
from omegaconf import DictConfig

from repro.papers.mpph_repr.bifiltration import Bifiltration

BOX = np.array([[0.0, 0.0], [1.0, 1.0]])
MMA_METHODS = ("mma_image", "mp_landscape")


def module(bif: Bifiltration, nlines: int):
    """Interval-decomposable approximation of the bifiltration's homology along ``nlines`` parallel lines."""
    return mp.module_approximation(bif.multi_tree(), nlines=nlines, n_jobs=1)


def mma_image(mod, c: DictConfig) -> np.ndarray:
    return mod.representation(degrees=list(c.degrees), bandwidth=c.bandwidth, resolution=c.resolution,
                              kernel=c.kernel, p=c.p, box=BOX, flatten=True, n_jobs=1).ravel()


def mp_landscape(mod, c: DictConfig) -> np.ndarray:
    # multipers takes the box as [bottom corner, top corner], as BOX is written (its transpose is the degenerate
    # box from (0, 1) to (0, 1), on which every landscape is 0).
    return np.concatenate([
        np.asarray(mod.landscapes(degree=d, ks=list(range(c.landscapes)), box=BOX.tolist(),
                                  resolution=[c.resolution, c.resolution])).ravel()
        for d in c.degrees])


def gaussian_convolution(points: np.ndarray, weights: np.ndarray, resolution: int, sigma: float) -> np.ndarray:
    """sum_i w_i exp(-||x - p_i||^2 / (2 sigma^2)) on a resolution x resolution grid of [0, 1]^2."""
    grid = np.linspace(0.0, 1.0, resolution)
    px, py = np.meshgrid(grid, grid, indexing="ij")
    pixels = np.stack([px.ravel(), py.ravel()], axis=1)
    squared = ((pixels[:, None, :] - points[None, :, :]) ** 2).sum(-1)
    return np.exp(-squared / (2 * sigma ** 2)) @ weights


def hilbert_measure(bif: Bifiltration, c: DictConfig) -> np.ndarray:
    """Hilbert signed measure (Mobius inversion of the Hilbert function) per degree, computed on a regular grid of
    the box and convolved with a Gaussian; the default mass sits at the box's top corner (points beyond the box
    are clipped to it)."""
    measures = mp.signed_measure(bif.multi_tree(), degrees=list(c.degrees), invariant="hilbert",
                                 mass_default=BOX[1], grid_strategy="regular", resolution=c.hilbert_grid,
                                 n_jobs=1)
    return np.concatenate([
        gaussian_convolution(np.clip(np.asarray(pts, float), 0.0, 1.0), np.asarray(w, float), c.resolution,
                             c.bandwidth)
        for pts, w in measures])


def scale_diagrams(bif: Bifiltration, degrees: list[int]) -> list[np.ndarray]:
    """gudhi persistence of the scale filtration alone; essential classes die at the box's end (1)."""
    tree = bif.scale_tree()
    tree.compute_persistence()
    return [np.minimum(tree.persistence_intervals_in_dimension(d).reshape(-1, 2), 1.0) for d in degrees]


def persistence_image_1p(bif: Bifiltration, c: DictConfig) -> np.ndarray:
    image = gr.PersistenceImage(bandwidth=c.bandwidth, resolution=[c.resolution, c.resolution],
                                im_range=[0.0, 1.0, 0.0, 1.0])
    return np.concatenate([image.fit_transform([dgm])[0] for dgm in scale_diagrams(bif, list(c.degrees))])


def landscape_1p(bif: Bifiltration, c: DictConfig) -> np.ndarray:
    landscape = gr.Landscape(num_landscapes=c.landscapes, resolution=c.resolution ** 2 // c.landscapes,
                             sample_range=[0.0, 1.0])
    return np.concatenate([landscape.fit_transform([dgm])[0] for dgm in scale_diagrams(bif, list(c.degrees))])

