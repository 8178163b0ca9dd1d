"""Weighted least squares with determinantal point processes and volume-rescaled sampling.

Nouy, Michel; arXiv 2312.14057.

sampling.py  the pool, orthonormal Legendre basis on it, i.i.d. optimal-density, projection-DPP and volume-rescaled
             samplers (exact finite DPP by the chain rule)
task.py      the experiment: stability probability, quasi-optimality ratio and bias vs n/m per strategy
figures.py   P(stable) and the error ratio vs n/m
"""
