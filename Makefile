# Two entry points on a fresh machine (see README.md):
#   make demo   set everything up, run the whole offline demo workflow
#   make test   set everything up, lint, run the test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export DVC_NO_ANALYTICS := 1
export PYTHONHASHSEED := 0

.PHONY: setup test-deps demo test lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[workflow,dev]"
	$(BIN)/python -c "import ants.wordnet as w; w.check_corpus()"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/snakemake --cores 2 all
	@echo "Report: reports/index.html"

lint: $(STAMP)
	$(BIN)/ruff check ants tests benchmarks workflow

# System packages and services the tests use (chromium, slurm, ...): each tests/setup/*.sh
# installs what is missing and is safe to run again.
test-deps: $(STAMP)
	for f in tests/setup/*.sh; do [ -e "$$f" ] || continue; bash "$$f" || exit 1; done

test: $(STAMP) lint test-deps
	$(BIN)/python -m pytest -q -ra

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) .snakemake results/* reports/*
