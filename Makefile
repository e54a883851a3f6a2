# tfparity: the two commands a newcomer needs are `make bench` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TFPARITY := $(VENV)/bin/tfparity
RESULTS_DIR ?= results
# `make bench` defaults to the offline dataset; container targets (docker/docker.mk) default to mnist.
BENCH_DATASET ?= mnist-5k
SEEDS ?= 1
PYTEST_ARGS ?=

.PHONY: help install bench bench-fast perf perf-parallel scaling scaling-workers test test-fast lint clean-results

help:
	@echo "make bench        quick local seed suite (3 models, mnist-5k, 10 epochs, 1 seed): summary + result JSONs"
	@echo "make test         the full test suite (real TensorFlow; docker/browser tests need their services)"
	@echo "make perf         performance benchmark of the harness (benchmarks/perf.py)"
	@echo "make scaling      replicas on this host: scaling table and x2 vs x1 agreement (benchmarks/scaling.py)"
	@echo "make scaling-workers  2 worker containers vs 1 (docker): throughput, wall time, w2 vs w1 (benchmarks/workers.py)"
	@echo "make perf-parallel suite wall time serial vs --parallel 2 (docker; benchmarks/parallel.py)"
	@echo "make bench-cpu    the seed suite in the CPU container (DATASET=mnist by default)"
	@echo "make bench-gpu    the GPU check, then the seed suite in the CUDA container (NVIDIA Container Toolkit)"
	@echo "make gpu-check    GPU owners: every GPU path for one short epoch vs the CPU path, one verdict"
	@echo "make nightly      the nightly pipeline locally (bench-cpu [+ bench-gpu], compare, report)"
	@echo "make lint         ruff, mypy and the architecture rules (CI runs it)"

# The venv is rebuilt only when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[cpu,docker,dev]'
	touch $@

install: $(VENV)/.installed

bench: install
	$(TFPARITY) run --suite seed --dataset $(if $(DATASET),$(DATASET),$(BENCH_DATASET)) --seeds $(SEEDS) \
	  --results-dir $(RESULTS_DIR)

bench-fast: install
	$(TFPARITY) run --suite seed --preset fast --dataset $(if $(DATASET),$(DATASET),$(BENCH_DATASET)) \
	  --seeds $(SEEDS) --results-dir $(RESULTS_DIR)

perf: install
	$(PY) benchmarks/perf.py --out $(RESULTS_DIR)/perf

scaling: install
	$(PY) benchmarks/scaling.py --out $(RESULTS_DIR)/scaling

scaling-workers: install
	$(PY) benchmarks/workers.py --out $(RESULTS_DIR)/scaling-workers

perf-parallel: install
	$(PY) benchmarks/parallel.py --out $(RESULTS_DIR)/parallel

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

# Unit tests only: no TensorFlow training, no engine, no browser (seconds).
test-fast: install
	$(PY) -m pytest -m "not slow and not docker and not browser" $(PYTEST_ARGS)

# The architecture rules (layers, cycles, sizes, one owner per concept; tests/test_architecture.py),
# the type checker (strict on spec/, store/, analysis/) and ruff (line length enforced, formatted).
lint: install
	$(VENV)/bin/ruff check harness tests benchmarks
	$(VENV)/bin/ruff format --check harness tests benchmarks
	$(VENV)/bin/mypy
	$(PY) -m pytest -q -p no:cacheprovider tests/test_architecture.py

include docker/docker.mk
include .ci/nightly.mk
