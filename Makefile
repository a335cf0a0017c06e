# codelace-box developer commands. Everything installs into .venv with the exact pins of
# constraints.txt, so every build is reproducible.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
CONSTRAINTS := constraints.txt

.PHONY: serve test lint unit bench binary binary-test install dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade "pip>=24" -c $(CONSTRAINTS)

$(VENV)/.installed: $(BIN)/python pyproject.toml $(CONSTRAINTS)
	$(PIP) install --quiet -c $(CONSTRAINTS) -e .
	touch $@

$(VENV)/.dev-installed: $(BIN)/python pyproject.toml $(CONSTRAINTS)
	$(PIP) install --quiet -c $(CONSTRAINTS) -e ".[dev]"
	touch $@ $(VENV)/.installed

$(VENV)/.build-installed: $(VENV)/.dev-installed
	$(PIP) install --quiet -c $(CONSTRAINTS) -e ".[dev,build]"
	touch $@

install: $(VENV)/.installed

dev: $(VENV)/.dev-installed

## make serve: run the gateway on the built-in defaults (SQLite under data/, codes in the log)
serve: $(VENV)/.installed
	$(BIN)/codelace-box serve

## make test: lint, then the whole test suite (with the import contract and the docs checks in tests/foundation)
test: lint unit

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: $(VENV)/.dev-installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## make bench: the gateway benchmark (fake upstream, bounded loopback load)
bench: $(VENV)/.dev-installed
	$(BIN)/python -m bench.run $(BENCH_ARGS)

## make binary: the single executable at dist/codelace-box
binary: $(VENV)/.build-installed
	$(BIN)/python build/build_binary.py

## make binary-test: build the binary, smoke-test it as an operator would, then hold it to the
## CLI acceptance tests and the README's "First run" walkthrough, command by command
BINARY_ACCEPTANCE := tests/acceptance/test_cli_readme.py tests/acceptance/test_cli_commands.py \
	tests/acceptance/test_cli_config.py tests/acceptance/test_cli_live.py
binary-test: binary
	$(BIN)/python -m pytest -p no:cacheprovider build/smoke_test.py $(PYTEST_ARGS)
	CODELACE_TEST_BINARY=dist/codelace-box $(BIN)/python -m pytest -p no:cacheprovider \
		$(BINARY_ACCEPTANCE) $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) dist build/out .pytest_cache .mypy_cache .ruff_cache
