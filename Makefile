# Every target installs what it needs first, so `make run` and `make test` work on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help system-packages venv run up down status reset psql keys test fuzz lint format lock

help:
	@echo "make run     start the local stack in the foreground (Ctrl-C stops it)"
	@echo "make up      start whichever of the stack's processes is not running; make down stops it"
	@echo "make status  each process of the stack and the sender's health (non-zero if one is down)"
	@echo "make reset   rebuild the local database (emulation, migrations, functions, seed)"
	@echo "make psql    psql on the local database"
	@echo "make test    every test (pgTAP and pytest) against a throwaway cluster"
	@echo "make fuzz    schemathesis drives the whole API from its OpenAPI root, longer than in make test"
	@echo "make lint    sqlfluff over supabase/, ruff over app/, tests/ and bench/, app/'s layers"

system-packages:
	@scripts/ensure-system-packages

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# This machine's pip.conf names local indexes that may be absent: keep their warnings out.
	@$(BIN)/pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev]' \
		2> >(grep -v "^WARNING: Location" >&2)
	@touch $(STAMP)

venv: $(STAMP)

run: system-packages venv
	@$(BIN)/python -m app run

up: system-packages venv
	@$(BIN)/python -m app up

down: venv
	@$(BIN)/python -m app down

status: venv
	@$(BIN)/python -m app status

reset: system-packages venv
	@$(BIN)/python -m app db reset

psql: system-packages venv
	@$(BIN)/python -m app psql

keys: venv
	@$(BIN)/python -m app keys

test: system-packages venv
	@$(BIN)/python -m pytest $(PYTEST_ARGS)

# The fuzz test of `make test` with more examples per operation (FUZZ_EXAMPLES=N to choose).
FUZZ_EXAMPLES ?= 40
fuzz: system-packages venv
	@FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q tests/py/test_fuzz_api.py $(PYTEST_ARGS)

lint: venv
	@$(BIN)/sqlfluff lint --processes 2 supabase
	@$(BIN)/ruff check app tests bench
	@$(BIN)/ruff format --check app tests bench
	@$(BIN)/lint-imports --no-cache

format: venv
	@$(BIN)/sqlfluff fix --processes 2 supabase
	@$(BIN)/ruff check --fix app tests bench
	@$(BIN)/ruff format app tests bench

# Rewrites the lock from a clean environment; run after changing pyproject.toml's pins.
lock:
	@rm -rf /tmp/easymo-lock && $(PYTHON) -m venv /tmp/easymo-lock
	@/tmp/easymo-lock/bin/pip install --quiet --disable-pip-version-check '.[dev]'
	@/tmp/easymo-lock/bin/pip freeze --exclude easymo-backend > requirements.lock
	@rm -rf /tmp/easymo-lock
