"""Test helpers that talk to PostgreSQL directly (asyncpg), to read the catalog."""

from __future__ import annotations

import asyncio
import uuid
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


def shown(url: str) -> str:
    """How the tool names a database in its output: host:port/name (a socket directory counts
    as the host), never a password."""
    from shared.db.url import DatabaseURL

    return DatabaseURL.parse(url).display()


def fetch(url: str | URL, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    async def run() -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(**_connect_args(url))
        try:
            return [tuple(r) for r in await conn.fetch(sql, *params)]
        finally:
            await conn.close()

    return asyncio.run(run())


def server_version(url: str | URL) -> str:
    [(text,)] = fetch(url, "SHOW server_version")
    return str(text).split()[0]


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


# ---- databases for tests ---------------------------------------------------------------------

# What tells a used database from a new one, once its schemas are gone: the catalogs' sizes,
# the schemas with their owners and privileges, and the database's own settings.
FINGERPRINT_SQL = """
SELECT concat_ws(' | ',
  (SELECT string_agg(nspname || ':' || nspowner::regrole || ':' || coalesce(nspacl::text, ''),
                     ',' ORDER BY nspname)
     FROM pg_namespace  -- a session's temporary schemas outlive it
     WHERE nspname NOT LIKE 'pg\\_temp\\_%' AND nspname NOT LIKE 'pg\\_toast\\_temp\\_%'),
  concat_ws(',', (SELECT count(*) FROM pg_class), (SELECT count(*) FROM pg_type),
    (SELECT count(*) FROM pg_proc), (SELECT count(*) FROM pg_operator),
    (SELECT count(*) FROM pg_cast), (SELECT count(*) FROM pg_collation),
    (SELECT count(*) FROM pg_conversion), (SELECT count(*) FROM pg_ts_config),
    (SELECT count(*) FROM pg_ts_dict), (SELECT count(*) FROM pg_default_acl),
    (SELECT count(*) FROM pg_foreign_data_wrapper), (SELECT count(*) FROM pg_foreign_server),
    (SELECT count(*) FROM pg_event_trigger), (SELECT count(*) FROM pg_publication),
    (SELECT count(*) FROM pg_largeobject_metadata), (SELECT count(*) FROM pg_language),
    (SELECT count(*) FROM pg_extension), (SELECT count(*) FROM pg_opclass),
    (SELECT count(*) FROM pg_am), (SELECT count(*) FROM pg_statistic_ext),
    (SELECT count(*) FROM pg_policy),
    -- the public schema made again has no initial privileges on record (pg_dump's concern)
    (SELECT count(*) FROM pg_init_privs
      WHERE NOT (classoid = 'pg_namespace'::regclass AND objoid = 'public'::regnamespace))),
  (SELECT concat_ws(',', datconnlimit, datallowconn, datistemplate, coalesce(datacl::text, ''),
                    (SELECT count(*) FROM pg_db_role_setting WHERE setdatabase = d.oid))
     FROM pg_database d WHERE datname = current_database()))
"""

EMPTY_SQL = """
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT evtname FROM pg_event_trigger LOOP
    EXECUTE format('DROP EVENT TRIGGER %I', r.evtname);
  END LOOP;
  FOR r IN SELECT nspname FROM pg_namespace
           WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema' LOOP
    EXECUTE format('DROP SCHEMA %I CASCADE', r.nspname);
  END LOOP;
END $$;
CREATE SCHEMA public AUTHORIZATION pg_database_owner;
GRANT USAGE ON SCHEMA public TO PUBLIC;
COMMENT ON SCHEMA public IS 'standard public schema';
"""


class DatabasePool:
    """Empty databases for the tests of one process. A database a test is done with is
    emptied and kept only when its fingerprint then equals a new database's; otherwise (or
    on any error) it is dropped."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.free: list[str] = []
        self.new_fingerprint: str | None = None

    def url(self, name: str) -> str:
        return make_url(self.server_url).set(database=name).render_as_string(hide_password=False)

    def take(self) -> str:
        if self.free:
            return self.free.pop()
        name = f"t_{uuid.uuid4().hex[:16]}"
        execute(self.server_url, f'CREATE DATABASE "{name}"')
        if self.new_fingerprint is None:
            self.new_fingerprint = fetch(self.url(name), FINGERPRINT_SQL)[0][0]
        return name

    def give_back(self, name: str) -> None:
        try:
            kept = self._empty(name)
        except Exception:
            kept = False
        if kept:
            self.free.append(name)
        else:
            execute(self.server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _empty(self, name: str) -> bool:
        async def run() -> bool:
            server = await asyncpg.connect(**_connect_args(self.server_url))
            try:
                await server.execute(f'ALTER DATABASE "{name}" RESET ALL')
                for _ in range(200):  # sessions the test left behind
                    left = await server.fetchval(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = $1 AND pid <> pg_backend_pid()",
                        name,
                    )
                    if not left:
                        break
                    await asyncio.sleep(0.02)
                else:
                    return False
            finally:
                await server.close()
            conn = await asyncpg.connect(**_connect_args(self.url(name)))
            try:
                await conn.execute(EMPTY_SQL)
                return bool(await conn.fetchval(FINGERPRINT_SQL) == self.new_fingerprint)
            finally:
                await conn.close()

        return asyncio.run(run())

    def close(self) -> None:
        for name in self.free:
            execute(self.server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.free.clear()
