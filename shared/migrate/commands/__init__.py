"""One function per `migrate` verb, each returning data and printing nothing; grouped by what
they do: move a database (`run`), read (`views`), write revision files (`revisions`), build on a
shadow (`inspect`), judge revisions for hot tables (`lint`), scaffold a module (`module`)."""

from shared.migrate.commands.inspect import CheckResult, check, owners
from shared.migrate.commands.lint import LintOptions, lint
from shared.migrate.commands.module import add_module
from shared.migrate.commands.revisions import CreateResult, create, merge
from shared.migrate.commands.run import (
    ChecksumMismatch,
    Reset,
    Resolution,
    RunOptions,
    RunResult,
    down,
    reset,
    resolve,
    up,
)
from shared.migrate.commands.views import History, heads, history, log, status
from shared.migrate.database.target import Target

__all__ = [
    "CheckResult",
    "ChecksumMismatch",
    "CreateResult",
    "History",
    "LintOptions",
    "Reset",
    "Resolution",
    "RunOptions",
    "RunResult",
    "Target",
    "add_module",
    "check",
    "create",
    "down",
    "heads",
    "history",
    "lint",
    "log",
    "merge",
    "owners",
    "reset",
    "resolve",
    "status",
    "up",
]
