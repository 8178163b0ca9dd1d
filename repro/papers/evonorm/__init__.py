"""EvoNorms: Evolving Normalization-Activation Layers (Liu, Brock, Simonyan, Le; NeurIPS 2020, arXiv 2004.02967).

layers.py   EvoNorm-B0, EvoNorm-S0 (as in the official tensorflow/tpu ResNet code), BN-ReLU, GN-ReLU
models.py   the pre-activation (v2) ResNet the official code requires for EvoNorms: small (digits) and ResNet-50
data.py     digits upsampled to 16x16 (cpu), ImageNet in its extracted folder layout (scale=paper)
task.py     the experiment: every norm-act layer trained at every batch size; returns result rows
figures.py  test accuracy against batch size, one line per layer
"""
