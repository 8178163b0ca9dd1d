"""Transform Once: Efficient Operator Learning in Frequency Domain (Poli et al., NeurIPS 2022, arXiv 2211.14453).

pde.py      Burgers and Darcy generators (also used by operator_ext)
models.py   the orthonormal DCT, FNO and T1 in 1D and 2D, the naive and variance-preserving initial scales
data.py     the data of each experiment; FNO's Navier-Stokes file at paper scale
task.py     the experiments: training, side-by-side timing, the initialisation study
figures.py  step time against resolution, activation std through depth
"""
