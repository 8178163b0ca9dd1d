"""Flow Equivariant Recurrent Neural Networks (Keller, NeurIPS 2025, arXiv 2507.14793).

models.py   the sequence-to-sequence FERNN (one hidden copy per velocity) and its V = {0} case, the G-RNN
data.py     translating-digit sequences: scikit-learn digits (cpu) or MNIST (paper scale)
task.py     the experiment: train each model, then test, length and velocity generalisation rows
figures.py  error against prediction horizon, velocity-generalisation heat-maps
"""
