"""A throwaway database on the same server, created for one diff and always dropped after it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from shared.db.url import where
from shared.migrate.errors import DatabaseError
from shared.migrate.translate import database_errors, server_message


@contextmanager
def shadow_database(server: URL) -> Iterator[URL]:
    """Create `migrate_shadow_<random>` next to `server`'s database; drop it when done."""
    name = f"migrate_shadow_{uuid.uuid4().hex[:12]}"
    _admin(server, f'CREATE DATABASE "{name}"', creating=True)
    try:
        yield server.set(database=name)
    finally:
        _admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', creating=False)


def _admin(server: URL, statement: str, *, creating: bool) -> None:
    async def run() -> None:
        engine = create_async_engine(
            server,
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",
            connect_args={"server_settings": {"application_name": "migrate shadow"}},
        )
        try:
            async with engine.connect() as conn:
                await conn.execute(text(statement))
        finally:
            await engine.dispose()

    try:
        with database_errors(server):
            asyncio.run(run())
    except DatabaseError as exc:
        if (
            creating
            and exc.__cause__ is not None
            and "permission denied" in server_message(exc.__cause__)
        ):
            raise DatabaseError(
                f"cannot create a shadow database on {where(server)} (permission denied); "
                "grant CREATEDB to the role or pass --shadow-url for a server where it can"
            ) from exc
        raise
