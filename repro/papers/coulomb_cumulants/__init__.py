"""Linear statistics for Coulomb gases: higher-order cumulants.

De Bruyne, Le Doussal, Majumdar, Schehr; arXiv 2310.16420.

functions.py        the radial test functions f(r), g(u) = f(sqrt(u)) and the boundary limits of N^(p-2) kappa_p
cumulants.py        exact finite-N cumulants of L_N = sum_k g(Gamma_k / N) (Kostlan: mpmath sums, quadrature),
                    k-statistics with jackknife errors
large_deviations.py scaled cumulant generating function at speed N^2 (saddle point and exact finite N), rate function
samplers.py         Ginibre eigenvalues, Kostlan radii, MALA for the 2-D Coulomb gas at any beta
task.py             the experiment: exact sums vs N, bulk-bump test, large deviations, Monte Carlo, beta scaling
figures.py          N^(p-2) kappa_p vs 1/N with the boundary limits; the rate function and chi_N -> chi
"""
