"""Each revision's upgrade rendered to SQL through Alembic's offline mode, in its module's
context (the executor's own loop, as `up --sql` runs it), then parsed by PostgreSQL's parser.

Every statement keeps the line of the `op.` call that emitted it: the offline output buffer
notes the revision file's frame on the stack when Alembic writes to it.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.migrate.errors import MigrateError, shown
from shared.migrate.history.graph import RevisionGraph
from shared.migrate.history.plans import Step
from shared.migrate.schema.lint.findings import Statement

if TYPE_CHECKING:
    from types import CodeType, FrameType


@dataclass(frozen=True)
class Chunk:
    """One write of Alembic's offline output: one statement (or an op.execute text)."""

    sql: str
    line: int | None  # the revision file's line; None: written by the tool or Alembic itself
    autocommit: bool  # written by autocommit_block() entering or leaving


@dataclass(frozen=True)
class Rendered:
    revision: str
    chunks: tuple[Chunk, ...]
    error: str | None  # the upgrade could not run offline (the chunks stop there)
    error_line: int | None = None


class _Capture:
    """The output buffer Alembic writes offline SQL to."""

    def __init__(self, autocommit: CodeType) -> None:
        self.path = ""
        self.chunks: list[Chunk] = []
        self._autocommit = autocommit

    def write(self, text: str) -> int:
        line, autocommit = self._origin(sys._getframe(1))
        self.chunks.append(Chunk(text, line, autocommit))
        return len(text)

    def flush(self) -> None:
        pass

    def _origin(self, frame: FrameType | None) -> tuple[int | None, bool]:
        autocommit = False
        while frame is not None:
            code = frame.f_code
            if code is self._autocommit:
                autocommit = True
            elif code.co_filename == self.path:
                return frame.f_lineno, autocommit
            frame = frame.f_back
        return None, autocommit


def render(graph: RevisionGraph, revisions: list[str]) -> list[Rendered]:
    """The upgrade of each revision (in the order given) as offline SQL, chunk by chunk."""
    import inspect

    from alembic.runtime.migration import MigrationContext

    from shared.migrate.database.executor import Executor, RevisionFailed

    block = inspect.unwrap(MigrationContext.autocommit_block)
    capture = _Capture(block.__code__)
    executor = Executor.offline(graph, capture, set())
    rendered = []
    with executor.contexts():
        for revision in revisions:
            info = graph.revisions[revision]
            capture.path = info.location
            start = len(capture.chunks)
            error: str | None = None
            line: int | None = None
            try:
                executor.step(Step(info.module, revision, info.message, "up"))
            except RevisionFailed as exc:
                error, line = exc.reason, _failing_line(exc, info.location)
            except MigrateError as exc:
                error = str(exc)
            rendered.append(Rendered(revision, tuple(capture.chunks[start:]), error, line))
    return rendered


def _failing_line(exc: BaseException, path: str) -> int | None:
    """The revision file's line where the upgrade raised, from the traceback."""
    cause = exc.__cause__
    trace = cause.__traceback__ if cause is not None else None
    line = None
    while trace is not None:
        if trace.tb_frame.f_code.co_filename == path:
            line = trace.tb_lineno
        trace = trace.tb_next
    return line


def statements(graph: RevisionGraph, rendered: Rendered) -> list[Statement]:
    """The revision's statements, parsed; transaction control from Alembic itself is followed
    (to know what runs inside a transaction) but not reported."""
    from pglast.parser import ParseError

    info = graph.revisions[rendered.revision]
    file = relative(graph, info.location)
    found: list[Statement] = []
    in_transaction = False
    calls: dict[int | None, int] = {}

    def add(sql: str, line: int | None, node: Any = None, error: str | None = None) -> None:
        found.append(
            Statement(
                info.module,
                info.revision,
                file,
                len(found) + 1,
                line,
                sql,
                in_transaction,
                calls.get(line, 1) - 1,
                node,
                error,
            )
        )

    for chunk in rendered.chunks:
        text = chunk.sql.strip()
        if not text:
            continue
        if chunk.line is None or chunk.autocommit:
            # the tool's and Alembic's own: only transaction control matters here
            in_transaction = _control(text, in_transaction)
            continue
        calls[chunk.line] = calls.get(chunk.line, 0) + 1
        try:
            parsed = parse(text)
        except ParseError as exc:
            add(text, chunk.line, error=f"PostgreSQL cannot parse it: {shown(exc.args[0])}")
            continue
        for raw in parsed:
            add(_piece(text, raw), chunk.line, raw.stmt)
            if type(raw.stmt).__name__ == "TransactionStmt":
                in_transaction = _opens(raw.stmt, in_transaction)
    if rendered.error is not None:
        add(
            "",
            rendered.error_line,
            error=f"the upgrade cannot be rendered offline: {shown(rendered.error, 200)}",
        )
    return found


@lru_cache(maxsize=4096)
def parse(text: str) -> tuple[Any, ...]:
    """PostgreSQL's parse of a text (many revisions repeat the same statements)."""
    from pglast.parser import parse_sql

    return tuple(parse_sql(text))


def relative(graph: RevisionGraph, location: str) -> str:
    """A revision file's path relative to the repository (the index keeps resolved paths)."""
    root = str(graph.manifest.root)
    if location.startswith(root + os.sep):
        return Path(location[len(root) + 1 :]).as_posix()
    return graph.relative(Path(location))


def _control(text: str, current: bool) -> bool:
    """Whether a transaction is open after a chunk the tool or Alembic wrote, read with
    PostgreSQL's scanner (the bookkeeping INSERTs are not worth parsing)."""
    from pglast.parser import scan

    tokens = scan(text)
    first = tokens[0].name if tokens else ""
    if first in ("BEGIN_P", "START"):
        return True
    if first in ("COMMIT", "ROLLBACK", "END_P", "ABORT_P"):
        return False
    return current


def _opens(node: Any, current: bool) -> bool:
    """Whether a transaction is open after this transaction statement."""
    from pglast.enums.parsenodes import TransactionStmtKind as Kind

    if node.kind in (Kind.TRANS_STMT_BEGIN, Kind.TRANS_STMT_START):
        return True
    if node.kind in (Kind.TRANS_STMT_COMMIT, Kind.TRANS_STMT_ROLLBACK):
        return False
    return current


def _piece(text: str, raw: Any) -> str:
    """One statement's text out of a chunk that may hold several."""
    start = raw.stmt_location or 0
    end = start + raw.stmt_len if raw.stmt_len else len(text)
    return text[start:end].strip().rstrip(";").strip()
