# Everything runs inside .venv, managed by uv. Without uv on PATH, uv is installed into
# .bootstrap/ with python3's own venv and pip, so `make` needs only python3 and make.
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo .bootstrap/bin/uv)
BIN := .venv/bin
MIGRATE := $(BIN)/migrate
PGDATA := .pgdata
branch ?=
module ?= $(branch)
m ?=
BRANCH_OPT := $(if $(branch),--branch $(branch))

.PHONY: help install demo dev-db test lint bench migrate-up migrate-down migrate-create \
	migrate-current migrate-history migrate-status migrate-check

help:
	@echo "make demo                 build every module's schema (embedded PostgreSQL if DATABASE_URL is unset)"
	@echo "make test                 lint, type-check and run the test suite"
	@echo "make migrate-up|down|current|history|status [branch=NAME]"
	@echo "make migrate-create m='message' module=NAME"
	@echo "make migrate-check        the CI gate: drift, heads, ownership, dependencies"
	@echo "make dev-db               start the embedded PostgreSQL and print its URL"
	@echo "make bench [N=2000]       print what each command costs with N revisions in one module"

.bootstrap/bin/uv:
	$(PYTHON) -m venv .bootstrap
	.bootstrap/bin/pip install --quiet uv

# .venv is synced again only when pyproject.toml or uv.lock is newer than it
install: $(MIGRATE)

$(MIGRATE): pyproject.toml uv.lock | $(if $(findstring .bootstrap,$(UV)),.bootstrap/bin/uv)
	@$(UV) sync --locked --quiet
	@touch $@

dev-db: install
	@$(BIN)/python -W ignore -m shared.devserver $(PGDATA)

demo: install
	@set -e; \
	if [ -z "$$DATABASE_URL" ]; then \
		echo "DATABASE_URL is not set: using the embedded PostgreSQL in $(PGDATA)/"; \
		DATABASE_URL=$$($(BIN)/python -W ignore -m shared.devserver $(PGDATA)); \
		export DATABASE_URL; \
	fi; \
	$(MIGRATE) up; \
	$(MIGRATE) status

test: install lint
	$(BIN)/pytest

bench: install
	$(BIN)/python -m tests.bench_many_revisions

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

migrate-up: install
	$(MIGRATE) up $(BRANCH_OPT)

migrate-down: install
	$(MIGRATE) down $(BRANCH_OPT)

migrate-create: install
	@test -n "$(m)" || { echo "usage: make migrate-create m='message' module=NAME" >&2; exit 2; }
	@test -n "$(module)" || { echo "usage: make migrate-create m='message' module=NAME" >&2; exit 2; }
	$(MIGRATE) create "$(m)" --module $(module)

migrate-current: install
	$(MIGRATE) current $(BRANCH_OPT)

migrate-history: install
	$(MIGRATE) history $(BRANCH_OPT)

migrate-status: install
	$(MIGRATE) status

migrate-check: install
	$(MIGRATE) check
