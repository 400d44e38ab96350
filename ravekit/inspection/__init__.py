"""Inspection of models and checkpoints: facts, detail views, reports (not named inspect: that is the stdlib's)."""
