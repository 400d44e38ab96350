# Set-up in one command: `make demo` (run the toolkit on its demo model) or
# `make test` (run the test suite). Both create .venv and install what they need.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
REQUIREMENTS := requirements.txt requirements-dev.txt
STAMP := $(VENV)/.installed-$(shell cat $(REQUIREMENTS) | cksum | cut -d' ' -f1)
RAVE_TEST_MODELS ?= $(abspath ../shared/rave-models)
export RAVE_TEST_MODELS

.PHONY: install compile demo test lint bench clean

install: $(STAMP)

# Runtime and development requirements both: .venv runs the tests and the linters.
$(STAMP): $(REQUIREMENTS)
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	rm -f $(VENV)/.installed-* && touch $@

# Byte-compiled modules keep every script's --help fast even where
# PYTHONDONTWRITEBYTECODE is set.
compile: $(STAMP)
	@$(BIN)/python -m compileall -q ravekit patterns >/dev/null

models/demo.ts: $(STAMP) ravekit/demo/model.py ravekit/demo/layers.py
	$(BIN)/python -m tools.make_demo_model $@

demo: models/demo.ts compile
	@rm -rf _demo && mkdir -p _demo
	$(BIN)/python -m tools.make_demo_audio _demo/audio/melody.wav
	$(BIN)/python encoder.py --model models/demo.ts --input _demo/audio --output _demo/latents
	$(BIN)/python decoder.py --model models/demo.ts --input _demo/latents --output _demo/decoded
	@if [ -f generator.py ]; then \
	  $(BIN)/python generator.py --input _demo/latents --model models/demo.ts --num_latents 11 --num_loops 4 \
	    --pattern loop --num_files 2 --output _demo/generated --embeddings --seed 1 && \
	  $(BIN)/python decoder.py --model models/demo.ts --input _demo/generated --output _demo/generated-audio; fi
	@echo "demo done: source _demo/audio, latents _demo/latents, decoded _demo/decoded," \
	  "generated patterns _demo/generated, decoded patterns _demo/generated-audio"

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

# ruff (lint and import order) over the whole checkout, mypy over the package; settings in pyproject.toml.
lint: $(STAMP)
	$(BIN)/python -m ruff check .
	$(BIN)/python -m mypy

bench: models/demo.ts compile
	$(BIN)/python -m tools.bench

clean:
	rm -rf _demo _encoder-output _decoder-output _generator-output _inspector-output _averager-output models/demo.ts
