"""The one place where the driver's, SQLAlchemy's and Alembic's exceptions become the tool's
own errors. Messages name host:port/database, never the password."""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Iterator
from contextlib import contextmanager

from shared.db.url import DatabaseURL, InvalidDatabaseURL
from shared.migrate.errors import ConfigError, DatabaseError, MigrateError, shown

_ASYNCPG_PREFIX = re.compile(r"^\(\S+\) <class '[\w.]+'>: ")


@contextmanager
def database_errors(url: DatabaseURL, *, connected: bool = False) -> Iterator[None]:
    """Connection and server errors as DatabaseError. `connected`: a connection was made, so
    a closed one was lost (ended by the server, an administrator, a pooler), not refused."""
    try:
        yield
    except MigrateError:
        raise
    except InvalidDatabaseURL as exc:
        raise ConfigError(str(exc)) from None
    except Exception as exc:
        if connected and is_lost_connection(exc):
            raise lost_connection(
                url, exc, "whatever ran in its open transaction was rolled back"
            ) from exc
        error = translated(url, exc)
        if error is None:
            raise
        raise error from exc


def translated(url: DatabaseURL, exc: Exception) -> DatabaseError | None:
    """The tool's error for a driver's, SQLAlchemy's or the network's (None: not one of those)."""
    import asyncpg
    from sqlalchemy import exc as sa_exc

    where = url.display()
    if isinstance(exc, BrokenPipeError):  # our stdout's reader went away (| head): not the database
        return None
    if isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError):  # a wrong password too
        return DatabaseError(
            f"the database at {where} refused the login ({server_message(exc)}); "
            f"the user name and password come from {url.source}"
        )
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return DatabaseError(
            f"{server_message(exc)} on {where}; create it or fix the database name in {url.source}"
        )
    if isinstance(exc, asyncpg.ConnectionDoesNotExistError | asyncpg.ConnectionFailureError):
        return lost_connection(url, exc, "whatever ran in the open transaction was rolled back")
    if isinstance(exc, asyncpg.InsufficientPrivilegeError):
        return DatabaseError(
            f"database error at {where}: {server_message(exc)}; the role in "
            f"{url.source} needs SELECT on the version and log tables to read them, and to own "
            "what up and down change"
        )
    if isinstance(exc, sa_exc.StatementError) and isinstance(exc.orig, Exception):
        if is_lost_connection(exc.orig):  # SQLAlchemy's wrapping of a closed connection
            return lost_connection(
                url, exc.orig, "whatever ran in its open transaction was rolled back"
            )
        return translated(url, exc.orig) or DatabaseError(
            f"database error at {where}: {server_message(exc)}"
        )
    if isinstance(exc, asyncpg.PostgresError | sa_exc.DBAPIError):
        return DatabaseError(f"database error at {where}: {server_message(exc)}")
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return DatabaseError(
            f"cannot reach the database at {where}: SSL: {shown(_reason(exc), 120)}; "
            f"check sslmode and the certificates in {url.source}"
        )
    if isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError):
        unreadable = [
            f"{name}={shown(path, 120)}"
            for name in ("sslrootcert", "sslcert", "sslkey", "sslcrl")
            if (path := url.param(name)) and not os.access(path, os.R_OK)
        ]
        if unreadable:
            return DatabaseError(
                f"cannot read {', '.join(unreadable)} ({exc.strerror}), given in {url.source}; "
                "fix the path"
            )
    if isinstance(exc, OSError | TimeoutError | asyncpg.InterfaceError):
        return DatabaseError(
            f"cannot reach the database at {where}: {shown(_reason(exc), 120)}; " + _where_hint(url)
        )
    return None


def is_lost_connection(exc: BaseException) -> bool:
    """Whether `exc` (or what it wraps) says an open connection was closed under us (not a
    refused connect): ended by the server, an administrator, a pooler or a restart."""
    import asyncpg

    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            return False
        if isinstance(seen, asyncpg.ConnectionDoesNotExistError):
            return True
        if isinstance(seen, asyncpg.InternalClientError) and "another operation" in str(seen):
            return True  # asyncpg's protocol, cut short by the server ending the session
        if isinstance(seen, asyncpg.InterfaceError) and "closed" in str(seen):
            return True
        if getattr(seen, "sqlstate", None) in ("57P01", "57P02", "57P03", "08006", "08003"):
            return True  # terminated by an administrator, a crash, a shutdown
        if getattr(seen, "connection_invalidated", False):
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__
    return False


def lost_reason(exc: BaseException) -> str:
    """Why a connection was lost, in the server's words when it gave them."""
    import asyncpg

    if sqlstate(exc) and not isinstance(exc, asyncpg.InternalClientError):
        return server_message(exc)
    return "the server or the network closed it: an administrator, a pooler or a restart"


def lost_connection(
    url: DatabaseURL, exc: BaseException, after: str, doing: str = ""
) -> DatabaseError:
    """The open connection was lost (`doing` something): say so with the server's word when it
    gave one, and what became of the work (`after`)."""
    doing = f" {doing}" if doing else ""
    return DatabaseError(
        f"lost the connection to the database at {url.display()}{doing} ({lost_reason(exc)}); "
        f"{after}"
    )


def _where_hint(url: DatabaseURL) -> str:
    if url.source == "the built-in default":
        return (
            "DATABASE_URL is not set, so the built-in default was used; export DATABASE_URL "
            "(for the local server: export DATABASE_URL=$(make -s dev-db))"
        )
    return f"check {url.source} and that the server is running"


def server_message(exc: BaseException) -> str:
    """The server's own message, first line only, without SQLAlchemy's wrapping."""
    original: BaseException = getattr(exc, "orig", None) or exc
    cause = original.__cause__
    if cause is not None and type(original).__module__.startswith("sqlalchemy"):
        original = cause
    text = str(original).strip()
    line = text.splitlines()[0] if text else type(original).__name__
    return shown(_ASYNCPG_PREFIX.sub("", line), 300)


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a server error, through SQLAlchemy's wrapping."""
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            return None
        code = getattr(seen, "sqlstate", None)
        if isinstance(code, str):
            return code
        seen = getattr(seen, "orig", None) or seen.__cause__
    return None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


@contextmanager
def alembic_errors() -> Iterator[None]:
    """Alembic's CommandError as RevisionError."""
    from alembic.util import CommandError

    from shared.migrate.errors import RevisionError

    try:
        yield
    except MigrateError:
        raise
    except CommandError as exc:
        raise RevisionError(shown(str(exc), 300)) from exc
