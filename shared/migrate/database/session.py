"""One database session per command: it takes the migration lock and does the work, so losing
the lock means losing the work (the revision in progress can no longer commit).

The session reads state over asyncpg directly (a no-op `up` needs nothing more); only when
revisions run does SQLAlchemy wrap the very same connection for Alembic's operations.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from shared.db.connect import connect, engine_over
from shared.db.url import DatabaseURL
from shared.migrate.database.holders import BLOCKING, LOCK_HOLDER, Holder, holders
from shared.migrate.database.translate import database_errors, is_lost_connection, lost_connection
from shared.migrate.errors import CANCELLING, Interrupted, LockTimeout, Terminated
from shared.migrate.manifest import Settings, pg_duration

if TYPE_CHECKING:
    import asyncpg
    from sqlalchemy.engine import Connection
    from sqlalchemy.ext.asyncio import AsyncConnection

T = TypeVar("T")
LOCK_CLASS = 0x6D696772  # "migr": the first half of the advisory lock key
POLL_SECONDS = 0.2
TELL_EVERY = 1.0  # seconds between reports while waiting for the lock

# Managed servers set idle and keepalive timeouts per role or database; a healthy migration
# must never be cut by them, and a server must notice a migrating client that died. Set after
# connecting, only those the server has (shared.db.connect).
KEEP_ALIVE = {
    "idle_session_timeout": "0",
    "idle_in_transaction_session_timeout": "0",
    "transaction_timeout": "0",
    "client_connection_check_interval": "2s",
    "tcp_keepalives_idle": "60",
    "tcp_keepalives_interval": "10",
    "tcp_keepalives_count": "6",
}


@dataclass
class Watch:
    """Shared between the executor (which says when a revision starts and stops) and the
    watcher (which records who blocks it, from a second connection, only when it waits)."""

    threshold: float = 1.0
    running_since: float | None = None
    blockers: list[Holder] = field(default_factory=list)

    def start(self) -> None:
        self.blockers = []
        self.running_since = time.monotonic()

    def stop(self) -> None:
        self.running_since = None


def session_settings(
    lock_timeout: float, statement_timeout: float, settings: dict[str, str] | None = None
) -> dict[str, str]:
    return {
        **KEEP_ALIVE,
        "lock_timeout": pg_duration(lock_timeout),
        "statement_timeout": pg_duration(statement_timeout),
        **(settings or {}),
    }


class Session:
    def __init__(self, url: DatabaseURL, conn: asyncpg.Connection, command: str) -> None:
        self.url = url
        self.conn = conn
        self.command = command
        self.watch = Watch()
        self._engine: Any = None
        self._pid: int | None = None

    async def backend_pid(self) -> int:
        """This session's server process, asked of the server: behind PgBouncer, asyncpg's
        get_server_pid() is the pooler's own number for the client."""
        if self._pid is None:
            self._pid = int(await self.conn.fetchval("SELECT pg_backend_pid()"))
        return self._pid

    async def lock(
        self,
        settings: Settings,
        wait: float,
        on_wait: Callable[[Holder | None, float], None] | None = None,
    ) -> None:
        """Take the migration lock (a session advisory lock), polling up to `wait` seconds."""
        try:
            await self._poll_lock(lock_key(settings.lock_name), wait, on_wait)
        except Exception as exc:
            if not is_lost_connection(exc):
                raise
            raise lost_connection(
                self.url,
                exc,
                "nothing was changed; run the command again",
                "while waiting for the migration lock",
            ) from exc

    async def _poll_lock(
        self, key: int, wait: float, on_wait: Callable[[Holder | None, float], None] | None
    ) -> None:
        started = time.monotonic()
        told = started
        while True:
            if await self.conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", LOCK_CLASS, key):
                return
            now = time.monotonic()
            if now - started >= wait:
                holder = await self.lock_holder(key)
                raise LockTimeout(
                    "another migration holds the lock ("
                    + (holder.describe() if holder else "holder unknown")
                    + f"); waited {wait:g}s and changed nothing; let it finish, or wait longer "
                    "with --lock-wait"
                )
            if on_wait is not None and now - told >= TELL_EVERY:
                told = now
                on_wait(await self.lock_holder(key), now - started)
            await asyncio.sleep(min(POLL_SECONDS, max(0.0, wait - (now - started))))

    async def lock_holder(self, key: int) -> Holder | None:
        """Who holds the migration lock, in this database only."""
        found = await holders(self.conn, LOCK_HOLDER, LOCK_CLASS, key & 0xFFFFFFFF)
        return found[0] if found else None

    async def run_sync(self, fn: Callable[[Connection], T]) -> T:
        """Call `fn` with a SQLAlchemy Connection over this very session."""
        async with self.sqlalchemy() as sa_conn:
            result: T = await sa_conn.run_sync(fn)
            return result

    @contextlib.asynccontextmanager
    async def sqlalchemy(self) -> AsyncIterator[AsyncConnection]:
        """A SQLAlchemy AsyncConnection over this very session (for Alembic's operations),
        watched for whoever blocks a revision while it is open."""
        if self._engine is None:
            conn = self.conn

            async def same() -> Any:
                return conn

            self._engine = engine_over(same)
        pid = await self.backend_pid()
        watcher = asyncio.get_running_loop().create_task(self._watch(pid))
        try:
            async with self._engine.connect() as sa_conn:
                yield sa_conn
        finally:
            watcher.cancel()

    async def _watch(self, pid: int) -> None:
        """While a revision runs longer than the threshold, note who blocks it (process `pid`),
        from a monitor session of its own; a monitor that is lost (terminated, say) is opened
        again, so a live blocker is never taken for gone."""
        monitor: asyncpg.Connection | None = None
        try:
            while True:
                await asyncio.sleep(0.05)
                since = self.watch.running_since
                if since is None or time.monotonic() - since < self.watch.threshold:
                    continue
                try:
                    if monitor is None:
                        monitor = await connect(
                            self.url,
                            application_name=f"migrate {self.command} (monitor)",
                            settings=KEEP_ALIVE,
                        )
                    found = await holders(monitor, BLOCKING, pid)
                except asyncio.CancelledError:
                    raise
                except Exception:  # a lost monitor: try again with a new one, a little later
                    if monitor is not None:
                        monitor.terminate()
                    monitor = None
                    await asyncio.sleep(0.5)
                    continue
                if found and self.watch.running_since is not None:
                    self.watch.blockers = found
                await asyncio.sleep(0.2)
        finally:
            if monitor is not None and not monitor.is_closed():
                try:
                    await monitor.close(timeout=2)
                except Exception:
                    monitor.terminate()


