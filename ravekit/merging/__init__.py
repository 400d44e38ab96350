"""Merging models: key alignment, the merge plan and its maths, the report and the audio comparison."""
