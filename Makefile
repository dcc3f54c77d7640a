# Two set-up commands on a fresh machine: `make demo` and `make test`.
# Both create .venv when missing, install the CPU torch wheel first (never the multi-GB CUDA build on a
# CPU machine), then this package with its extras. Override TORCH_SPEC / PIP_TORCH_ARGS for another wheel.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
PIP_TORCH_ARGS ?=
STAMP := $(VENV)/.installed

.PHONY: demo test lint venv clean-venv toy-base benchmarks figures

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(PIP_TORCH_ARGS) "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[dev,notebooks,bench]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m justrl_lite.full_run --preset tiny

lint: $(STAMP)
	$(BIN)/ruff check .

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

toy-base: $(STAMP)
	$(BIN)/python -m justrl_lite.toy.make_base

benchmarks: $(STAMP)
	$(BIN)/python benchmarks/rollout_throughput.py

clean-venv:
	rm -rf $(VENV)
