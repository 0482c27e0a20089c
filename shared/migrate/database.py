"""Reading where a database stands: the version table's rows, never creating anything."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection


def table_exists(conn: Connection, table: str) -> bool:
    return bool(conn.scalar(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": f'"{table}"'}))


def version_rows(conn: Connection, table: str) -> tuple[str, ...]:
    """The revisions in the version table (empty when the table does not exist yet)."""
    if not table_exists(conn, table):
        return ()
    rows = conn.execute(text(f'SELECT version_num FROM "{table}" ORDER BY version_num'))
    return tuple(row[0] for row in rows)


def public_tables(conn: Connection) -> set[str]:
    rows = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
    return {row[0] for row in rows}
