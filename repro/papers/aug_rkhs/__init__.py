"""Augmentation-based SSL via RKHS approximation and regression (Zhai et al., ICLR 2024): masked-token toy."""
