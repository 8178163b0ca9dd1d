"""GFUCB: general function class representation learning in multitask bandits (Lu et al., NeurIPS 2022)."""
