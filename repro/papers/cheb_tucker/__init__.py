"""ChebTuck: a mesh-free hybrid Chebyshev-Tucker tensor format (Benner, Khoromskij, Khoromskaia, Sun; arXiv 2503.01696).

kernel.py     the sinc-quadrature Gaussian sum for 1/r, its range split, particle clouds, CP factors of potentials
tucker.py     HOSVD with a tolerance-chosen rank, HOOI (Tucker-ALS), Tucker contraction
chebtuck.py   Chebyshev interpolation in 3-D and its Tucker compression (Alg. 3: full coefficients; Alg. 4: reduced
              HOSVD from the CP factors)
task.py       the experiment: ranks vs (N, m, tol), errors on a grid, Alg. 3 vs Alg. 4, single-term decay
figures.py    error vs degree per Gaussian term, rank vs m and vs N
"""
