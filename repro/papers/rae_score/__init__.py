"""What Regularized Auto-Encoders Learn from the Data Generating Distribution (Alain & Bengio, arXiv 1211.4246).

densities.py  isotropic Gaussian mixtures (1-D mixture, ring, noisy spiral): log p, score, the Gaussian-smoothed
              p_sigma and the exact DAE optimum r*(x) = x + sigma^2 grad log p_sigma(x) (Tweedie / Miyasawa);
              the exact 1-D RCAE optimum (Euler-Lagrange boundary-value problem); the authors' "ninja star"
models.py     a batch of independent MLP auto-encoders trained together; denoising (DAE) and contractive
              (RCAE, exact Jacobian penalty) criteria
sampling.py   random-walk Metropolis-Hastings with exact or auto-encoder-estimated energy differences
task.py       the experiment: sigma sweep of score errors and distances to the exact optima, reconstruction
              error at the antimode, sampling the ring, spiral and ninja star
figures.py    (r(x) - x) / sigma^2 against d log p / dx, score error vs sigma, MH samples, 2-D fields r(x) - x
"""
