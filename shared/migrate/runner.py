"""Connections: one async engine per run, the migration lock, the application name.

Alembic's commands are synchronous; they run inside `AsyncConnection.run_sync`, and the live
connection reaches env.py through `config.attributes["connection"]`.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from shared.migrate.errors import LockTimeout
from shared.migrate.translate import database_errors

T = TypeVar("T")
LOCK_CLASS = 0x6D696772  # "migr": the first half of the advisory lock key
POLL_SECONDS = 0.1
CONNECT_TIMEOUT = 10


def run_with_connection(
    url: URL,
    fn: Callable[[Connection], T],
    *,
    command: str,
    lock: str | None = None,
    lock_wait: float = 0.0,
) -> T:
    """Open a connection, take the migration lock named `lock` if given, and call `fn` with it."""
    return asyncio.run(_run(url, fn, command, lock, lock_wait))


async def _run(
    url: URL, fn: Callable[[Connection], T], command: str, lock: str | None, lock_wait: float
) -> T:
    engine = create_async_engine(
        url,
        poolclass=NullPool,
        connect_args={
            "timeout": CONNECT_TIMEOUT,
            "server_settings": {"application_name": f"migrate {command}"[:63]},
        },
    )
    try:
        with database_errors(url):
            if lock is None:
                async with engine.connect() as conn:
                    return await conn.run_sync(fn)
            async with engine.connect() as lock_conn:
                # autocommit: the lock holder must keep no transaction or snapshot open
                lock_conn = await lock_conn.execution_options(isolation_level="AUTOCOMMIT")
                key = _lock_key(lock)
                await _acquire(lock_conn, key, lock_wait)
                try:
                    async with engine.connect() as conn:
                        return await conn.run_sync(fn)
                finally:
                    await lock_conn.execute(
                        text("SELECT pg_advisory_unlock(:a, :b)"), {"a": LOCK_CLASS, "b": key}
                    )
    finally:
        await engine.dispose()


def _lock_key(name: str) -> int:
    """A signed 32-bit key for the lock name (the version table: one lock per history)."""
    value = zlib.crc32(name.encode())
    return value - (1 << 32) if value >= (1 << 31) else value


async def _acquire(conn: AsyncConnection, key: int, wait: float) -> None:
    deadline = time.monotonic() + wait
    params = {"a": LOCK_CLASS, "b": key}
    while True:
        taken = await conn.scalar(text("SELECT pg_try_advisory_lock(:a, :b)"), params)
        if taken:
            return
        if time.monotonic() >= deadline:
            holder = (
                await conn.execute(
                    text(
                        "SELECT a.pid, a.application_name FROM pg_locks l "
                        "JOIN pg_stat_activity a ON a.pid = l.pid "
                        "WHERE l.locktype = 'advisory' AND l.granted "
                        "AND CAST(l.classid AS bigint) = :a AND CAST(l.objid AS bigint) = :b"
                    ).bindparams(a=LOCK_CLASS, b=key & 0xFFFFFFFF)
                )
            ).first()
            who = f"pid {holder[0]} ({holder[1] or 'no application name'})" if holder else "?"
            raise LockTimeout(
                f"another migration holds the lock ({who}); waited {wait:g}s. "
                "Let it finish, or wait longer with --lock-wait SECONDS"
            )
        await asyncio.sleep(POLL_SECONDS)
