"""Efficiently Computing Similarities to Private Datasets (Backurs, Lin, Mahabadi, Silwal, Tarnawski; ICLR 2024).

l1.py        pure eps-DP structures for F(y) = sum_x ||x - y||_1: noisy dyadic trees (the paper's) and flat histograms
kde.py       pure eps-DP Gaussian KDE from noisy random Fourier features, with and without a JL projection first
dpsgd.py     the DP-SGD logistic-regression baseline and its RDP accountant (sampled Gaussian mechanism)
data.py      sklearn digits splits and the synthetic Gaussian mixture
task.py      the experiment: l1 error vs eps / d / bins, KDE error and query time vs d', private classification
figures.py   error vs eps, KDE time and error vs d', accuracy vs wall time
"""
