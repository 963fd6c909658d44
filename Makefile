# One virtualenv for everything; torch is pinned to the CPU build and installed before anything else,
# because an unpinned torch (asked for by any dependency) resolves to a multi-GB CUDA build.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_PIN := torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: setup demo demo-quick test lint format bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_PIN)
	$(BIN)/python -m pip install --quiet -e '.[dev,verl]' $(TORCH_PIN)
	touch $@

setup: $(STAMP)

## The main job on the embedded default: teacher labels through the service, a student, a report.
demo: $(STAMP)
	$(BIN)/agpo journey

demo-quick: $(STAMP)
	$(BIN)/agpo journey --quick

## Lint and the default test suite (slow checks excluded; `make test-slow` runs them).
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

test-slow: $(STAMP)
	$(BIN)/pytest -m slow

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# STUDENT=<export dir> adds the /v1/score latency part (agpo student export makes one).
bench: $(STAMP)
	$(BIN)/agpo bench advantages
	$(BIN)/agpo bench-service --out docs/results/bench_service.json $(if $(STUDENT),--student $(STUDENT))

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
