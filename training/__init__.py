"""Training stage: datasets, models and optimisation (PyTorch)."""
