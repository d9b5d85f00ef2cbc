# directdl: every target a user or CI needs. `make help` lists them.
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# uv from PATH, else where `make deps` puts it
UV ?= $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
export AMQP_URL ?= amqp://guest:guest@127.0.0.1:5672/
export DIRECTDL_DATA_DIR ?= $(CURDIR)/var

.PHONY: help deps install lock run check test test-unit test-slow test-integration test-e2e lint format docs \
	bench clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

deps: ## as root: RabbitMQ, nginx, nfs-ganesha, aria2, qemu-utils from Debian when missing; start the broker
	bash .ci/deps

install: $(BIN)/directdl ## create the virtualenv from the lock file, requirements-dev.lock

$(BIN)/directdl: requirements-dev.lock pyproject.toml
	test -x $(BIN)/python || $(UV) venv --python $(PYTHON) $(VENV)
	$(UV) pip sync --require-hashes --python $(BIN)/python requirements-dev.lock
	$(UV) pip install --python $(BIN)/python --no-deps --no-build-isolation -e .
	@touch $@

LOCK := $(UV) pip compile pyproject.toml --generate-hashes --python-version 3.11 --universal

lock: ## re-resolve the lock files (pinned, hashed): runtime, and runtime + dev
	$(LOCK) -o requirements.lock
	$(LOCK) --group dev -o requirements-dev.lock

# The Procfile's processes under honcho (a dev dependency), as compose runs them, with the
# broker users created and the sample template written first: libs/directdl/launcher.py.
run: install ## every service and the sample template server, against the broker at AMQP_URL (Ctrl-C stops)
	$(BIN)/python -m directdl.launcher

check: lint test-unit ## before a commit: lint, then the unit tests (under a minute)

test: install ## the whole suite: unit, integration and e2e
	$(BIN)/pytest

test-unit: install ## the unit tests: in-memory fakes only, no broker or server
	$(BIN)/pytest -m unit

# "not unit" rather than "integration or e2e", so that a test with neither marker still runs
# somewhere: test-unit and test-slow together are exactly `make test`.
test-slow: install ## every test but the unit ones: integration, e2e and any unmarked test
	$(BIN)/pytest -m "not unit"

test-integration: install ## the integration tests: real RabbitMQ, PostgreSQL, nginx, NFS, aria2
	$(BIN)/pytest -m integration

test-e2e: install ## the end-to-end tests: services running as separate processes
	$(BIN)/pytest -m e2e

lint: install ## ruff, mypy and the import contracts in pyproject.toml
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install ## rewrite the code to ruff's format and apply ruff's fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

docs: install ## regenerate the AsyncAPI document, the message reference and the broker users
	$(BIN)/python -m directdl.runtime.docs

bench: install ## benchmarks; each prints its figure
	@for b in bench/*.py; do echo "== $$b"; PYTHONPATH=tests/support $(BIN)/python $$b || exit 1; done

clean: ## remove the virtualenv, uv, var/ and the tools' caches
	rm -rf $(VENV) var .tools .pytest_cache .mypy_cache .ruff_cache .import_linter_cache .grimp_cache
