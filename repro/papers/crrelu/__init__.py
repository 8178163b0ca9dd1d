"""CRReLU and the WAFBC: "A Method on Searching Better Activation Functions" (ICLR 2025, arXiv 2405.12954).

activations.py  CRReLU and the compared activations
entropy.py      output entropy of bounded activations under a Gaussian input; the WAFBC
models.py       the ViT whose MLP-block activation is swapped
data.py         8x8 digits (cpu scale), CIFAR-10 binary archive (paper scale)
task.py         the experiment: exact entropies, one ViT per activation
figures.py      entropy of the candidates, paired accuracy differences, the learned eps
"""
