"""Principled Approaches for Extending Neural Architectures to Function Spaces for Operator Learning
(arXiv 2506.10973).

layers.py   kernel-resampled convolutions, the U-Net and ViT backbones, input-output interpolation
data.py     Darcy flow on nested grids (generator shared with transform_once); the paper's Navier-Stokes files
task.py     one model per unit trained at one resolution (or several) and tested at every resolution
figures.py  test error against test resolution
The Darcy solver comes from repro.papers.transform_once, FNO's spectral layer from repro.core.spectral.
"""
