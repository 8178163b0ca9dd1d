"""A Mathematical Theory of Deep Convolutional Neural Networks for Feature Extraction (Wiatowski and Boelcskei,
IEEE Trans. Inf. Theory 2018, arXiv 1512.06293): numerical checks of its inequalities.

filters.py    semi-discrete frames as Fourier multipliers (Morlet wavelets, Weyl-Heisenberg, random "learned"),
              their Littlewood-Paley sum and the rescaling to a Bessel bound B
extractor.py  the feature extractor Phi: filters, Lipschitz non-linearity, pooling, layer by layer
signals.py    periodic test signals (band-limited, cartoon, Lipschitz) and their deformations
task.py       the experiments: Lipschitz ratios, translation error vs depth, deformation sensitivity
figures.py    translation error vs depth, deformation error vs ||tau||
"""
