"""The soak's referee: what the version table, the tool's log, the catalog and the counter
tables say, read in one snapshot, and whether they agree with each other and with the graph
the soak generated (tests/soak_project.py). It reads the database only; no `shared.migrate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from tests.soak_project import Revision, revisions

CATALOG_SQL = """
SELECT c.relname, a.attname, c.oid
FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
  AND a.attnum > 0 AND NOT a.attisdropped
"""
LAST_SQL = (
    "SELECT DISTINCT ON (revision) revision, direction FROM migrate_log "
    "WHERE action = 'run' ORDER BY revision, id DESC"
)
# an entry that repeats the direction before it (an up after an up: applied twice), or a
# history that starts with a down
REPEATS_SQL = """
SELECT id, revision, direction FROM (
  SELECT id, revision, direction,
         lag(direction) OVER (PARTITION BY revision ORDER BY id) AS before
  FROM migrate_log WHERE action = 'run') entries
WHERE direction = before OR (before IS NULL AND direction = 'down')
ORDER BY id
"""


@dataclass(frozen=True)
class Snapshot:
    rows: frozenset[str]  # the version table
    last: dict[str, str]  # revision -> the direction of its last log entry
    columns: frozenset[tuple[str, str]]  # (table, column) of every table in public
    counts: dict[str, int]  # revision -> its rows in its module's counter table

    @property
    def tables(self) -> set[str]:
        return {table for table, _ in self.columns}


class Moved(Exception):
    """A counter table was dropped or made again after the snapshot began: read again."""


async def snapshot(conn: Any) -> Snapshot:
    """Everything the invariants need, as of one moment (a repeatable-read transaction: the
    catalog read through SQL follows the same snapshot as the tables)."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        catalog = await conn.fetch(CATALOG_SQL)
        tables = {r["relname"]: r["oid"] for r in catalog}
        rows, last = frozenset[str](), {}
        if "alembic_version" in tables:
            rows = frozenset(
                r[0] for r in await conn.fetch("SELECT version_num FROM alembic_version")
            )
        if "migrate_log" in tables:
            last = {r[0]: r[1] for r in await conn.fetch(LAST_SQL)}
        counters = sorted(t for t in tables if t.endswith("_counter"))
        counts: dict[str, int] = {}
        if counters:
            union = " UNION ALL ".join(
                f"SELECT revision, count(*) FROM {t} GROUP BY revision" for t in counters
            )
            for revision, count in await conn.fetch(union):
                counts[revision] = counts.get(revision, 0) + count
            now = await conn.fetch(
                "SELECT name, to_regclass(name)::oid FROM unnest($1::text[]) AS name", counters
            )
            if any(oid != tables[name] for name, oid in now):
                raise Moved
    columns = frozenset((r["relname"], r["attname"]) for r in catalog)
    return Snapshot(rows, last, columns, counts)


@cache
def graph() -> dict[str, Revision]:
    return revisions()


@cache
def ancestors(revision: str) -> frozenset[str]:
    """What a revision needs applied before it: its parent and its depends_on, transitively
    (what its row in the version table implies)."""
    info = graph()[revision]
    found: set[str] = set()
    for above in (info.parent, *info.depends_on):
        if above:
            found |= {above, *ancestors(above)}
    return frozenset(found)


def applied(rows: frozenset[str]) -> set[str]:
    found: set[str] = set()
    for row in rows:
        if row in graph():
            found |= {row, *ancestors(row)}
    return found


def marked(revision: Revision, snap: Snapshot) -> bool:
    """Whether the catalog shows the revision's mark: its module's tables, or its column."""
    if revision.column is None:
        return {revision.table, revision.counter} <= snap.tables
    return (revision.table, revision.column) in snap.columns


def disagreements(snap: Snapshot) -> list[tuple[str, str, str]]:
    """(invariant, revision, detail) for each way the snapshot contradicts itself."""
    found: list[tuple[str, str, str]] = []
    for row in sorted(snap.rows):
        if row not in graph():
            found.append(("version table", row, f"row {row} is no revision of the project"))
        elif implied := sorted(r for r in snap.rows if r in graph() and row in ancestors(r)):
            found.append(("version table", row, f"row {row} is implied by row {implied[0]}"))
    done = applied(snap.rows)
    for rev in graph().values():
        state = "applied" if rev.id in done else "not applied"
        if marked(rev, snap) != (rev.id in done):
            mark = f"column {rev.table}.{rev.column}" if rev.column else f"table {rev.table}"
            have = "present" if marked(rev, snap) else "missing"
            found.append(("catalog", rev.id, f"{rev.id} is {state} but its {mark} is {have}"))
        if (snap.last.get(rev.id) == "up") != (rev.id in done):
            last = snap.last.get(rev.id, "no entry")
            found.append(("log", rev.id, f"{rev.id} is {state} but its last log entry is {last}"))
        expected = int(rev.data and rev.id in done)
        if snap.counts.get(rev.id, 0) != expected:
            count = snap.counts.get(rev.id, 0)
            found.append(("counter", rev.id, f"{rev.id} is {state} with {count} counter row(s)"))
    for name in sorted(set(snap.counts) - set(graph())):
        found.append(("counter", name, f"counter rows for {name}, no revision of the project"))
    return found


async def repeats(conn: Any) -> list[tuple[str, str, str]]:
    """(invariant, revision, detail) for each log entry that repeats its revision's previous
    direction: a revision applied twice without a downgrade between (or unapplied twice)."""
    if not await conn.fetchval("SELECT to_regclass('migrate_log') IS NOT NULL"):
        return []
    rows = await conn.fetch(REPEATS_SQL)
    return [
        ("exactly once", rev, f"log entry {id_} is a second '{direction}' in a row for {rev}")
        for id_, rev, direction in rows
    ]
