"""The tool's own errors. Each carries the one-line message a user reads and its exit code."""

from __future__ import annotations

import signal
from collections.abc import Iterable
from difflib import get_close_matches

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_LOCKED = 3
EXIT_TERMINATED = 143  # 128 + SIGTERM, as a shell reports it
EXIT_INTERRUPTED = 130  # 128 + SIGINT (Ctrl-C)

QUOTE_LIMIT = 60


def shown(value: object, limit: int = QUOTE_LIMIT) -> str:
    """User text fit to quote in one line: control characters escaped, length capped, and a
    value that is not text named by its kind, never `repr`'d whole."""
    if not isinstance(value, str):
        kinds = {dict: "a mapping", list: "a list", tuple: "a list", bool: "a boolean"}
        kind = next((k for t, k in kinds.items() if isinstance(value, t)), None)
        if kind is None and isinstance(value, int | float):
            return str(value)[:limit]
        return f"({kind or 'a ' + type(value).__name__})"
    text = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in value[: limit + 1])
    return text[:limit] + "..." if len(value) > limit or len(text) > limit else text


def short_checksum(checksum: str) -> str:
    """A revision's checksum as messages and `migrate log` show it: 12 hex digits."""
    return checksum.rpartition(":")[2][:12]


def checksum_changed(revision: str, path: str, applied: str, now: str) -> str:
    """The one account of an applied revision whose file changed since (`up` and `check`)."""
    return (
        f"revision {revision} ({path}) changed after it was applied (applied "
        f"{short_checksum(applied)}, file now {short_checksum(now)}); revert the edit and put "
        f"the change in a new revision, or accept it: migrate resolve --accept {revision} "
        "--reason '...'"
    )


def did_you_mean(given: object, choices: Iterable[str]) -> str:
    """The words 'did you mean X? ' for the choice closest to a mistyped name (difflib, as Click
    does for commands), or nothing when none is close. Stricter than Click's cutoff (0.6): a
    swapped or missing letter scores 0.8 and more, another word ('payments', 'agents') 0.71."""
    if not isinstance(given, str):
        return ""
    close = get_close_matches(given, list(choices), n=1, cutoff=0.75)
    return f"did you mean '{close[0]}'? " if close else ""


class MigrateError(Exception):
    """A failure the user can act on: `str(error)` is the whole message."""

    exit_code = EXIT_FAILED


class ConfigError(MigrateError):
    """The manifest, alembic.ini, a revision file or a command-line argument is wrong."""

    exit_code = EXIT_USAGE


class UnknownModule(ConfigError):
    def __init__(self, name: str, known: list[str], branches: Iterable[str] = ()) -> None:
        super().__init__(
            f"unknown module or branch '{shown(name)}'; {did_you_mean(name, [*known, *branches])}"
            f"known modules: {', '.join(known) or '(none)'}"
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


class Terminated(MigrateError):
    exit_code = EXIT_TERMINATED


class Interrupted(MigrateError):
    exit_code = EXIT_INTERRUPTED


# the signals that cancel a run, which then ends with Terminated or Interrupted saying what
# it left behind; the CLI adds SIGINT (a test session keeps Ctrl-C a KeyboardInterrupt,
# which stops all of it)
CANCELLING = [signal.SIGTERM]
