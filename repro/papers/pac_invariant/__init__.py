"""PAC Generalization via Invariant Representations (Parulekar, Shanmugam, Shakkottai; ICML 2023, arXiv 2205.15196).

sem.py    random linear SEMs, the intervention family (new incoming weights and noise scale at k fixed sites) and
          the exact environment covariance Sigma(theta) = (I - B)^-1 D (I - B)^-T
learn.py  the invariance residual g_theta(w), the eps-approximately invariant learner (SLSQP), pooled ERM, the
          causal (parent) predictor
task.py   the sweep over N training interventions and the dimension d; violation rate on fresh interventions
figures.py violation rate vs N per d, with a fitted slope and a 1/N reference
"""
