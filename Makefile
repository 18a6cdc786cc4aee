# The two entry points of the README: `make demo` and `make test`. Both set themselves up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The suite in one worker process per core and one more (at most 4), each with its own broker
# and engine: its tests wait on brokers, consumer groups and subprocesses more than they
# compute. On 2 cores, two workers ran it in 2/3 of the time of one process, and three in 16
# minutes against 20-22 for two, using 1.5 cores. Tests are handed out one by one, not by
# file: schemathesis gives the cases of one test a single node id, which by file ran once.
WORKERS := $(shell $(PYTHON) -c "import os; print(min(len(os.sched_getaffinity(0)) + 1, 4) if hasattr(os, 'sched_getaffinity') else min((os.cpu_count() or 1) + 1, 4))")
PARALLEL := -n $(WORKERS)

.PHONY: setup demo test lint typecheck unit integration clean

setup: $(STAMP)
	@echo "setup: Apache Kafka and s3proxy jars from Maven Central, Azurite from npm and fake-gcs-server built with Go, into the cache (once, about 4 minutes)"
	$(BIN)/tstore dev-kafka --resolve-only
	$(BIN)/tstore dev-s3 --resolve-only
	$(BIN)/tstore dev-azure --resolve-only
	$(BIN)/tstore dev-gcs --resolve-only
	@if command -v npm >/dev/null; then npm ci --prefix viewer --no-audit --no-fund; \
	else echo "setup: no npm on PATH: the viewer's libraries are skipped (install Node.js 20+ and npm, then make setup)"; fi

$(STAMP): pyproject.toml
	@echo "setup: creating $(VENV) and installing the project with its dev, pipecat and livekit extras (a few minutes the first time)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,pipecat,livekit]'
	touch $(STAMP)

demo: setup
	$(BIN)/tstore demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

# The slowest tests are listed at the end, so that a CI log shows where the suite's time goes.
test: lint typecheck
	$(BIN)/pytest $(PARALLEL) --durations=20

unit: setup
	$(BIN)/pytest tests/unit

integration: setup
	$(BIN)/pytest $(PARALLEL) tests/integration

clean:
	rm -rf $(VENV) data .mypy_cache .ruff_cache .pytest_cache .hypothesis
