"""Linear statistics for Coulomb gases: higher-order cumulants.

De Bruyne, Le Doussal, Majumdar, Schehr; arXiv 2310.16420.

cumulants.py  exact finite-N cumulants of L_N = sum_k g(Gamma_k / N) (Kostlan), leading large-N predictions,
              k-statistics with jackknife errors
samplers.py   Ginibre eigenvalues, Kostlan radii, MALA for the 2-D Coulomb gas at any beta
task.py       the experiment: exact sums vs N, bulk-bump test, Monte Carlo checks, beta scaling
figures.py    N^(p-2) kappa_p vs 1/N with the boundary predictions
"""
