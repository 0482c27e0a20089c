"""The `migrate` command line: the Typer app (`app`), its rendering (`output`) and the module
graph picture (`diagram`). The console script's entry point is `main`."""

from shared.migrate.cli.app import app, main

__all__ = ["app", "main"]
