"""Database URLs: where one comes from, how it is driven (asyncpg), how it is shown (masked)."""

from __future__ import annotations

import os

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres:postgres@postgres:5432/postgres"
ASYNC_DRIVER = "postgresql+asyncpg"


class InvalidDatabaseURL(ValueError):
    """The URL cannot be parsed or is not a PostgreSQL URL; the message never holds the URL."""


def resolve_url(explicit: str | None, env_var: str = "DATABASE_URL") -> str:
    """The URL from `--database-url`, else the environment variable, else the seed's default."""
    return explicit or os.environ.get(env_var) or DEFAULT_DATABASE_URL


def to_async_url(raw: str) -> URL:
    """Parse a URL and drive it through asyncpg, whatever PostgreSQL driver it names."""
    try:
        url = make_url(raw)
    except ArgumentError:
        raise InvalidDatabaseURL(
            "the database URL cannot be parsed; expected postgresql://user:password@host:port/db"
        ) from None
    if url.get_backend_name() not in ("postgresql", "postgres"):
        raise InvalidDatabaseURL(
            f"the database URL uses '{url.get_backend_name()}', only postgresql is supported"
        )
    return url.set(drivername=ASYNC_DRIVER)


def masked(url: URL | str) -> str:
    """A URL fit to print: the password replaced by ***."""
    if isinstance(url, str):
        try:
            url = make_url(url)
        except ArgumentError:
            return "<unparseable URL>"
    return url.render_as_string(hide_password=True)


def where(url: URL) -> str:
    """host:port/database of a URL, for messages (a socket directory counts as host)."""
    host = url.host or str(url.query.get("host", "localhost"))
    return f"{host}:{url.port or 5432}/{url.database or ''}"
