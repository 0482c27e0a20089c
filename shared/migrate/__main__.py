"""`python -m shared.migrate ...`: the same command line as `migrate` (whose name another tool,
golang-migrate, may already hold on PATH)."""

from shared.migrate.cli.app import main

main()
