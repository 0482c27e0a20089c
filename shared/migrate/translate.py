"""The one place where Alembic's and the driver's exceptions become the tool's own errors."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from alembic.script.revision import MultipleHeads as AlembicMultipleHeads
from alembic.script.revision import ResolutionError
from alembic.util import CommandError
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL

from shared.db.url import where
from shared.migrate.errors import DatabaseError, MigrateError, RevisionError

_ASYNCPG_PREFIX = re.compile(r"^\(\S+\) <class '[\w.]+'>: ")


@contextmanager
def alembic_errors() -> Iterator[None]:
    """Alembic's CommandError and graph errors as RevisionError."""
    try:
        yield
    except MigrateError:
        raise
    except AlembicMultipleHeads as exc:
        raise RevisionError(
            f"several heads ({', '.join(exc.heads)}) where one was expected; "
            "name one with <module>@head or use --branch"
        ) from exc
    except ResolutionError as exc:
        raise RevisionError(f"{exc}; see `migrate history` for the known revisions") from exc
    except CommandError as exc:
        raise RevisionError(str(exc)) from exc


@contextmanager
def database_errors(url: URL) -> Iterator[None]:
    """Connection and server errors as DatabaseError, naming host:port/db, never the password."""
    try:
        yield
    except MigrateError:
        raise
    except (OSError, socket.gaierror, TimeoutError) as exc:
        raise DatabaseError(
            f"cannot reach the database at {where(url)}: {_reason(exc)}; "
            "check --database-url or DATABASE_URL and that the server is running"
        ) from exc
    except sa_exc.DBAPIError as exc:
        raise DatabaseError(f"database error at {where(url)}: {server_message(exc)}") from exc


def server_message(exc: BaseException) -> str:
    """The server's own message, without SQLAlchemy's wrapping or the statement."""
    original = getattr(exc, "orig", None) or exc
    text = (
        str(original).strip().splitlines()[0] if str(original).strip() else type(original).__name__
    )
    return _ASYNCPG_PREFIX.sub("", text)


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
