"""Shared audio, latent and file I/O: reading and writing sound files, latent arrays and their sidecars, atomic writes."""
