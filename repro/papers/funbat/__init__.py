"""FunBaT: Functional Bayesian Tucker Decomposition for Continuous-indexed Tensor Data (ICLR 2024, arXiv 2311.04829).

statespace.py  Matern-1/2 and -3/2 GPs as linear SDEs; Kalman filter + RTS smoother with Gaussian messages
model.py       FunBaT (and FunBaT-CP): message passing between likelihood, per-mode GP chains, core and noise
baselines.py   Tucker / CP by ALS on binned indices, GP regression on the raw indices
data.py        the synthetic continuous-indexed tensors; loaders for the paper's BeijingAir / US-TEMP arrays
task.py        the experiment: every method on every data set, test RMSE and MAE
figures.py     learned vs true latent functions (K = 2), RMSE per method
"""
