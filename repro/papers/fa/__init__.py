"""Frame Averaging: exact invariance/equivariance by averaging a backbone over a small input-dependent frame."""
