"""Shared audio, latent and file I/O: sound files, latent arrays and their sidecars, atomic writes."""
