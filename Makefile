# codelace-box developer commands. Everything installs into .venv with the exact pins of
# constraints.txt, so every build is reproducible.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
CONSTRAINTS := constraints.txt

.PHONY: serve test test-postgres check lint unit bench bench-scaleout bench-peers bench-history bench-audit binary binary-test install dev clean

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

# The suite runs in parallel (pytest-xdist): TEST_WORKERS processes, each module's tests on one
# worker (its servers and fakes are started once, as in a serial run). TEST_WORKERS=0 runs it
# serially. About half of a worker's time is spent waiting on server processes, so more workers
# than cores pays off: with 4 on a 2-core machine the cores are nearly always busy (measured
# with the forked serve starts: 4 workers 17:07, 6 workers 18:02, the cores 99% busy; with the
# shared TLS context and the waits' growing pauses, 4 workers 12:51).
TEST_WORKERS ?= 4
XDIST := -n $(TEST_WORKERS) --dist loadscope
# The suite starts a few hundred Python processes (servers, their workers): they read the
# project's compiled bytecode (__pycache__, ignored by git) that the first of them writes, also
# where PYTHONDONTWRITEBYTECODE is set (as in many containers); else each compiles it again.
PYTEST := PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest
# make check: the modules that start no server (about 420 tests: 13 s with lint, warm caches,
# on a busy 2-core machine)
CHECK_TESTS := tests/test_ports.py tests/foundation/test_config.py \
	tests/foundation/test_money.py tests/foundation/test_catalog.py tests/foundation/test_api_errors.py \
	tests/foundation/test_ledger.py tests/foundation/test_migrations.py \
	tests/foundation/test_config_docs.py tests/foundation/test_import_contract.py \
	tests/foundation/test_docs.py tests/foundation/test_db_access.py tests/foundation/test_output_shapes.py \
	tests/foundation/test_startup_imports.py \
	tests/accounts/test_units.py \
	tests/billing/test_billing_units.py tests/gateway/test_units.py tests/gateway/test_orphaned_holds.py \
	tests/gateway/test_jsonwire.py \
	tests/anthropic/test_request.py tests/anthropic/test_request_compat.py \
	tests/anthropic/test_response.py tests/anthropic/test_stream.py \
	tests/anthropic/test_fake_upstream.py tests/admin/test_reports.py tests/admin/test_keycheck.py

## make test: lint, then the whole test suite in parallel (with the import contract and the docs
## checks in tests/foundation), the 15 slowest tests listed
test: lint unit

## make test-postgres: the suites where the engine matters, again on a throwaway PostgreSQL
## cluster (tests/pg_cluster.py; the PostgreSQL server binaries must be installed): accounts
## (sign-in, keys, rate limits), the key caps and account limits, the money and concurrency
## suites of the gateway, many boxes on one database, Stripe webhooks and their delivery races,
## the usage totals and history, the ledger, migrations and db copy, the audit log read a page
## at a time, and the fuzz modules whose hostile text reaches the database (a NUL is text to
## SQLite, none to PostgreSQL). The wire-format suites (the other gateway and billing modules,
## anthropic, messages, responses, admin, portal, the other fuzz modules, the compatible
## servers' quirks) do not depend on the engine and run on SQLite only (`make test`). About
## 320 tests: 8 min with 2 workers on a busy 2-core machine. tests/quirks passes on PostgreSQL
## too (its 298 tests read the charge from whichever database the box uses) but stays out of
## this selection, for CI's time: run it by hand with
## `CODELACE_TEST_DATABASE=postgres .venv/bin/python -m pytest tests/quirks`.
PG_SUITES := tests/accounts tests/limits tests/history tests/admin \
	tests/gateway/test_units.py tests/gateway/test_money_safety.py tests/gateway/test_money_review.py \
	tests/gateway/test_money_holes.py tests/gateway/test_money_property.py \
	tests/gateway/test_concurrency.py tests/gateway/test_orphaned_holds.py \
	tests/gateway/test_many_boxes.py tests/gateway/test_batch_steps.py tests/gateway/test_batch_review.py \
	tests/gateway/test_batch_mirror.py tests/gateway/test_pg_lookups.py tests/gateway/test_pg_sessions.py \
	tests/gateway/test_pg_down.py tests/gateway/test_pg_unanswered.py tests/gateway/test_hold_owners.py \
	tests/gateway/test_half_closed_client.py tests/gateway/test_newer_schema.py tests/gateway/test_frozen_box.py \
	tests/gateway/test_pg_stream_settlement.py tests/gateway/test_mid_flight_changes.py \
	tests/billing/test_webhooks.py tests/billing/test_delivery_guarantees.py \
	tests/billing/test_many_boxes.py tests/billing/test_refunds_disputes.py tests/billing/test_topup_claims.py \
	tests/billing/test_log_request_ids.py \
	tests/foundation/test_ledger.py tests/foundation/test_postgres.py tests/foundation/test_pg_pipeline.py \
	tests/observability/test_audit_at_scale.py \
	tests/fuzz/test_stored_text.py tests/fuzz/test_routes.py tests/fuzz/test_webhook.py
