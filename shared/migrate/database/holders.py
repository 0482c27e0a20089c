"""The other sessions a migration meets: who holds the migration lock, and who blocks a
revision's statement. One query names them, from `pg_stat_activity` and `pg_locks`.

Their SQL is never quoted (an application's query may hold a secret or personal data, and these
lines land in CI logs): only its kind, the first keyword, read by PostgreSQL's own scanner, and
the tables the session holds locks on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.migrate.errors import shown

if TYPE_CHECKING:
    import asyncpg

TABLES_SHOWN = 5

# how long a session has been in its state: its query (active), its transaction (idle in
# transaction), or since it went idle; never the connection's age
_QUERY = (
    "SELECT a.pid, coalesce(a.application_name, ''), coalesce(host(a.client_addr), 'local'), "
    "coalesce(a.state, ''), left(coalesce(a.query, ''), 2000), "
    "greatest(0, extract(epoch FROM clock_timestamp() - CASE WHEN a.state = 'active' "
    "THEN a.query_start "
    "WHEN a.state = 'idle' THEN a.state_change "
    "ELSE coalesce(a.xact_start, a.state_change, a.backend_start) END))::float8, "
    "ARRAY(SELECT DISTINCT c.oid::regclass::text FROM pg_locks t "
    "JOIN pg_class c ON c.oid = t.relation WHERE t.pid = a.pid AND t.granted "
    "AND t.locktype = 'relation' AND c.relkind IN ('r', 'p', 'm', 'v', 'f') "
    "AND c.relnamespace <> 'pg_catalog'::regnamespace "
    "AND t.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "ORDER BY 1) "
    "FROM pg_stat_activity a WHERE {where} ORDER BY a.pid"
)
# the session holding an advisory lock (class, key) in this database
LOCK_HOLDER = (
    "a.pid IN (SELECT l.pid FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted "
    "AND l.objsubid = 2 AND l.classid = $1::bigint::oid AND l.objid = $2::bigint::oid "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()))"
)
# the sessions a backend waits on
BLOCKING = "a.pid = ANY(pg_blocking_pids($1))"


@dataclass(frozen=True)
class Holder:
    """A session of this database holding the migration lock, or blocking a statement."""

    pid: int
    application: str
    client: str
    state: str  # active, idle, idle in transaction, ...; "" when another role's (hidden)
    statement: str  # the first keyword of its query (SELECT, UPDATE, ...), "" if none
    seconds: float | None  # in that state (its query, its transaction, idle); None: hidden
    tables: tuple[str, ...] = ()  # the tables (views) of this database it holds locks on

    def describe(self) -> str:
        what = f"pid {self.pid}, application '{shown(self.application or '-')}'"
        if self.client and self.client != "local":
            what += f", from {self.client}"
        kind = self.statement or "a statement"
        if self.state == "active":
            doing = f"running {kind}"
        elif self.state == "idle":
            doing = "idle"
        elif not self.state:  # another role's session: PostgreSQL hides what it does
            doing = "of another role (what it runs is hidden from this one)"
        else:  # idle in transaction (aborted), fastpath, disabled
            doing = shown(self.state) + (f" after {kind}" if self.statement else "")
        what += f", {doing}" + (f" for {self.seconds:.0f}s" if self.seconds is not None else "")
        if self.tables:
            names = ", ".join(shown(t, 80) for t in self.tables[:TABLES_SHOWN])
            more = len(self.tables) - TABLES_SHOWN
            what += f", holding locks on {names}" + (f" and {more} more" if more > 0 else "")
        return what


async def holders(conn: asyncpg.Connection, where: str, *args: object) -> list[Holder]:
    """The sessions `where` selects (LOCK_HOLDER or BLOCKING, with their arguments)."""
    rows = await conn.fetch(_QUERY.format(where=where), *args)
    return [
        Holder(pid, app, client, state, statement_kind(query), seconds, tuple(tables))
        for pid, app, client, state, query, seconds, tables in rows
    ]


def statement_kind(query: str) -> str:
    """The first keyword of `query` (WITH, SELECT, UPDATE, ...), read by PostgreSQL's scanner,
    so a comment or a parenthesis before it changes nothing; "" when there is none."""
    if not query.strip():
        return ""
    from pglast.parser import scan

    try:
        tokens = scan(query)
    except Exception:  # the scanner refused the text: say nothing of it
        return ""
    for token in tokens:
        if token.kind.endswith("_KEYWORD"):
            return query[token.start : token.end + 1].upper()
        if token.name not in ("C_COMMENT", "SQL_COMMENT", "ASCII_40"):  # ( opens a statement
            return ""
    return ""
