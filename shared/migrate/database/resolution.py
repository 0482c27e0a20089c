"""`migrate resolve`: the way out after a mistake (Flyway's repair, Prisma's migrate resolve).

Each resolution is one transaction under the migration lock: the version table is set to what
is now true, and the log records who, when and why. No revision file runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.migrate.database import recorder
from shared.migrate.database.state import DatabaseState
from shared.migrate.errors import RevisionError
from shared.migrate.history.graph import RevisionGraph

if TYPE_CHECKING:
    from shared.migrate.database.session import Session


async def apply_resolution(
    session: Session,
    graph: RevisionGraph,
    db: DatabaseState,
    action: str,
    revision: str,
    reason: str,
) -> tuple[str, ...]:
    """Record `action` (accept, applied, rolled back) for `revision`; the revisions touched."""
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
    settings = graph.manifest.settings
    vt, lt = settings.qualified(settings.version_table), settings.qualified(settings.log_table)
    rows, wanted = set(db.known_rows(graph)), graph.maximal(after)
    host, os_user = recorder.who()
    conn = session.conn
    async with conn.transaction():
        await recorder.ensure_tables(conn, settings, db)
        await conn.execute(
            f"DELETE FROM {vt} WHERE version_num = ANY($1::text[])", sorted(rows - wanted)
        )
        await conn.execute(
            f"INSERT INTO {vt} (version_num) SELECT unnest($1::text[])", sorted(wanted - rows)
        )
        await conn.executemany(
            f"INSERT INTO {lt} (module, revision, direction, checksum, duration_ms, host, "
            "os_user, action, reason) VALUES ($1, $2, $3, $4, 0, $5, $6, $7, $8)",
            [
                (
                    graph.revisions[r].module,
                    r,
                    direction,
                    graph.revisions[r].checksum,
                    host,
                    os_user,
                    "accept" if action == "accept" else "resolve",
                    reason,
                )
                for r in marked
            ],
        )
    return tuple(marked)