def lock_key(name: str) -> int:
    """A signed 32-bit key for the lock name (the version table: one lock per history)."""
    value = zlib.crc32(name.encode())
    return value - (1 << 32) if value >= (1 << 31) else value


async def with_session(
    url: DatabaseURL,
    command: str,
    work: Callable[[Session], Awaitable[T]],
    settings: dict[str, str] | None = None,
) -> T:
    """Open the session (named `migrate <command>` in pg_stat_activity), run `work`, close."""
    with database_errors(url):
        conn = await connect(url, application_name=f"migrate {command}", settings=settings)
    session = Session(url, conn, command)
    try:
        with database_errors(url, connected=True):
            return await work(session)
    finally:
        await _close(session)


async def with_sessions(
    urls: list[DatabaseURL],
    command: str,
    work: Callable[[list[Session]], Awaitable[T]],
    settings: dict[str, str] | None = None,
) -> T:
    """A session on each of `urls`, opened in that order, for `work`; all closed after it.
    (Errors of one session are translated where it is used: see commands/run.py.)"""
    async with contextlib.AsyncExitStack() as stack:
        sessions = []
        for url in urls:
            with database_errors(url):
                conn = await connect(url, application_name=f"migrate {command}", settings=settings)
            session = Session(url, conn, command)
            stack.push_async_callback(_close, session)
            sessions.append(session)
        with database_errors(urls[0], connected=True):
            return await work(sessions)


async def _close(session: Session) -> None:
    with contextlib.suppress(Exception):
        if session._engine is not None:
            await session._engine.dispose()
        if not session.conn.is_closed():
            await session.conn.close(timeout=5)


def run_session(
    url: DatabaseURL,
    command: str,
    work: Callable[[Session], Awaitable[T]],
    settings: dict[str, str] | None = None,
) -> T:
    return run_async(lambda: with_session(url, command, work, settings))


def run_async(main: Callable[[], Awaitable[T]]) -> T:
    """Run `main` in a new event loop. SIGTERM (a cancelled CI job, a Kubernetes rollout)
    cancels it like SIGINT does, so every `finally` runs: open transactions roll back,
    shadow databases are dropped."""

    previous = signal.getsignal(signal.SIGTERM)  # restored after: asyncio resets it to default

    async def guarded() -> T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        received: list[signal.Signals] = []

        def on_signal(number: signal.Signals) -> None:
            received.append(number)
            task.cancel()

        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            for number in CANCELLING:  # only in the main thread
                loop.add_signal_handler(number, on_signal, number)
        try:
            return await main()
        except asyncio.CancelledError as exc:
            if received:  # what the work left behind, when it says (see runner.py)
                said = exc.args[0] if exc.args and isinstance(exc.args[0], str) else None
                said = said or "nothing was changed in the database"
                if received[0] == signal.SIGINT:
                    raise Interrupted(f"interrupted (Ctrl-C); {said}") from None
                raise Terminated(f"terminated (SIGTERM); {said}") from None
            raise
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                for number in CANCELLING:  # SIGINT: back to KeyboardInterrupt
                    loop.remove_signal_handler(number)
                signal.signal(signal.SIGTERM, previous)

    return asyncio.run(guarded())
