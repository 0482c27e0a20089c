"""`migrate`: per-module Alembic branches in one shared async environment."""
