"""Learning Hierarchical Polynomials with Three-Layer Neural Networks (Wang, Nichani, Lee; ICLR 2024, arXiv 2311.13774).

target.py  x ~ N(0, I_d), the high-rank quadratic p(x) = x^T A x - tr A, g = He_1 + He_3/sqrt(6), h = g(p), and the
           orthonormal degree-2 Hermite features phi(x)
learners.py the layer-wise three-layer network (stage 1: one gradient step on the middle layer from zero; stage 2:
           ridge on the outer layer over fresh samples), random features, kernel ridge, the oracle on true p
task.py    the sweep over d and n/d^2; test error, feature quality rho = |corr(z, p)|, n*(d)
figures.py normalised test MSE and rho vs n/d^2 per d; log n* vs log d with the fitted slope
"""
