"""Pure Data patches: a small .pd writer and the patch generator.py --pd leaves beside its latent WAVs."""
