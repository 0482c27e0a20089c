"""The one place where the driver's, SQLAlchemy's and Alembic's exceptions become the tool's
own errors. Messages name host:port/database, never the password."""

from __future__ import annotations

import os
import re
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager

from shared.db.url import DatabaseURL, InvalidDatabaseURL
from shared.migrate.errors import ConfigError, DatabaseError, MigrateError, shown

_ASYNCPG_PREFIX = re.compile(r"^\(\S+\) <class '[\w.]+'>: ")


@contextmanager
def database_errors(url: DatabaseURL) -> Iterator[None]:
    """Connection and server errors as DatabaseError."""
    import asyncpg

    try:
        yield
    except MigrateError:
        raise
    except InvalidDatabaseURL as exc:
        raise ConfigError(str(exc)) from None
    except asyncpg.InvalidAuthorizationSpecificationError as exc:  # a wrong password too
        raise DatabaseError(
            f"the database at {url.display()} refused the login ({server_message(exc)}); "
            f"the user name and password come from {url.source}"
        ) from exc
    except asyncpg.InvalidCatalogNameError as exc:
        raise DatabaseError(
            f"{server_message(exc)} on {url.display()}; create it or fix the database name "
            f"in {url.source}"
        ) from exc
    except (asyncpg.ConnectionDoesNotExistError, asyncpg.ConnectionFailureError) as exc:
        raise DatabaseError(
            f"lost the connection to the database at {url.display()} "
            f"({server_message(exc)}); whatever ran in the open transaction was rolled back"
        ) from exc
    except asyncpg.InsufficientPrivilegeError as exc:
        raise DatabaseError(
            f"database error at {url.display()}: {server_message(exc)}; the role in "
            f"{url.source} needs SELECT on the version and log tables to read them, and to own "
            "what up and down change"
        ) from exc
    except asyncpg.PostgresError as exc:
        raise DatabaseError(f"database error at {url.display()}: {server_message(exc)}") from exc
    except (ssl.SSLError, ssl.CertificateError) as exc:
        raise DatabaseError(
            f"cannot reach the database at {url.display()}: SSL: {shown(_reason(exc), 120)}; "
            f"check sslmode and the certificates in {url.source}"
        ) from exc
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        unreadable = [
            f"{name}={shown(path, 120)}"
            for name in ("sslrootcert", "sslcert", "sslkey", "sslcrl")
            if (path := url.param(name)) and not os.access(path, os.R_OK)
        ]
        if not unreadable:
            raise DatabaseError(
                f"cannot reach the database at {url.display()}: {shown(_reason(exc), 120)}; "
                + _where_hint(url)
            ) from exc
        raise DatabaseError(
            f"cannot read {', '.join(unreadable)} ({exc.strerror}), given in {url.source}; "
            "fix the path"
        ) from exc
    except (OSError, socket.gaierror, TimeoutError, asyncpg.InterfaceError) as exc:
        raise DatabaseError(
            f"cannot reach the database at {url.display()}: {shown(_reason(exc), 120)}; "
            + _where_hint(url)
        ) from exc
    except Exception as exc:
        from sqlalchemy import exc as sa_exc

        if isinstance(exc, sa_exc.DBAPIError):
            raise DatabaseError(
                f"database error at {url.display()}: {server_message(exc)}"
            ) from exc
        raise


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
