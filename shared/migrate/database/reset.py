"""`migrate reset`: a development database emptied, as a new one is (Prisma's `migrate reset`,
Django's `flush` and `migrate`). Every schema but the system's is dropped with all it holds, and
`public` is made again as the server makes it in a new database."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.db.url import DatabaseURL

if TYPE_CHECKING:
    import asyncpg

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")

_SCHEMAS = (
    "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' "
    "AND nspname <> 'information_schema' ORDER BY nspname"
)


def is_local(url: DatabaseURL) -> bool:
    """Whether every host of `url` is this machine (a socket directory, or a loopback name)."""
    return all(host.startswith("/") or host in LOCAL_HOSTS for host, _ in url.hosts)


async def empty(conn: asyncpg.Connection) -> list[str]:
    """Drop every schema of the database (and so everything in them), make `public` again as
    this server version makes it; the schemas dropped."""
    async with conn.transaction():
        schemas = [name for (name,) in await conn.fetch(_SCHEMAS)]
        for name in schemas:
            quoted = name.replace('"', '""')
            await conn.execute(f'DROP SCHEMA "{quoted}" CASCADE')
        if "public" in schemas:
            await conn.execute(await _public(conn))
    return schemas


async def _public(conn: asyncpg.Connection) -> str:
    version = int(await conn.fetchval("SELECT current_setting('server_version_num')"))
    if version >= 150000:  # owned by the database's owner; only USAGE for everyone
        return (
            "CREATE SCHEMA public AUTHORIZATION pg_database_owner; "
            "GRANT USAGE ON SCHEMA public TO PUBLIC; "
            "COMMENT ON SCHEMA public IS 'standard public schema'"
        )
    return (
        "CREATE SCHEMA public; GRANT ALL ON SCHEMA public TO PUBLIC; "
        "COMMENT ON SCHEMA public IS 'standard public schema'"
    )
