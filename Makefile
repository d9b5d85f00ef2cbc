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

.PHONY: help deps install lock run test test-unit test-integration test-e2e lint format docs bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

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

run: install ## start every service locally against the broker at AMQP_URL (Ctrl-C stops)
	$(BIN)/python -m directdl.launcher

test: install ## the whole suite: unit, integration and e2e
	$(BIN)/pytest

test-unit: install
	$(BIN)/pytest -m unit

test-integration: install
	$(BIN)/pytest -m integration

test-e2e: install
	$(BIN)/pytest -m e2e

lint: install ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

docs: install ## regenerate the AsyncAPI document, the message reference and the broker users
	$(BIN)/python -m directdl.contracts.asyncapi --out-dir docs
	$(BIN)/python -m directdl.runtime.accounts host-1 host-2 > deploy/rabbitmq/definitions.json

bench: install ## benchmarks; each prints its figure
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) var .tools .pytest_cache .mypy_cache .ruff_cache
