# custvalue — two commands for a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help demo test test-fast lint bench clean env

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "custvalue needs Python 3.11 or newer, found " + sys.version' 
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e ".[dev]"
	$(BIN)/python -m ipykernel install --user --name custvalue --display-name "Python (custvalue)"
	touch $(STAMP)

env: $(STAMP)  ## create .venv with the package, dev tools and the `custvalue` Jupyter kernel

demo: $(STAMP)  ## set everything up and run the main job on bundled data (CDNOW master)
	$(BIN)/custvalue demo

test: $(STAMP)  ## run the whole test suite, slow tests included (what CI runs)
	bash scripts/ensure_chromium.sh
	$(BIN)/python -m pytest -m "slow or not slow"

test-fast: $(STAMP)  ## run the fast tests only
	$(BIN)/python -m pytest -m "not slow"

lint: $(STAMP)  ## ruff
	$(BIN)/ruff check src tests benchmarks

bench: $(STAMP)  ## run the benchmarks (minutes; see benchmarks/RESULTS.md)
	$(BIN)/python benchmarks/run_all.py

clean:  ## remove the environment and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
