"""The measured pass: the revisions being linted, applied one by one on a shadow database
(from the template `check` keeps of everything below them), statement by statement.

Around each statement a revision file emits (SQLAlchemy's public cursor events; the tool's
own bookkeeping is told apart by the stack), the catalog is read on the same connection:
which relations the transaction holds which lock mode on (`pg_locks`), which tables and
indexes got a new `relfilenode` (a rewrite), and which tables a sequential scan began on
(`pg_stat_get_xact_numscans`). Only relations that existed before the revision ran count.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.migrate.history.graph import RevisionGraph
from shared.migrate.schema.lint.findings import Lock, Measured

if TYPE_CHECKING:
    from types import FrameType

    from sqlalchemy.engine import Connection

    from shared.db.url import DatabaseURL

RELATIONS_SQL = """
SELECT c.oid, n.nspname, c.relname, c.relkind::text, c.relfilenode::bigint, COALESCE(i.indrelid, 0),
       CASE WHEN c.relkind IN ('r', 'm') THEN pg_stat_get_xact_numscans(c.oid) ELSE 0 END
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_index i ON i.indexrelid = c.oid
WHERE c.relkind IN ('r', 'p', 'm', 'i', 'I')
  AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
"""
LOCKS_SQL = (
    "SELECT relation, mode FROM pg_locks WHERE locktype = 'relation' "
    "AND pid = pg_backend_pid() AND granted"
)
MODES = {
    "AccessShareLock": "ACCESS SHARE",
    "RowShareLock": "ROW SHARE",
    "RowExclusiveLock": "ROW EXCLUSIVE",
    "ShareUpdateExclusiveLock": "SHARE UPDATE EXCLUSIVE",
    "ShareLock": "SHARE",
    "ShareRowExclusiveLock": "SHARE ROW EXCLUSIVE",
    "ExclusiveLock": "EXCLUSIVE",
    "AccessExclusiveLock": "ACCESS EXCLUSIVE",
}
STRENGTH = {mode: rank for rank, mode in enumerate(MODES.values())}


@dataclass(frozen=True)
class Sample:
    """One statement a revision file emitted, as it ran online."""

    revision: str
    line: int
    sql: str
    in_transaction: bool
    measured: Measured


@dataclass(frozen=True)
class Measurement:
    samples: tuple[Sample, ...]
    failed: dict[str, str]  # revision -> why it could not be applied on the shadow


@dataclass(frozen=True)
class _Relation:
    key: str  # as MetaData names it
    kind: str
    filenode: int
    table: int  # an index's table (0: not an index)
    scans: int


class _Observer:
    """Listens to one connection while the revisions being measured run."""

    def __init__(self, conn: Connection, graph: RevisionGraph) -> None:
        self.conn = conn
        self.graph = graph
        self.path = ""
        self.revision: str | None = None
        self.existing: dict[int, _Relation] | None = None
        self.before: tuple[dict[int, _Relation], set[tuple[int, str]]] | None = None
        self.line = 0
        self.samples: list[Sample] = []

    def start(self, revision: str | None) -> None:
        self.revision = revision
        self.path = self.graph.revisions[revision].location if revision else ""
        self.existing = None

    @contextmanager
    def listening(self) -> Iterator[None]:
        from sqlalchemy import event

        event.listen(self.conn, "before_cursor_execute", self._before)
        event.listen(self.conn, "after_cursor_execute", self._after)
        try:
            yield
        finally:
            event.remove(self.conn, "before_cursor_execute", self._before)
            event.remove(self.conn, "after_cursor_execute", self._after)

    def _line(self) -> int | None:
        frame: FrameType | None = sys._getframe(2)
        while frame is not None:
            if frame.f_code.co_filename == self.path:
                return frame.f_lineno
            frame = frame.f_back
        return None

    def _before(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.before = None
        if self.revision is None:
            return
        line = self._line()
        if line is None:
            return
        relations = self._relations()
        if self.existing is None:
            self.existing = relations
        self.line = line
        self.before = (relations, self._locks())

    def _after(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if self.before is None or self.revision is None or self.existing is None:
            return
        relations, held = self.before
        self.before = None
        after, locks = self._relations(), self._locks()
        existing = self.existing
        name = {oid: r.key for oid, r in existing.items()}
        taken = _strongest(
            (oid, mode)
            for oid, mode in locks - held
            if oid in existing and existing[oid].kind in "rpm"
        )
        rewritten = [
            oid
            for oid, r in after.items()
            if oid in existing and oid in relations and r.filenode != relations[oid].filenode
        ]
        tables = [o for o in rewritten if existing[o].kind in "rpm"]
        indexes = [o for o in rewritten if existing[o].kind in "iI"]
        tables += [existing[o].table for o in indexes if existing[o].table not in tables]
        scans = [
            oid
            for oid, r in after.items()
            if oid in existing and oid in relations and r.scans > relations[oid].scans
        ]
        # a table it locked again, rewrote or scanned under a stronger lock an earlier
        # statement took: that lock is the one it ran under (an index rebuilt inside an
        # ALTER ... TYPE takes SHARE on a table the transaction holds ACCESS EXCLUSIVE on)
        touched = set(taken) | set(tables) | set(scans)
        taken = _strongest([*((o, m) for o, m in held if o in touched), *taken.items()])
        self.samples.append(
            Sample(
                self.revision,
                self.line,
                statement,
                not _autocommit(self.conn),
                Measured(
                    locks=tuple(Lock(name[o], m) for o, m in sorted(taken.items())),
                    rewrites=tuple(name[o] for o in tables if o in name),
                    scans=tuple(name[o] for o in scans),
                    held=tuple(
                        Lock(name[o], m)
                        for o, m in sorted(
                            _strongest(
                                (o, m)
                                for o, m in held
                                if o in existing and existing[o].kind in "rpm"
                            ).items()
                        )
                    ),
                    indexes=tuple(name[o] for o in indexes),
                ),
            )
        )

    def _cursor(self) -> Any:
        return self.conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]

    def _relations(self) -> dict[int, _Relation]:
        from shared.migrate.schema.build import table_key

        cursor = self._cursor()
        cursor.execute(RELATIONS_SQL)
        rows = cursor.fetchall()
        cursor.close()
        return {
            oid: _Relation(table_key(schema, name), kind, filenode, table, scans)
            for oid, schema, name, kind, filenode, table, scans in rows
        }

    def _locks(self) -> set[tuple[int, str]]:
        """Every (relation, mode) the transaction holds: a weaker mode taken after a stronger
        one is a row of its own in pg_locks, so each statement's own locks show."""
        cursor = self._cursor()
        cursor.execute(LOCKS_SQL)
        rows = cursor.fetchall()
        cursor.close()
        return {(oid, MODES[mode]) for oid, mode in rows if mode in MODES}


