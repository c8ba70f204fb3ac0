# The two set-up commands of the README:
#   make demo   create .venv and run the main job on the embedded default (generated data, tiny model, CPU)
#   make test   create .venv, install Debian's chromium if missing (Kedro-Viz browser test), lint and run the test suite
#   make test-fast  the unit tier of the suite only (pytest -m unit)
#   make lint   ruff check + ruff format --check (configured in pyproject.toml)
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Offline, no telemetry: nothing downloads or phones home at run time (xfm_pipeline.offline.OFFLINE_ENVIRONMENT;
# a test checks the two agree).
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export KEDRO_DISABLE_TELEMETRY := 1
export DO_NOT_TRACK := 1
export MLFLOW_DISABLE_TELEMETRY := true
export DVC_NO_ANALYTICS := 1
export GX_ANALYTICS_ENABLED := false
export TRANSFORMERS_VERBOSITY := error

.PHONY: env browser demo lint test test-fast gpu-check bench clean

env: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11 or run 'make PYTHON=/path/to/python3.11 ...'"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# Headless Chromium for tests/viz (Playwright drives /usr/bin/chromium; no Playwright browser download).
# Never fails: without a browser the Kedro-Viz browser test skips and says why.
browser:
	@test -x /usr/bin/chromium || { \
		if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO="sudo -n"; else SUDO=none; fi; \
		{ [ "$$SUDO" != none ] && $$SUDO apt-get update -qq && \
		  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
		|| echo "chromium could not be installed: the Kedro-Viz browser test will skip"; \
	}

demo: $(STAMP)
	@start=$$(date +%s); \
	$(BIN)/kedro run || exit $$?; \
	echo ""; cat data/08_reporting/results.md; echo ""; \
	echo "Demo finished in $$(( $$(date +%s) - start )) s."; \
	echo "  results table : data/08_reporting/results.md (JSON: data/08_reporting/results.json)"; \
	echo "  HTML report   : data/08_reporting/report/index.html (plots, example predictions)"; \
	echo "  MLflow UI     : $(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db"; \
	echo "  Kedro-Viz     : $(BIN)/kedro viz run"

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

test: $(STAMP) browser lint
	$(BIN)/python -m pytest -q

# The unit tier only (no subprocesses, servers, browser or base preset): about 2-3 minutes on 2 cores.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m unit

# On a machine with one CUDA GPU, at most ~8 minutes on an H100: the tiny chain (20 pretraining steps, every
# fine-tune/eval pipeline for a few steps) in bf16 with every module call checked to find its tensors on the GPU
# (tests/gpu), then the base pretraining step (time, samples/s, bf16 MFU against the bf16 GEMM peak measured
# next to it, peak memory) and the largest batch per GPU at 224 px with and without activation checkpointing.
gpu-check: $(STAMP)
	$(BIN)/python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 'gpu-check needs a CUDA device')"
	$(BIN)/python -m pytest -q -m gpu tests/gpu
	$(BIN)/python benchmarks/pretrain_step.py --preset base --dtype bf16 --batch 64 --steps 5
	$(BIN)/python benchmarks/max_batch.py --preset base

bench: $(STAMP)
	$(BIN)/python benchmarks/pretrain_step.py

clean:
	rm -rf $(VENV) .pytest_cache
