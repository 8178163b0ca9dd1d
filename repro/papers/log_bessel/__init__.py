"""log I_v(x) and log K_v(x) in log space (Plesner, Sorensen, Hauberg; ICS 2024, arXiv 2409.08729).

bessel.py     the torch routines: power series, Debye expansion, large-argument series, recurrence, K integral
reference.py  mpmath references (time limit, cache, quadrature check of besselk) and the SciPy baseline
vmf.py        von Mises-Fisher sampling and maximum likelihood with each Bessel back end
task.py       the experiment: accuracy grid and random pairs, speed vs SciPy, vMF fits
figures.py    error maps over (v, x), vMF estimates
"""
