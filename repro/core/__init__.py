"""What every paper shares: run context, results store, claims, tables, figures, data, training loop.

Submodules are imported explicitly (``from repro.core.claims import evaluate_claims``) so that light
commands such as ``repro list`` never pull in torch.
"""
