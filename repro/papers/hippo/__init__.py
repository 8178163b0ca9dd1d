"""How to Train Your HiPPO (Gu et al., ICLR 2023): HiPPO matrices, their kernels, and S4 on a delay task."""
