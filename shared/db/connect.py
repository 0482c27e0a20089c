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


async def connect(
    url: DatabaseURL,
    *,
    application_name: str,
    settings: Mapping[str, str] | None = None,
) -> asyncpg.Connection:
    """One asyncpg connection with `settings` as session parameters (sent at startup)."""
    import asyncpg

    kwargs = url.connect_kwargs({"application_name": application_name[:63], **(settings or {})})
    kwargs.setdefault("timeout", CONNECT_TIMEOUT)
    return await asyncpg.connect(**kwargs)


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
