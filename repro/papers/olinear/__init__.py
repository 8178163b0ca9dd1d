"""OLinear (NeurIPS 2025): a linear forecaster in a data-adaptive orthogonal (OrthoTrans) domain with NormLin."""
