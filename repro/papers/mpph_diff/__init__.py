"""Differentiability and optimisation of multiparameter persistent homology (Scoccola, Setlur, Loiseaux,
Carriere, Oudot; ICML 2024, arXiv 2406.07224), through multipers 2.3.2's autodiff.

descriptors.py  Euler and Hilbert signed measures with gradients (multipers, exact critical grid), their
                Gaussian convolution, one-parameter barcodes with gradients (gudhi persistence generators)
data.py         the toy landscape f and the grid-graph data set (two node signals, label = components)
task.py         point-cloud optimisation (2p vs 1p loss) and filtration learning on grid graphs
figures.py      optimised clouds over f, loss curves
"""

import os

# multipers imports pykeops, which prints a CUDA warning on import without CUDA; its own switch silences it.
os.environ.setdefault("KEOPS_VERBOSE", "0")
