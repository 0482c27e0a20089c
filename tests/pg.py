"""Test helpers that talk to PostgreSQL directly (asyncpg), to read the catalog."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from sqlalchemy.engine import URL, make_url


def _connect_args(url: str | URL) -> dict[str, Any]:
    parsed = make_url(url) if isinstance(url, str) else url
    args: dict[str, Any] = {
        "user": parsed.username,
        "password": parsed.password,
        "database": parsed.database,
        "host": parsed.query.get("host", parsed.host),
        "port": int(parsed.query.get("port", parsed.port or 5432)),
    }
    return {k: v for k, v in args.items() if v is not None}


def fetch(url: str | URL, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    async def run() -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(**_connect_args(url))
        try:
            return [tuple(r) for r in await conn.fetch(sql, *params)]
        finally:
            await conn.close()

    return asyncio.run(run())


def execute(url: str | URL, sql: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(**_connect_args(url))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def tables(url: str) -> set[str]:
    return {r[0] for r in fetch(url, "SELECT tablename FROM pg_tables WHERE schemaname='public'")}


def columns(url: str, table: str) -> set[str]:
    rows = fetch(
        url,
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema='public' AND table_name=$1",
        table,
    )
    return {r[0] for r in rows}


def constraints(url: str, table: str) -> dict[str, str]:
    rows = fetch(
        url,
        "SELECT conname, contype::text FROM pg_constraint WHERE conrelid = to_regclass($1)",
        table,
    )
    return {r[0]: r[1] for r in rows}


def enum_types(url: str) -> set[str]:
    return {r[0] for r in fetch(url, "SELECT typname FROM pg_type WHERE typtype = 'e'")}


BOOKKEEPING = {"alembic_version", "migrate_log"}  # the version table and the tool's log


def version_rows(url: str, table: str = "alembic_version") -> set[str]:
    if not fetch(url, "SELECT to_regclass($1)", table)[0][0]:
        return set()
    return {r[0] for r in fetch(url, f"SELECT version_num FROM {table}")}


SNAPSHOT = """
SELECT 'schema', nspname, '' FROM pg_namespace
WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'
UNION ALL
SELECT 'column', table_schema || '.' || table_name || '.' || column_name,
       concat_ws(' ', udt_schema || '.' || udt_name, character_maximum_length,
                 numeric_precision, numeric_scale, is_nullable, column_default,
                 is_generated, generation_expression)
FROM information_schema.columns
WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
  AND table_name NOT IN ('alembic_version', 'migrate_log')
UNION ALL
SELECT 'constraint', conrelid::regclass::text || '.' || conname, pg_get_constraintdef(oid)
FROM pg_constraint WHERE connamespace::regnamespace::text NOT LIKE 'pg\\_%'
  AND connamespace::regnamespace::text <> 'information_schema'
  AND conrelid::regclass::text NOT IN ('alembic_version', 'migrate_log')
UNION ALL
SELECT 'index', schemaname || '.' || indexname, indexdef FROM pg_indexes
WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
  AND tablename NOT IN ('alembic_version', 'migrate_log')
UNION ALL
SELECT 'type', typnamespace::regnamespace::text || '.' || typname,
       typtype::text || coalesce((SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder)
                                  FROM pg_enum WHERE enumtypid = t.oid), '')
FROM pg_type t WHERE typtype IN ('e', 'd')
  AND typnamespace::regnamespace::text NOT IN ('pg_catalog', 'information_schema')
UNION ALL
SELECT 'sequence', schemaname || '.' || sequencename, '' FROM pg_sequences
WHERE sequencename <> 'migrate_log_id_seq'
"""


def schema_snapshot(url: str) -> set[tuple[str, str, str]]:
    """Every schema object a migration can leave behind, by name and definition (the test
    suite's own referee, independent of the tool's catalog code)."""
    return {(str(k), str(n), str(d)) for k, n, d in fetch(url, SNAPSHOT)}


def shadows(url: str, pid: int | None = None) -> list[str]:
    """Shadow databases on the server (of one `migrate` process, by its pid)."""
    pattern = f"migrate\\_shadow\\_{pid}\\_%" if pid else "migrate\\_shadow\\_%"
    return [
        r[0] for r in fetch(url, "SELECT datname FROM pg_database WHERE datname LIKE $1", pattern)
    ]