def _strongest(pairs: Iterable[tuple[int, str]]) -> dict[int, str]:
    strongest: dict[int, str] = {}
    for oid, mode in pairs:
        if STRENGTH[mode] > STRENGTH.get(strongest.get(oid, ""), -1):
            strongest[oid] = mode
    return strongest


def _autocommit(conn: Connection) -> bool:
    raw = conn.connection.dbapi_connection
    return bool(getattr(raw, "autocommit", False))


def measure(
    server: DatabaseURL, graph: RevisionGraph, revisions: set[str], command: str
) -> Measurement:
    """Apply `revisions` (and whatever they need) on a shadow database, measuring each
    statement their files emit."""
    from shared.migrate.database.session import run_async
    from shared.migrate.schema.build import on_shadow

    below = graph.ancestors(revisions) - graph.descendants(revisions)

    def then(conn: Connection, built: Any) -> Measurement:
        return _run(conn, graph, below, revisions)

    async def main() -> Measurement:
        return await on_shadow(server, graph, graph.maximal(below), command, then)

    return run_async(main)


def _run(
    conn: Connection, graph: RevisionGraph, below: set[str], revisions: set[str]
) -> Measurement:
    from shared.migrate.database.executor import Executor, RevisionFailed
    from shared.migrate.history.plans import upgrade_plan

    executor = Executor.online(conn, graph, graph.maximal(below))
    observer = _Observer(conn, graph)
    failed: dict[str, str] = {}
    with observer.listening(), executor.contexts():
        for step in upgrade_plan(graph, below, revisions):
            observer.start(step.revision if step.revision in revisions else None)
            try:
                executor.step(step)
            except RevisionFailed as exc:
                failed[step.revision] = exc.reason
                break  # what builds on it cannot be applied
    return Measurement(tuple(observer.samples), failed)
