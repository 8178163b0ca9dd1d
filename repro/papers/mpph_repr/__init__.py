"""Fast and stable representations of multiparameter persistence decompositions (Loiseaux, Carriere, Blumberg,
NeurIPS 2023, arXiv 2306.11170), through multipers 2.3.2.

bifiltration.py  scale x co-density bifiltrations (Rips or alpha radius, -log KDE) on a normalised box, jitter
vectorise.py     MMA images and every baseline vectorisation (1p images/landscapes, MP landscapes, Hilbert)
data.py          ORBIT5K-style orbits, the noisy annulus, and the UCR archive loader (paper scale)
task.py          the experiments: classification, convergence in n, stability, outlier robustness
figures.py       convergence and stability on log-log axes
"""

import os

# multipers imports pykeops, which prints a CUDA warning on import on machines without CUDA; its own switch
# (read once at import) silences it. Set before any multipers import.
os.environ.setdefault("KEOPS_VERBOSE", "0")
