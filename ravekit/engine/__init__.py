"""Model loading and the chunked engine: a RAVE export read with its facts, run over long files in chunks."""
