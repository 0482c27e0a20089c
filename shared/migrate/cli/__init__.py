"""The `migrate` command line: the Typer app (`app`), its rendering (`output`) and the module
graph picture (`diagram`). The console script's entry point is `main`."""

import os
import signal
import sys


def _terminated(signum: int, frame: object) -> None:
    """SIGTERM while no event loop runs (starting, printing): nothing is in progress in the
    database then; end as a terminated run does, with its exit code and one line, at once
    (inside a run, the event loop's own handler takes over: database/session.py)."""
    try:
        sys.stdout.flush()
    finally:
        os.write(2, b"error: terminated (SIGTERM); nothing was changed in the database\n")
        os._exit(143)


# first, before the imports below take their tens of milliseconds
signal.signal(signal.SIGTERM, _terminated)

from shared.migrate.cli.app import app, main  # noqa: E402

__all__ = ["app", "main"]
