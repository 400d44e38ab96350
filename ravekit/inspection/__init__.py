"""Inspection of models and checkpoints: facts, detail views, reports (named so as not to read as the stdlib inspect)."""
