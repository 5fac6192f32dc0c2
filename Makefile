# The README's two commands: `make run` and `make test`. Both start from nothing:
# they create .venv, install what they need, and (re)install when pyproject.toml changes.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test lint typecheck unit e2e clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.stamp-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.stamp-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test,postgres]"
	touch $@ $(VENV)/.stamp-run

## make run: install, migrate, and serve on $(HOST):$(PORT) (admin key printed once on first start)
run: $(VENV)/.stamp-run
	$(BIN)/genyard migrate
	GENYARD_HOST=$(HOST) GENYARD_PORT=$(PORT) $(BIN)/genyard serve

## make test: lint, format check, type check, and the whole suite
test: $(VENV)/.stamp-test lint typecheck
	$(BIN)/pytest

lint: $(VENV)/.stamp-test
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(VENV)/.stamp-test
	$(BIN)/mypy

unit: $(VENV)/.stamp-test
	$(BIN)/pytest tests/unit tests/api

e2e: $(VENV)/.stamp-test
	$(BIN)/pytest tests/e2e

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
