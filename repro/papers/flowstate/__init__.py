"""FlowState (arXiv 2508.05287): sampling-rate-scaled SSM encoder and functional-basis decoder."""
