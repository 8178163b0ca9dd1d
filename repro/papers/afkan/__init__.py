"""AF-KAN: Activation Function-Based Kolmogorov-Arnold Networks (Ta & Tran, 2025, arXiv 2503.06112).

models.py   AF-KAN and the compared networks (MLP, ReLU-KAN, B-spline KAN, FastKAN), parameter and FLOP counts
data.py     8x8 digits (cpu scale), MNIST / Fashion-MNIST IDX files (paper scale)
task.py     the experiment: every network trained at equal widths, AF-KAN's ablations, step timing
figures.py  accuracy against parameters, the ablations, the basis functions
"""
