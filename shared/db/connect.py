"""Opening connections: asyncpg directly, and a SQLAlchemy async engine over the same URL.

Every connection of the tool and of plain `alembic` is opened here, so a URL works (or fails
with one clear line) the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from shared.db.url import DatabaseURL

if TYPE_CHECKING:
    import asyncpg
    from sqlalchemy.ext.asyncio import AsyncEngine

CONNECT_TIMEOUT = 10.0

# The settings the server has, set for the session in one round trip (simple query protocol).
# Not at startup: PgBouncer refuses startup parameters beyond a few (application_name,
# client_encoding, ...), and a server refuses those it does not know (PostgreSQL 13 has no
# idle_session_timeout).
SET_KNOWN = (
    "SELECT set_config(s.name, s.value, false) FROM (VALUES {}) AS s(name, value) "
    "WHERE current_setting(s.name, true) IS NOT NULL"
)  # current_setting(..., missing_ok): NULL for a name the server lacks; a tenth of pg_settings


async def connect(
    url: DatabaseURL,
    *,
    application_name: str,
    settings: Mapping[str, str] | None = None,
) -> asyncpg.Connection:
    """One asyncpg connection, `application_name` (and what the URL asks for) sent at startup,
    then those of `settings` the server has set for the session."""
    import asyncpg

    kwargs = url.connect_kwargs({"application_name": application_name[:63]})
    kwargs.setdefault("timeout", CONNECT_TIMEOUT)
    conn = await asyncpg.connect(**kwargs)
    after = {**url.keepalive_settings(), **(settings or {})}
    if after:
        try:
            await conn.execute(SET_KNOWN.format(", ".join(map(_pair, after.items()))))
        except BaseException:
            conn.terminate()
            raise
    return conn


def _pair(setting: tuple[str, str]) -> str:
    """('name', 'value') as SQL, whatever standard_conforming_strings says."""
    quoted = ("E'" + text.replace("\\", "\\\\").replace("'", "''") + "'" for text in setting)
    return "(" + ", ".join(quoted) + ")"


def engine_over(factory: Callable[[], Awaitable[Any]], *, reuse: bool = True) -> AsyncEngine:
    """A SQLAlchemy async engine whose connections come from `factory`. With `reuse`, the one
    connection it made is kept until `dispose()` (the caller's session, used several times)."""
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool, StaticPool

    pool = StaticPool if reuse else NullPool
    return create_async_engine("postgresql+asyncpg://", poolclass=pool, async_creator=factory)


def async_engine(
    url: DatabaseURL, *, application_name: str, settings: Mapping[str, str] | None = None
) -> AsyncEngine:
    """A SQLAlchemy async engine for `url`: each connection is opened by `connect`."""
    return engine_over(
        lambda: connect(url, application_name=application_name, settings=settings), reuse=False
    )
