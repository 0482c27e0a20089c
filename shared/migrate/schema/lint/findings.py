"""What flows out of lint: statements as rendered and measured, and findings about them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

LEVELS = ("error", "warning", "off")
STATEMENT_LIMIT = 200  # characters of SQL quoted in a finding


@dataclass(frozen=True)
class Lock:
    relation: str  # as MetaData names it: bare in public, schema.name elsewhere
    mode: str  # PostgreSQL's words: "ACCESS EXCLUSIVE", "SHARE", ...


@dataclass(frozen=True)
class Measured:
    """What one statement did on the shadow database, to relations that existed before its
    revision ran."""

    locks: tuple[Lock, ...]  # taken by this statement (the strongest mode per relation)
    rewrites: tuple[str, ...]  # tables and indexes whose relfilenode changed
    scans: tuple[str, ...]  # tables it read in full (a sequential scan began)
    held: tuple[Lock, ...] = ()  # locks the transaction already held when it started
    indexes: tuple[str, ...] = ()  # indexes of existing tables it rebuilt

    def mode_on(self, relation: str) -> str | None:
        return next((lock.mode for lock in self.locks if lock.relation == relation), None)


@dataclass(frozen=True)
class Statement:
    """One SQL statement a revision's upgrade emits, in order, with the line of the `op.`
    call in the revision file that emitted it."""

    module: str
    revision: str
    file: str  # relative to the repository
    index: int  # 1-based, within the revision
    line: int | None
    sql: str
    in_transaction: bool  # False: inside autocommit_block() (or after a COMMIT)
    call: int = 0  # which call from this line it came from (a line in a loop emits several)
    node: Any = field(default=None, compare=False, repr=False)  # pglast's node; None: unparsable
    error: str | None = None  # why the SQL could not be parsed or rendered
    measured: Measured | None = None


@dataclass(frozen=True)
class Finding:
    rule: str
    level: str  # "error" or "warning"
    module: str
    revision: str
    file: str
    line: int | None
    statement: str  # the SQL, capped
    detail: str  # what happens, measured where it could be
    recipe: str  # the safe way
    locks: tuple[Lock, ...] = ()
    rewrites: tuple[str, ...] = ()
    scans: tuple[str, ...] = ()
    measured: bool = False
    silenced: str | None = None  # the reason given, when a silence covers it

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True)
class Linted:
    """One revision as lint saw it."""

    module: str
    revision: str
    file: str
    statements: tuple[Statement, ...]


@dataclass(frozen=True)
class Report:
    findings: tuple[Finding, ...]  # what is in force: errors and warnings
    silenced: tuple[Finding, ...]  # what a silence or an `off` level covers
    revisions: tuple[Linted, ...]
    measured: bool  # the measured pass ran (on a shadow database)

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.level == "error")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.level == "warning")
