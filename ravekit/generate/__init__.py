"""Generating latents: pooled statistics, distributions, tempo, patterns, plots and the generator run."""
