"""A throwaway database on the same server, created for one `create`, `check` or `owners` and
always dropped after it, even when the command is interrupted or terminated.

Its name is `migrate_shadow_<pid>_<random>`, and an "owner" session named after it stays
connected to the server while it is in use. A shadow whose owner is gone (the process was
killed) is dropped by the next command that makes one.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from shared.db.connect import connect
from shared.db.url import DatabaseURL
from shared.migrate.errors import DatabaseError
from shared.migrate.session import KEEP_ALIVE
from shared.migrate.translate import database_errors

T = TypeVar("T")
PREFIX = "migrate_shadow_"
OWNER = "migrate shadow "  # + the database's name: the application name of its owner session


async def in_shadow(server: DatabaseURL, work: Callable[[DatabaseURL], Awaitable[T]]) -> T:
    """Create a shadow database on `server`, call `work` with its URL, drop it."""
    import asyncpg

    name = f"{PREFIX}{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with database_errors(server):
        owner = await connect(server, application_name=OWNER + name, settings=KEEP_ALIVE)
    try:
        with database_errors(server):
            await _sweep(owner)
            try:
                await owner.execute(f'CREATE DATABASE "{name}"')
            except asyncpg.InsufficientPrivilegeError as exc:
                raise DatabaseError(
                    f"cannot create a shadow database on {server.display()}: the role may "
                    "not create databases; grant it CREATEDB, or point --shadow-url (or "
                    "$SHADOW_DATABASE_URL) at a server where it may"
                ) from exc
        try:
            return await work(server.with_database(name))
        finally:
            with database_errors(server):
                await asyncio.shield(
                    owner.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                )
    finally:
        await owner.close(timeout=5)


async def _sweep(owner: object) -> None:
    """Drop shadow databases left by processes that died (no owner session), where allowed."""
    import asyncpg

    assert isinstance(owner, asyncpg.Connection)
    orphans = await owner.fetch(
        "SELECT d.datname FROM pg_database d "
        "WHERE d.datname LIKE 'migrate\\_shadow\\_%' AND pg_has_role(d.datdba, 'USAGE') "
        "AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a "
        f"WHERE a.application_name = '{OWNER}' || d.datname)"
    )
    for (name,) in orphans:
        try:
            await owner.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except asyncpg.PostgresError:
            continue  # someone else's, or already gone
