"""`migrate resolve`: the way out after a mistake (Flyway's repair, Prisma's migrate resolve).

Each resolution is one transaction under the migration lock: the version table is set to what
is now true, and the log records who, when and why. No revision file runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.migrate.database import recorder
from shared.migrate.database.state import DatabaseState
from shared.migrate.errors import RevisionError, shown
from shared.migrate.history.graph import RevisionGraph

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from shared.migrate.database.session import Session


async def apply_resolution(
    session: Session,
    graph: RevisionGraph,
    db: DatabaseState,
    action: str,
    revision: str,
    reason: str,
) -> tuple[str, ...]:
    """Record `action` (accept, applied, rolled back) for `revision`; the revisions touched.
    A revision the code no longer has can only be rolled back (a discarded experiment)."""
    if revision not in graph.revisions:
        change = _forget(graph, db, revision, reason)
        marked: tuple[str, ...] = (revision,)
    else:
        marked, change = _resolution(graph, db, action, revision, reason)
    settings = graph.manifest.settings
    await recorder.ensure_tables(session.conn, settings, db)

    def write(conn: Connection) -> None:
        with conn.begin():
            recorder.write(conn, settings, change)

    await session.run_sync(write)
    return marked


def _resolution(
    graph: RevisionGraph, db: DatabaseState, action: str, revision: str, reason: str
) -> tuple[tuple[str, ...], recorder.Record]:
    applied = db.applied(graph)
    info = graph.revisions[revision]
    if action == "accept":
        entry = db.log.get(revision)
        if revision not in applied:
            raise RevisionError(f"revision {revision} is not applied; there is nothing to accept")
        if entry is not None and recorder.matches(entry.checksum, info.path, info.checksum):
            raise RevisionError(
                f"revision {revision}'s file matches what was applied; there is nothing to accept"
            )
        marked, direction, after = [revision], "up", applied
    elif action == "applied":
        if revision in applied:
            raise RevisionError(f"revision {revision} is already applied")
        marked = graph.ordered(graph.ancestors({revision}) - applied)
        direction, after = "up", applied | set(marked)
    else:
        if revision not in applied:
            raise RevisionError(f"revision {revision} is not applied; nothing to roll back")
        marked = graph.ordered(graph.descendants({revision}, within=applied), newest_first=True)
        direction, after = "down", applied - set(marked)
    entries = tuple(
        recorder.Entry(
            graph.revisions[r].module,
            r,
            direction,
            graph.revisions[r].checksum,
            action="accept" if action == "accept" else "resolve",
            reason=reason,
        )
        for r in marked
    )
    rows = set(db.known_rows(graph)) | set(db.unknown_rows(graph))
    wanted = graph.maximal(after) | set(db.unknown_rows(graph))
    return tuple(marked), recorder.record(rows, wanted, entries)


def _forget(graph: RevisionGraph, db: DatabaseState, revision: str, reason: str) -> recorder.Record:
    """Roll back, on the record, a revision whose file is gone: its version row goes, and the
    module is where the log says it was below it (what that revision's row implied)."""
    if revision not in db.rows:
        raise RevisionError(
            f"unknown revision '{shown(revision)}': no module's migrations contain it and the "
            "version table does not hold it; `migrate history` lists the revisions"
        )
    logged = db.log.get(revision)
    module = logged.module if logged else "?"
    below = {
        r
        for r, entry in db.log.items()
        if r != revision and entry.direction == "up" and entry.module == module
    }
    known = set(db.known_rows(graph))
    applied = graph.ancestors(known | (below & set(graph.revisions)))
    others = set(db.unknown_rows(graph)) - {revision}
    wanted = graph.maximal(applied) | others | (below - set(graph.revisions))
    entry = recorder.Entry(
        module, revision, "down", logged.checksum if logged else "", action="resolve", reason=reason
    )
    return recorder.record(known | set(db.unknown_rows(graph)), wanted, (entry,))
