"""Lie Group Decompositions for Equivariant Neural Networks (Mironenco and Forré, ICLR 2024, arXiv 2310.11366).

groups.py  the decomposition-based global parametrisation of GL+(2, R) and SL(2, R) (polar form
           g = exp(X) R(theta), X symmetric, traceless for SL(2)) and its inverse

Not yet written: the affine-equivariant network (lifting + group convolutions with SIREN kernels and Monte
Carlo group samples), the digits data with affine and homography-warped test sets, the task and configs.
"""
