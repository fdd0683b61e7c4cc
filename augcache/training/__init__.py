"""One training run: the modes and the kinds of stores they train on, the head, fine-tuning, sweeps, the exported model."""
