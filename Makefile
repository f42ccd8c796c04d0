# `make run` installs OneStack into .venv and starts it on ./onestack-data;
# `make test` installs the test extras and runs the test suite.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA_DIR ?= onestack-data
PYTEST_ARGS ?=

.PHONY: run test install install-test lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-test: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'

run: install
	$(BIN)/onestack serve --data-dir $(DATA_DIR)

test: install-test
	$(BIN)/python -m pytest -q -n 2 --dist loadfile $(PYTEST_ARGS)

lint: install-test
	$(BIN)/ruff check onestack tests bench
	$(BIN)/ruff format --check onestack tests bench

clean:
	rm -rf $(VENV) build *.egg-info
