# Everything runs inside .venv, managed by uv. Without uv on PATH, uv is installed into
# .bootstrap/ with python3's own venv and pip, so `make` needs only python3 and make.
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo .bootstrap/bin/uv)
BIN := .venv/bin
MIGRATE := $(BIN)/migrate
# errors name make variables (branch=NAME) only when migrate runs from a migrate-* target
RUN_MIGRATE := MIGRATE_VIA_MAKE=1 $(MIGRATE)
PGDATA := .pgdata
# m, module and branch reach the shell through the environment, never pasted into a
# command: whatever they hold ($, backticks, quotes) stays text
export MIGRATE_MESSAGE := $(value m)
export MIGRATE_MODULE := $(or $(value module),$(value branch))
export MIGRATE_BRANCH := $(value branch)
export MIGRATE_DATABASE := $(value database)
BRANCH_OPT = $${MIGRATE_BRANCH:+--branch "$$MIGRATE_BRANCH"}

.PHONY: help install demo dev-db dev-db-stop test lint bench soak clean migrate-up migrate-down \
	migrate-create migrate-current migrate-history migrate-status migrate-check migrate-lint \
	migrate-reset

help:
	@echo "make demo                 build every module's schema (embedded PostgreSQL if DATABASE_URL is unset)"
	@echo "make test                 lint, type-check and run the test suite [TEST_WORKERS=N]"
	@echo "make migrate-up|down|current|history|status [branch=NAME]"
	@echo "make migrate-create m='message' module=NAME"
	@echo "make migrate-check        the CI gate: drift, heads, ownership, dependencies, downgrades, lint"
	@echo "make migrate-lint         what pending revisions lock, rewrite or break [branch=NAME]"
	@echo "make migrate-reset        development only: empty the local database, apply every module"
	@echo "make dev-db               start the embedded PostgreSQL and print its URL"
	@echo "make dev-db-stop          stop it (its data stays in $(PGDATA)/)"
	@echo "make bench                print what each command costs, beside plain Alembic"
	@echo "make soak                 chaos soak: replicas migrate while clients and sessions die [SOAK_MINUTES=10]"
	@echo "make clean                remove .venv, .bootstrap, caches (not $(PGDATA)/)"

.bootstrap/bin/uv:
	$(PYTHON) -m venv .bootstrap
	.bootstrap/bin/pip install --quiet uv

# .venv is synced again only when pyproject.toml or uv.lock is newer than it; the project's
# own modules are compiled too, so no command compiles them on every run
install: $(MIGRATE)

$(MIGRATE): pyproject.toml uv.lock | $(if $(findstring .bootstrap,$(UV)),.bootstrap/bin/uv)
	@$(UV) sync --locked --quiet
	@$(BIN)/python -m compileall -q shared services alembic > /dev/null
	@touch $@

dev-db: install
	@$(BIN)/python -W ignore -m shared.devserver $(PGDATA)

dev-db-stop: install
	@$(BIN)/python -W ignore -m shared.devserver --stop $(PGDATA)

demo: install
	@set -e; \
	embedded=; \
	if [ -z "$$DATABASE_URL" ]; then \
		echo "DATABASE_URL is not set: using the embedded PostgreSQL in $(PGDATA)/"; \
		DATABASE_URL=$$($(BIN)/python -W ignore -m shared.devserver $(PGDATA)); \
		export DATABASE_URL; embedded=1; \
	fi; \
	$(RUN_MIGRATE) up; \
	$(RUN_MIGRATE) status; \
	echo; \
	echo "Next: run migrate from the project's environment, e.g. .venv/bin/migrate status"; \
	if [ -n "$$embedded" ]; then \
		echo "(or: source .venv/bin/activate), with DATABASE_URL=\$$(make -s dev-db) set"; \
	else \
		echo "(or: source .venv/bin/activate)"; \
	fi

# twice as many workers as cores: a test spends most of its time waiting on PostgreSQL
TEST_WORKERS ?= $(shell echo $$(( $$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1) * 2 )))

PYTEST := $(BIN)/pytest -n $(TEST_WORKERS)
# Debian installs it in /usr/sbin, which is not on every user's PATH
PGBOUNCER := $(shell PATH="$$PATH:/usr/sbin:/usr/local/sbin" command -v pgbouncer 2>/dev/null)

# three runs: the whole suite on TEST_DATABASE_URL's server (else the embedded PostgreSQL); the
# deploy tests on the embedded PostgreSQL as a second server (when the first was another); the
# deploy tests through a PgBouncer in session mode that the tests start (when it is installed)
test: install lint
	$(PYTEST)
	@if [ -n "$$TEST_DATABASE_URL$$MIGRATE_TEST_DATABASE_URL" ]; then \
		echo "env -u TEST_DATABASE_URL -u MIGRATE_TEST_DATABASE_URL $(PYTEST) -m deploy"; \
		env -u TEST_DATABASE_URL -u MIGRATE_TEST_DATABASE_URL $(PYTEST) -m deploy; \
	else \
		echo "The deploy tests on a second server: not run (no TEST_DATABASE_URL; the embedded PostgreSQL was the only server)."; \
	fi
	@if [ -n "$(PGBOUNCER)" ]; then \
		echo "$(PYTEST) -m deploy --through-pgbouncer"; \
		$(PYTEST) -m deploy --through-pgbouncer; \
	else \
		echo "The deploy tests through PgBouncer: not run (pgbouncer is not installed; Debian: apt-get install pgbouncer)."; \
	fi

bench: install
	$(BIN)/python -m tests.bench

# not part of `make test`: DATABASE_URL's server (its own database, dropped after), else an
# embedded one that it restarts once; exits 0 only when every invariant held
SOAK_MINUTES ?= 10
soak: install
	SOAK_MINUTES=$(SOAK_MINUTES) $(BIN)/python -W ignore::UserWarning -m tests.soak

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf .venv .bootstrap .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -type d -prune -not -path './$(PGDATA)/*' -exec rm -rf {} +

migrate-up: install
	$(RUN_MIGRATE) up $(BRANCH_OPT)

migrate-down: install
	$(RUN_MIGRATE) down $(BRANCH_OPT)

migrate-create: install
	@test -n "$$MIGRATE_MESSAGE" || { echo "usage: make migrate-create m='message' module=NAME" >&2; exit 2; }
	@test -n "$$MIGRATE_MODULE" || { echo "usage: make migrate-create m='message' module=NAME" >&2; exit 2; }
	$(RUN_MIGRATE) create "$$MIGRATE_MESSAGE" --module "$$MIGRATE_MODULE"

migrate-current: install
	$(RUN_MIGRATE) current $(BRANCH_OPT)

migrate-history: install
	$(RUN_MIGRATE) history $(BRANCH_OPT)

migrate-status: install
	$(RUN_MIGRATE) status $(BRANCH_OPT)

migrate-check: install
	$(RUN_MIGRATE) check

migrate-lint: install
	$(RUN_MIGRATE) lint $(BRANCH_OPT)

# a database elsewhere than this machine only when named: make migrate-reset database=NAME
migrate-reset: install
	$(RUN_MIGRATE) reset $${MIGRATE_DATABASE:+--database "$$MIGRATE_DATABASE"}
