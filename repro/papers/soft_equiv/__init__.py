"""PER: Regularizing Towards Soft Equivariance Under Mixed Symmetries (Kim et al., ICML 2023, arXiv 2306.00356).

reps.py     tensor representations of O(3) and its embedded O(2) subgroups, invariant projectors, group samples
models.py   the shared tensor-channel network (EMLP blocks), MLP, RPP and PER's projection regulariser
data.py     the modified-inertia data set (O(2) about z exact, O(3) approximate)
task.py     the experiment: every method trained on the same data per replicate; result rows
figures.py  regulariser and weight curves of PER, equivariance errors per candidate group
"""
