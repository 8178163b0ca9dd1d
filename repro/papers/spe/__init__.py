"""SPE: Stable and Expressive Positional Encodings (Huang et al., ICLR 2024, arXiv 2310.02579).

spectral.py  the Laplacian, its eigenpairs and the spectral tensors V diag(phi(lambda)) V^T
models.py    SPE and the baseline encoders (none, LapPE, SignNet, BasisNet-style projectors), GINE backbone
probe.py     the stability probe (no training): output change per unit Laplacian change
data.py      random graphs with cycle counts (cpu) and ZINC (paper scale)
task.py      the experiment: probe + training every encoder; returns result rows
figures.py   sensitivity vs perturbation size, sensitivity vs eigengap
"""
