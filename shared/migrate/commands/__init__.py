"""One function per `migrate` verb, each returning data and printing nothing; grouped by what
they do: move a database (`run`), read (`views`), write revision files (`revisions`), build on a
shadow (`inspect`), judge revisions for hot tables (`lint`), scaffold a module (`module`),
replace revisions (`squash`, `adopt`, `baseline`, on `replace`)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.migrate.commands.adopt import Adopted, adopt
    from shared.migrate.commands.baseline import Baselined, Marked, baseline, mark
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
    from shared.migrate.commands.squash import Squashed, squash
    from shared.migrate.commands.views import History, heads, history, log, status
    from shared.migrate.database.target import Target

# each verb's module is imported when the CLI asks for the verb: `migrate up` never pays for
# check's, lint's or module add's imports
_WHERE = {
    "Adopted": "shared.migrate.commands.adopt",
    "Baselined": "shared.migrate.commands.baseline",
    "CheckResult": "shared.migrate.commands.inspect",
    "ChecksumMismatch": "shared.migrate.commands.run",
    "CreateResult": "shared.migrate.commands.revisions",
    "History": "shared.migrate.commands.views",
    "LintOptions": "shared.migrate.commands.lint",
    "Marked": "shared.migrate.commands.baseline",
    "Reset": "shared.migrate.commands.run",
    "Resolution": "shared.migrate.commands.run",
    "RunOptions": "shared.migrate.commands.run",
    "RunResult": "shared.migrate.commands.run",
    "Squashed": "shared.migrate.commands.squash",
    "Target": "shared.migrate.database.target",
    "add_module": "shared.migrate.commands.module",
    "adopt": "shared.migrate.commands.adopt",
    "baseline": "shared.migrate.commands.baseline",
    "check": "shared.migrate.commands.inspect",
    "create": "shared.migrate.commands.revisions",
    "down": "shared.migrate.commands.run",
    "heads": "shared.migrate.commands.views",
    "history": "shared.migrate.commands.views",
    "lint": "shared.migrate.commands.lint",
    "log": "shared.migrate.commands.views",
    "mark": "shared.migrate.commands.baseline",
    "merge": "shared.migrate.commands.revisions",
    "owners": "shared.migrate.commands.inspect",
    "reset": "shared.migrate.commands.run",
    "resolve": "shared.migrate.commands.run",
    "squash": "shared.migrate.commands.squash",
    "status": "shared.migrate.commands.views",
    "up": "shared.migrate.commands.run",
}

__all__ = [
    "Adopted",
    "Baselined",
    "CheckResult",
    "ChecksumMismatch",
    "CreateResult",
    "History",
    "LintOptions",
    "Marked",
    "Reset",
    "Resolution",
    "RunOptions",
    "RunResult",
    "Squashed",
    "Target",
    "add_module",
    "adopt",
    "baseline",
    "check",
    "create",
    "down",
    "heads",
    "history",
    "lint",
    "log",
    "mark",
    "merge",
    "owners",
    "reset",
    "resolve",
    "squash",
    "status",
    "up",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'shared.migrate.commands' has no attribute {name!r}")
