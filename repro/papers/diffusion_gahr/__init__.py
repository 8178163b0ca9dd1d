"""Generalization in diffusion models arises from geometry-adaptive harmonic representations
(Kadkhodaie, Guth, Simoncelli, Mallat; ICLR 2024, arXiv 2310.02557).

data.py      C^alpha contour images, disks (official generators, vectorised) and CelebA faces (paper scale)
models.py    bias-free BF-CNN and UNet denoisers (predict the noise; D(y) = y - net(y))
analysis.py  similarities, the reverse-diffusion sampler, the Jacobian's eigen-analysis, the empirical MMSE oracle
task.py      the experiment: two networks per N on disjoint subsets; one network on disks
figures.py   transition vs N, Jacobian spectra and effective dimension, MSE power law in sigma
"""
