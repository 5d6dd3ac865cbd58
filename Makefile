# Two entry points on a fresh machine (see README.md):
#   make demo   set everything up, run the whole offline demo workflow
#   make test   set everything up, lint, run the whole test suite (what CI runs)
#   make test-fast   the tests not marked slow (no workflow runs): a few minutes, for your own loop
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export DVC_NO_ANALYTICS := 1
export PYTHONHASHSEED := 0

.PHONY: setup test-deps demo test test-fast lint bench gpu-check clean

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
	$(BIN)/ruff check ants tests benchmarks workflow tools

# System packages and services the tests use (chromium, slurm, ...): each tests/setup/*.sh
# installs what is missing and is safe to run again.
test-deps: $(STAMP)
	for f in tests/setup/*.sh; do [ -e "$$f" ] || continue; bash "$$f" || exit 1; done

# Three pytest-xdist workers on this project's 2-core reference machine: the end-to-end tests
# spend part of their time waiting (SLURM's status polls, servers that stall on purpose, a job
# to reach the moment a signal hits it), and a third worker fills those waits (PYTEST_WORKERS=2,
# or auto for one per core, to choose); --dist loadfile keeps a module's tests, and its module
# fixtures, on one worker; --no-loadscope-reorder hands files out in collection order
# (tests/conftest.py puts the longest end-to-end modules first). The e2e tests share one
# finished demo run per session (tests/_demo_run.py). The slowest tests are listed at the end
# (--durations), and the costliest in CPU seconds (tests/conftest.py).
PYTEST_WORKERS ?= 3
PYTEST := $(BIN)/python -m pytest -q -ra -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder \
	--durations=30

test: $(STAMP) lint test-deps
	$(PYTEST)

test-fast: $(STAMP) lint
	$(PYTEST) -m "not slow"

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do $(BIN)/python $$f || exit 1; done

# On a machine with a CUDA GPU, offline: ViT-B/16 embedding at fp32/fp16/bf16 and the MLLM backend
# with Qwen2-VL-2B and LLaVA-1.5-7B shapes (random weights, loaded from a local folder); prints
# images/s, load time, latency, tokens/s, memory and the implied cost per image (a few minutes;
# writes up to 14 GB of weights to the temp folder, or GPU_CHECK_WORKDIR).
gpu-check: $(STAMP)
	$(BIN)/python benchmarks/gpu_check.py --device cuda $(if $(GPU_CHECK_WORKDIR),--workdir $(GPU_CHECK_WORKDIR))

clean:
	rm -rf $(VENV) .snakemake results/* reports/*
