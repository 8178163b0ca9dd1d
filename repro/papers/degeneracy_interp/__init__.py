"""Using degeneracy in the loss landscape for mechanistic interpretability (Bushnaq et al., 2024)."""
