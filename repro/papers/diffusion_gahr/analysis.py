"""What the paper measures on a trained denoiser: similarities, the reverse-diffusion sampler, the Jacobian's
eigen-decomposition, and the closed-form denoiser of the empirical distribution (what memorisation converges to).
"""

import torch
from torch import nn

from repro.papers.diffusion_gahr.models import denoise


def centred_cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of images with their own mean removed (rows of a vs rows of b, flattened).

    Raw-pixel cosines of non-negative images are all close to 1; removing each image's mean makes the
    number about structure. The same definition is used at every N.
    """
    a = a.flatten(1) - a.flatten(1).mean(1, keepdim=True)
    b = b.flatten(1) - b.flatten(1).mean(1, keepdim=True)
    return nn.functional.normalize(a, dim=1) @ nn.functional.normalize(b, dim=1).T


def nearest_similarity(images: torch.Tensor, training: torch.Tensor) -> torch.Tensor:
    """For each image, its centred cosine with the most similar training image."""
    return centred_cosine(images, training).max(1).values


def empirical_mmse(noisy: torch.Tensor, training: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """The MMSE denoiser of the empirical distribution of ``training`` under Gaussian noise of std ``sigma``:
    f*(y) = sum_i x_i softmax_i(-||y - x_i||^2 / (2 sigma^2)).  sigma: one value per noisy image."""
    y, x = noisy.flatten(1), training.flatten(1)
    # ||y||^2 - 2 y.x + ||x||^2 by a matrix product (torch.cdist's backward gives a wrong Jacobian under
    # torch.func.jacrev, which the SURE test uses).
    distances = (y ** 2).sum(1, keepdim=True) - 2 * y @ x.T + (x ** 2).sum(1)
    weights = torch.softmax(-distances / (2 * sigma.view(-1, 1) ** 2), dim=1)
    return (weights @ x).view_as(noisy)


@torch.no_grad()
def sample(net: nn.Module, count: int, size: int, seed: int, h0: float, beta: float, sigma_end: float,
           max_steps: int, device: str) -> torch.Tensor:
    """Stochastic coarse-to-fine reverse diffusion (Kadkhodaie & Simoncelli 2021, official ``univ_inv_sol``
    with no measurement): y <- y - h d + gamma z, d = net(y) the residual, sigma = ||d|| / sqrt(n),
    h_t = h0 t / (1 + h0 (t - 1)), gamma = sigma sqrt((1 - beta h)^2 - (1 - h)^2), until sigma < sigma_end.

    Every sample stops on its own; the noise comes from one generator seeded by ``seed``, so two networks
    given the same seed start from the same image and receive the same noise at every step.
    """
    generator = torch.Generator(device=device).manual_seed(seed)
    n = size * size
    y = 0.5 + torch.randn(count, 1, size, size, generator=generator, device=device)
    active = torch.ones(count, dtype=torch.bool, device=device)
    for t in range(1, max_steps + 1):
        d = net(y)
        sigma = d.flatten(1).norm(dim=1) / n ** 0.5
        active &= sigma > sigma_end
        if not active.any():
            break
        h = h0 * t / (1 + h0 * (t - 1))
        gamma = sigma * ((1 - beta * h) ** 2 - (1 - h) ** 2) ** 0.5
        z = torch.randn(count, 1, size, size, generator=generator, device=device)
        step = -h * d + gamma.view(-1, 1, 1, 1) * z
        y = y + step * active.view(-1, 1, 1, 1)
    return denoise(net, y)


def jacobian(net: nn.Module, noisy: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
    """The Jacobian of the denoiser D(y) = y - net(y) at one image (n x n, n = pixels), net in eval mode;
    ``chunk`` rows at a time (an 80 x 80 image has 6400 rows: all at once would not fit in memory)."""
    shape = noisy.shape

    def flat_denoiser(v: torch.Tensor) -> torch.Tensor:
        return denoise(net, v.view(1, *shape)).flatten()

    return torch.func.jacrev(flat_denoiser, chunk_size=chunk)(noisy.flatten())


def eigen_summary(jac: torch.Tensor, band: torch.Tensor, top: int) -> dict[str, float]:
    """Trace (effective dimension), asymmetry, eigenvalue range of the symmetrised Jacobian, and how much of the
    energy of its ``top`` leading eigenvectors lies in ``band`` (pixels along the contour) relative to the
    band's share of the image (1 = spread evenly)."""
    symmetric = (jac + jac.T) / 2
    values, vectors = torch.linalg.eigh(symmetric)
    leading = vectors[:, -top:]
    in_band = (leading[band.flatten()] ** 2).sum(0).mean()
    share = band.float().mean()
    return {"trace": float(torch.trace(jac)),
            "asymmetry": float((jac - jac.T).norm() / jac.norm()),
            "eig_min": float(values[0]), "eig_max": float(values[-1]),
            "contour_energy_ratio": float(in_band / share)}


def leading_eigenvectors(jac: torch.Tensor, top: int) -> torch.Tensor:
    """The ``top`` leading eigenvectors of the symmetrised Jacobian, largest eigenvalue first (columns)."""
    _, vectors = torch.linalg.eigh((jac + jac.T) / 2)
    return vectors[:, -top:].flip(1)
