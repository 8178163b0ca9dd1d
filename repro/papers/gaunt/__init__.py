"""Gaunt tensor products (Luo, Chen, Krishnapriyan, ICLR 2024, arXiv 2401.10216).

harmonics.py  e3nn's real spherical harmonics, exact sphere quadrature, real Gaunt coefficients, c(l1, l2, l3)
products.py   the full Gaunt product four ways: dense table, e3nn CG + path weights, e3nn S2 grid, 2D FFT
benchmark.py  agreement, equivariance, the Gaunt = c x CG identity, side-by-side timing
task.py       the experiment over L; returns result rows
figures.py    time and speed-up vs L (log-log); errors vs L
"""
