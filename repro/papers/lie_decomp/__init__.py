"""Lie Group Decompositions for Equivariant Neural Networks (Mironenco and Forré, ICLR 2024, arXiv 2310.11366).

groups.py   the decomposition-based global parametrisation of GL+(2, R) and SL(2, R) (polar form
            g = exp(X) R(theta), X symmetric, traceless for SL(2)), its inverse, and the reference's sampler
models.py   the affine-equivariant residual network (lifting + group convolutions with SIREN kernels read at
            Monte Carlo group samples) and the plain CNN baseline
data.py     sklearn digits with affine / homography-warped test sets (cpu), affNIST and homNIST (paper)
task.py     units and run_unit; figures.py the accuracy and group-samples figures
"""
