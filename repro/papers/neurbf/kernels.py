"""Kernel initialisation of NeuRBF for images: centres by weighted k-means (weights = ground-truth gradient
magnitude), shapes from the weighted spread of each cluster, or a regular lattice (the ablation); and the 4
nearest kernels of each query point."""

import math

import numpy as np
import torch
from scipy.spatial import cKDTree
from sklearn.cluster import KMeans

ALPHA = 0.5  # the official kw_init 'v3' divides the cluster covariance by alpha = 0.5


def weighted_kmeans_centres(points: np.ndarray, weights: np.ndarray, kernels: int, iterations: int,
                            seed: int) -> np.ndarray:
    keep = weights > 0
    estimator = KMeans(n_clusters=kernels, max_iter=iterations, n_init=1, random_state=seed)
    return estimator.fit(points[keep], sample_weight=weights[keep] / weights[keep].mean()).cluster_centers_


def cluster_shapes(centres: np.ndarray, points: np.ndarray, weights: np.ndarray, isotropic: bool,
                   pixel: float) -> np.ndarray:
    """Inverse of each kernel's squared width: A = (2 Cov)^-1 from the gradient-weighted covariance of the points
    nearest to it (an empty cluster gets the narrowest width), widths clipped to [pixel/200, 1/10] as the official
    clip_kw_sq does. Isotropic: a = 1 / (2 E|d|^2), shape (K, 1); anisotropic: (K, 2, 2)."""
    keep = weights > 0
    points, weights = points[keep], weights[keep] / weights[keep].mean()
    nearest = cKDTree(centres).query(points, k=1)[1]
    offset = points - centres[nearest]
    total = np.bincount(nearest, weights, minlength=len(centres))
    narrow, wide = (pixel / 2 / 100) ** 2, (1 / 10) ** 2
    if isotropic:
        spread = np.bincount(nearest, weights * (offset**2).sum(1), minlength=len(centres))
        squared_width = np.where(total > 0, spread / np.maximum(total, 1e-12) / ALPHA, narrow)
        return (1 / np.clip(squared_width, narrow, wide))[:, None]
    covariance = np.zeros((len(centres), 2, 2))
    for i in range(2):
        for j in range(2):
            covariance[:, i, j] = np.bincount(nearest, weights * offset[:, i] * offset[:, j], minlength=len(centres))
    covariance = covariance / np.maximum(total, 1e-12)[:, None, None] / ALPHA
    covariance[total == 0] = np.eye(2) * narrow
    values, vectors = np.linalg.eigh(covariance)
    values = np.clip(values, narrow, wide)
    return np.einsum("kij,kj,klj->kil", vectors, 1 / values, vectors)


def lattice_kernels(kernels: int) -> tuple[np.ndarray, np.ndarray]:
    """floor(sqrt(K))^2 centres on a regular lattice over [0, 1]^2 (corners included) with A = (2 / spacing)^2 I,
    the official initialisation without k-means."""
    side = math.isqrt(kernels)
    axis = np.linspace(0, 1, side)
    centres = np.stack(np.meshgrid(axis, axis, indexing="xy"), -1).reshape(-1, 2)
    shapes = np.broadcast_to(np.eye(2) / (axis[1] / 2) ** 2, (len(centres), 2, 2)).copy()
    return centres, shapes


def nearest_kernels(centres: torch.Tensor, points: np.ndarray, k: int = 4) -> torch.Tensor:
    """Indices (p, k) of the k nearest kernel centres of each point (a k-d tree, as the official code)."""
    index = cKDTree(centres.cpu().numpy()).query(points, k=k)[1]
    return torch.as_tensor(index, dtype=torch.long, device=centres.device)
