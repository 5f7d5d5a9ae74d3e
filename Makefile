# custvalue — two commands for a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help demo test test-fast lint docs bench bench-pareto-peer clean env

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

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

SPARK_STAMP := $(VENV)/.spark-installed

$(SPARK_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install -e ".[dev,spark]"
	touch $(SPARK_STAMP)

DOCS_STAMP := $(VENV)/.docs-installed

$(DOCS_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install -e ".[dev,docs]"
	touch $(DOCS_STAMP)

test: $(STAMP) $(SPARK_STAMP) $(DOCS_STAMP)  ## run the whole test suite, slow tests included (what CI runs)
	bash scripts/ensure_services.sh
	$(BIN)/python -m pytest -m "slow or not slow"

test-fast: $(STAMP)  ## run the fast tests only
	$(BIN)/python -m pytest -m "not slow"

docs: $(DOCS_STAMP)  ## build the documentation site into docs/_build/html (executes every notebook; fails on any warning)
	OPENBLAS_NUM_THREADS=1 $(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html
	@echo "open docs/_build/html/index.html"

lint: $(STAMP)  ## ruff
	$(BIN)/ruff check src tests benchmarks

bench: $(STAMP)  ## run the benchmarks side by side with lifetimes (about 15 minutes; benchmarks/RESULTS.md)
	OPENBLAS_NUM_THREADS=1 $(BIN)/python benchmarks/bench_summary.py all --customers 1000000 --repeat 5 --rows 50000000 --memory-limit default --memory-limit 2GB
	OPENBLAS_NUM_THREADS=1 $(BIN)/python benchmarks/bench_models_bg.py
	OPENBLAS_NUM_THREADS=1 $(BIN)/python benchmarks/bench_clv.py --interval
	OPENBLAS_NUM_THREADS=1 $(BIN)/python benchmarks/bench_contractual.py
	OPENBLAS_NUM_THREADS=1 $(BIN)/python benchmarks/bench_models_pareto.py --which ours
	@echo "lifetimes' Pareto/NBD fit takes about an hour: make bench-pareto-peer"

bench-pareto-peer: $(STAMP)  ## the Pareto/NBD benchmark with lifetimes' fit (about an hour)
	OPENBLAS_NUM_THREADS=1 $(BIN)/python benchmarks/bench_models_pareto.py --which both

clean:  ## remove the environment and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis docs/_build docs/api/generated docs/jupyter_execute
