# directdl: every target a user or CI needs. `make help` lists them.
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
# The interpreter of the virtualenv: `make PYTHON=python3.12 install` rebuilds it with another.
PYTHON ?= $(shell command -v python3.11 >/dev/null 2>&1 && echo python3.11 || echo python3)
VENV := .venv
BIN := $(VENV)/bin
# uv from PATH, else where .ci/deps puts it
UV ?= $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
# What the tests and `make run` need besides: servers in sbin, and what .ci/deps found out
# about the machine (.tools/env: a PostgreSQL it installed takes a password).
WITH_ENV = env PATH="$$PATH:/usr/sbin:/sbin" $$(cat .tools/env 2>/dev/null)
export AMQP_URL ?= amqp://guest:guest@127.0.0.1:5672/
export DIRECTDL_DATA_DIR ?= $(CURDIR)/var

.PHONY: help deps install lock run check test test-unit test-slow test-integration test-e2e lint format docs \
	bench clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

# `make run` and `make test` run it first: on a fresh Debian machine they need nothing else.
deps: ## what is missing, from Debian's packages (as root): servers, pip, uv; start RabbitMQ and PostgreSQL
	@bash .ci/deps

install: $(BIN)/directdl ## create the virtualenv from the lock file, requirements-dev.lock

# uv, when neither PATH nor .tools has it: .ci/deps installs it (and pip, if need be).
$(CURDIR)/.tools/bin/uv:
	@bash .ci/deps

# The virtualenv is rebuilt when it is not of $(PYTHON), so that PYTHON can be changed.
$(BIN)/directdl: requirements-dev.lock pyproject.toml | $(UV)
	@want=$$($(PYTHON) -c 'import sys; print(sys.version_info[:2])') && \
	  have=$$($(BIN)/python -c 'import sys; print(sys.version_info[:2])' 2>/dev/null) && \
	  [ "$$want" = "$$have" ] || $(UV) venv --clear --python $(PYTHON) $(VENV)
	$(UV) pip sync --require-hashes --python $(BIN)/python requirements-dev.lock
	$(UV) pip install --python $(BIN)/python --no-deps --no-build-isolation -e .
	@touch $@

LOCK := $(UV) pip compile pyproject.toml --generate-hashes --python-version 3.11 --universal

lock: ## re-resolve the lock files (pinned, hashed): runtime, and runtime + dev
	$(LOCK) -o requirements.lock
	$(LOCK) --group dev -o requirements-dev.lock

# The Procfile's processes under honcho (a dev dependency), as compose runs them, with the
# broker users created and the sample template written first: libs/directdl/launcher.py.
run: deps install ## every service and the sample template server, against the broker at AMQP_URL (Ctrl-C stops)
	@$(WITH_ENV) $(BIN)/python -m directdl.launcher

check: lint test-unit ## before a commit: lint, then the unit tests (under a minute)

# Three processes on two cores: most tests wait on brokers, servers and timers, not the CPU.
# `make test WORKERS=0` runs the suite in one process. Work stealing: a process that runs out
# takes tests queued for another, so the minute-long e2e tests do not all end up at the tail.
WORKERS ?= 3

test: deps install ## the whole suite: unit, integration and e2e, in $(WORKERS) processes
	$(WITH_ENV) $(BIN)/pytest -n $(WORKERS) --dist worksteal

test-unit: install ## the unit tests: in-memory fakes only, no broker or server
	$(BIN)/pytest -m unit

# "not unit" rather than "integration or e2e", so that a test with neither marker still runs
# somewhere: test-unit and test-slow together are exactly `make test`.
test-slow: deps install ## every test but the unit ones: integration, e2e and any unmarked test
	$(WITH_ENV) $(BIN)/pytest -m "not unit"

test-integration: deps install ## the integration tests: real RabbitMQ, PostgreSQL, nginx, NFS, aria2
	$(WITH_ENV) $(BIN)/pytest -m integration

test-e2e: deps install ## the end-to-end tests: services running as separate processes
	$(WITH_ENV) $(BIN)/pytest -m e2e

lint: install ## ruff, mypy and the import contracts in pyproject.toml
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install ## rewrite the code to ruff's format and apply ruff's fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

docs: install ## regenerate the AsyncAPI document, the message reference, the broker users and the README tables
	$(BIN)/python -m directdl.runtime.docs

bench: deps install ## benchmarks; each prints its figure
	@for b in bench/*.py; do echo "== $$b"; $(WITH_ENV) PYTHONPATH=tests/support $(BIN)/python $$b || exit 1; done

clean: ## remove the virtualenv, uv, var/ and the tools' caches
	rm -rf $(VENV) var .tools .pytest_cache .mypy_cache .ruff_cache .import_linter_cache .grimp_cache
