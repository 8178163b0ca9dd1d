"""On the Provable Advantage of Unsupervised Pretraining (Ge, Tang, Fan, Jin; ICLR 2024, arXiv 2303.01566).

factor.py   factor model x = B z + eps, y = beta^T z + nu: MLE factor analysis on m unlabeled x, then OLS on
            E[z | x]; supervised OLS / ridge-CV on raw x; excess risk of any affine predictor in closed form
mixture.py  Gaussian mixture with cluster-defined labels: EM on m unlabeled x, then logistic regression on the
            responsibilities; logistic regression on raw x; excess classification error by exact conditioning
task.py     the sweep over m and n; returns result rows
figures.py  excess risk vs n (several m, baselines, oracle, OLS formula) and vs m; GMM excess error vs n
"""
