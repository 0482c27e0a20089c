"""Connections: one async engine per run, the migration lock, application names, timeouts.

Alembic's commands are synchronous; they run inside `AsyncConnection.run_sync`, and the live
connection reaches env.py through `config.attributes["connection"]`.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.util import await_only

from shared.migrate.errors import DatabaseError, LockTimeout
from shared.migrate.translate import database_errors

T = TypeVar("T")
LOCK_CLASS = 0x6D696772  # "migr": the first half of the advisory lock key
POLL_SECONDS = 0.1
CONNECT_TIMEOUT = 10
_LOCK_CHECK = "migrate_lock_check"


def run_with_connection(
    url: URL,
    fn: Callable[[Connection], T],
    *,
    command: str,
    lock: str | None = None,
    lock_wait: float = 0.0,
    settings: Mapping[str, str] | None = None,
) -> T:
    """Open a connection (with session `settings`), take the migration lock named `lock` if
    given, and call `fn` with the connection."""
    return asyncio.run(_run(url, fn, command, lock, lock_wait, dict(settings or {})))


def check_lock(conn: Connection) -> None:
    """Raise if the migration lock this connection works under has been lost."""
    check = conn.info.get(_LOCK_CHECK)
    if check is not None:
        check()


def _engine(url: URL, application_name: str, settings: dict[str, str]) -> AsyncEngine:
    return create_async_engine(
        url,
        poolclass=NullPool,
        connect_args={
            "timeout": CONNECT_TIMEOUT,
            "server_settings": {"application_name": application_name[:63], **settings},
        },
    )


async def _run(
    url: URL,
    fn: Callable[[Connection], T],
    command: str,
    lock: str | None,
    lock_wait: float,
    settings: dict[str, str],
) -> T:
    engine = _engine(url, f"migrate {command}", settings)
    # the lock's own connection: no timeouts, so they never cut the wait for the lock
    lock_engine = _engine(url, f"migrate {command} (lock)", {})
    try:
        with database_errors(url):
            if lock is None:
                async with engine.connect() as conn:
                    return await conn.run_sync(fn)
            async with lock_engine.connect() as lock_conn:
                # autocommit: the lock holder must keep no transaction or snapshot open
                lock_conn = await lock_conn.execution_options(isolation_level="AUTOCOMMIT")
                key = _lock_key(lock)
                await _acquire(lock_conn, key, lock_wait)
                async with engine.connect() as conn:
                    conn.sync_connection.info[_LOCK_CHECK] = _lock_checker(lock_conn)  # type: ignore[union-attr]
                    result = await conn.run_sync(fn)
                await lock_conn.execute(
                    text("SELECT pg_advisory_unlock(:a, :b)"), {"a": LOCK_CLASS, "b": key}
                )
                return result
    finally:
        await engine.dispose()
        await lock_engine.dispose()


def _lock_checker(lock_conn: AsyncConnection) -> Callable[[], None]:
    def check() -> None:
        try:
            await_only(lock_conn.execute(text("SELECT 1")))
        except Exception as exc:
            raise DatabaseError(
                "lost the connection that holds the migration lock; stopped before the next "
                "revision (the one in progress was rolled back); run the command again"
            ) from exc

    return check


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
            raise LockTimeout(
                f"another migration holds the lock ({await _holder(conn, key)}); waited "
                f"{wait:g}s and changed nothing; let it finish, or wait longer with --lock-wait"
            )
        await asyncio.sleep(POLL_SECONDS)


async def _holder(conn: AsyncConnection, key: int) -> str:
    row: Any = (
        await conn.execute(
            text(
                "SELECT a.pid, a.application_name, a.client_addr FROM pg_locks l "
                "JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted "
                "AND CAST(l.classid AS bigint) = :a AND CAST(l.objid AS bigint) = :b"
            ),
            {"a": LOCK_CLASS, "b": key & 0xFFFFFFFF},
        )
    ).first()
    if row is None:
        return "holder unknown"
    return f"pid {row[0]}, application '{row[1] or '-'}'"
