"""PaRot: patch-wise rotation-invariant network via feature disentanglement and pose restoration (AAAI 2023)."""
