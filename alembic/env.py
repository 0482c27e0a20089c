"""Alembic environment for every module in migrations.yaml; the work is in shared.migrate.env."""

from shared.migrate.env import run_env

run_env()