test-postgres: $(VENV)/.dev-installed
	CODELACE_TEST_DATABASE=postgres $(PYTEST) $(XDIST) $(PG_SUITES) $(PYTEST_ARGS)

## make check: the inner loop: lint, then the fast unit tests
check: lint
	$(PYTEST) -q $(CHECK_TESTS) $(PYTEST_ARGS)

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## make unit: the test suite alone, e.g. make unit PYTEST_ARGS="tests/gateway -x"
unit: $(VENV)/.dev-installed
	$(PYTEST) $(XDIST) --durations=15 $(PYTEST_ARGS)

## make bench: the gateway benchmark (fake upstream, bounded loopback load). On PostgreSQL (a
## throwaway cluster; the server binaries must be installed), two boxes on one database, one
## vs two at 64 concurrent: make bench BENCH_ARGS="--database postgres --boxes 2 --pg-stats"
bench: $(VENV)/.dev-installed
	$(BIN)/python -m bench.run $(BENCH_ARGS)

## make bench-scaleout: requests/s at 64 concurrent on SQLite, one box on PostgreSQL and two
## boxes on one PostgreSQL database, interleaved rounds (a shared machine drifts), the ratios
## (BENCH_ARGS="--rounds 5 --requests 6000 --boxes 3")
bench-scaleout: $(VENV)/.dev-installed
	$(BIN)/python -m bench.scaleout $(BENCH_ARGS)

## make bench-peers: the same loads against the box and the LiteLLM proxy, one after the other,
## with the ratios. LiteLLM (exact pin below) goes into its own virtual env, .bench-peers/,
## outside the product's dependencies; it runs offline (local cost map, a dead HTTP proxy).
## Medians of alternated rounds, with the stack's floor: make bench-peers BENCH_ARGS="--rounds 3"
LITELLM_VERSION ?= 1.108.7
PEERS_VENV ?= .bench-peers
$(PEERS_VENV)/.installed-$(LITELLM_VERSION):
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install --quiet "litellm[proxy]==$(LITELLM_VERSION)"
	touch $@

bench-peers: $(VENV)/.dev-installed $(PEERS_VENV)/.installed-$(LITELLM_VERSION)
	BENCH_PEERS_VENV=$(PEERS_VENV) $(BIN)/python -m bench.peers $(BENCH_ARGS)

## make bench-history: the box with a long usage history (10M rows; BENCH_ARGS="--rows 1000000")
bench-history: $(VENV)/.dev-installed
	$(BIN)/python -m bench.history $(BENCH_ARGS)

## make bench-audit: doctor and audit on a long audit log (200k entries; BENCH_ARGS="--tree DIR")
bench-audit: $(VENV)/.dev-installed
	$(BIN)/python -m bench.audit_log $(BENCH_ARGS)

## make binary: the single executable at dist/codelace-box
binary: $(VENV)/.build-installed
	$(BIN)/python build/build_binary.py

## make binary-test: build the binary, smoke-test it as an operator would (on SQLite, and its
## migrate, doctor and db copy on a throwaway PostgreSQL cluster: the server binaries must be
## installed, as for test-postgres), then hold it to the CLI acceptance tests, the README's
## "First run" walkthrough and its operator sections ("Daily tasks", "Restore", "Upgrading"),
## command by command (every command of the binary starts in about a second: the modules are
## split so that the workers share them out)
BINARY_ACCEPTANCE := tests/acceptance/test_cli_readme.py tests/acceptance/test_cli_readme_operator.py \
	tests/acceptance/test_cli_commands.py \
	tests/acceptance/test_cli_commands_accounts.py tests/acceptance/test_cli_commands_models.py \
	tests/acceptance/test_cli_commands_providers.py tests/acceptance/test_cli_commands_serve.py \
	tests/acceptance/test_cli_config.py tests/acceptance/test_cli_live.py
binary-test: binary
	$(PYTEST) -p no:cacheprovider build/smoke_test.py build/smoke_launcher_test.py \
		build/smoke_postgres_test.py $(PYTEST_ARGS)
	CODELACE_TEST_BINARY=dist/codelace-box $(PYTEST) -p no:cacheprovider \
		$(XDIST) --durations=5 $(BINARY_ACCEPTANCE) $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) dist build/out .pytest_cache .mypy_cache .ruff_cache
