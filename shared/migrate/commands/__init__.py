"""One function per `migrate` verb, each returning data and printing nothing; grouped by what
they do: move a database (`run`), read (`views`), write revision files (`revisions`), build on a
shadow (`inspect`), judge revisions for hot tables (`lint`), scaffold a module (`module`)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

# each verb's module is imported when the CLI asks for the verb: `migrate up` never pays for
# check's, lint's or module add's imports
_WHERE = {
    "CheckResult": "shared.migrate.commands.inspect",
    "ChecksumMismatch": "shared.migrate.commands.run",
    "CreateResult": "shared.migrate.commands.revisions",
    "History": "shared.migrate.commands.views",
    "LintOptions": "shared.migrate.commands.lint",
    "Reset": "shared.migrate.commands.run",
    "Resolution": "shared.migrate.commands.run",
    "RunOptions": "shared.migrate.commands.run",
    "RunResult": "shared.migrate.commands.run",
    "Target": "shared.migrate.database.target",
    "add_module": "shared.migrate.commands.module",
    "check": "shared.migrate.commands.inspect",
    "create": "shared.migrate.commands.revisions",
    "down": "shared.migrate.commands.run",
    "heads": "shared.migrate.commands.views",
    "history": "shared.migrate.commands.views",
    "lint": "shared.migrate.commands.lint",
    "log": "shared.migrate.commands.views",
    "merge": "shared.migrate.commands.revisions",
    "owners": "shared.migrate.commands.inspect",
    "reset": "shared.migrate.commands.run",
    "resolve": "shared.migrate.commands.run",
    "status": "shared.migrate.commands.views",
    "up": "shared.migrate.commands.run",
}

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


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'shared.migrate.commands' has no attribute {name!r}")
