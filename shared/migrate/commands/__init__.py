"""One function per `migrate` verb, each returning data and printing nothing; grouped by what
they do: move a database (`run`), read (`views`), write revision files (`revisions`), build on a
shadow (`inspect`), scaffold a module (`module`), replace revisions (`replace`: squash, adopt,
baseline)."""

from shared.migrate.commands.adopt import Adopted, adopt
from shared.migrate.commands.baseline import Baselined, Marked, baseline, mark
from shared.migrate.commands.inspect import CheckResult, check, owners
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

__all__ = [
    "Adopted",
    "Baselined",
    "CheckResult",
    "ChecksumMismatch",
    "CreateResult",
    "History",
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
