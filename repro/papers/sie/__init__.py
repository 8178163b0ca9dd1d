"""SIE: Self-supervised learning of Split Invariant Equivariant representations (Garrido, Najman, LeCun;
ICML 2023, arXiv 2302.10283).

render.py   mini-3DIEBench: pentacube classes rendered in numpy under random rotations, hues and lights
data.py     the benchmark (rendered, or 3DIEBench's folders at scale=paper), pairs and relative rotations
models.py   the backbone, split projectors, hypernetwork and MLP predictors, and each method's loss
task.py     pretraining each method, then frozen probes: rotation R^2, linear top-1, predictor retrieval
figures.py  probe results per method and representation part
"""
