"""The tool's own errors. Each carries the one-line message a user reads and its exit code."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_LOCKED = 3


class MigrateError(Exception):
    """A failure the user can act on: `str(error)` is the whole message."""

    exit_code = EXIT_FAILED


class ConfigError(MigrateError):
    """The manifest, alembic.ini or a command-line argument is wrong."""

    exit_code = EXIT_USAGE


class UnknownModule(ConfigError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(
            f"unknown module or branch '{name}'; known modules: {', '.join(known) or '(none)'}"
        )


class RevisionError(MigrateError):
    """The revision graph or a revision named on the command line is wrong."""

    exit_code = EXIT_USAGE


class MultipleHeads(MigrateError):
    def __init__(self, module: str, heads: list[str]) -> None:
        super().__init__(
            f"module '{module}' has {len(heads)} heads ({', '.join(heads)}); "
            f"merge them with: migrate merge --module {module}"
        )


class DatabaseError(MigrateError):
    """The database could not be reached or refused an operation."""


class LockTimeout(MigrateError):
    exit_code = EXIT_LOCKED
