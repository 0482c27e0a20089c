"""One round trip for a revision's one-off statements.

SQLAlchemy's asyncpg adapter prepares every statement (a round trip) before running it (a
second one). A revision's DDL runs once and takes no parameters: sent through PostgreSQL's
simple query protocol it costs one round trip and no prepared statement. Only statements
that return no rows go this way (DDL, and DML without RETURNING); everything else, and
anything with parameters, keeps SQLAlchemy's path.
"""

from __future__ import annotations

import re
from collections import deque
from typing import Any

from sqlalchemy.dialects.postgresql.asyncpg import (
    AsyncAdapt_asyncpg_connection,
    AsyncAdapt_asyncpg_cursor,
)

_NO_ROWS = re.compile(
    r"\s*(CREATE|ALTER|DROP|COMMENT|GRANT|REVOKE|TRUNCATE|INSERT|UPDATE|DELETE|SET|RESET|"
    r"REINDEX|CLUSTER|VACUUM|ANALYZE|REFRESH|SECURITY|LOCK)\b",
    re.IGNORECASE,
)
_RETURNING = re.compile(r"\bRETURNING\b", re.IGNORECASE)
_COUNT = re.compile(r"(?:UPDATE|DELETE|INSERT \d+) (\d+)")


class OneShotCursor(AsyncAdapt_asyncpg_cursor):
    __slots__ = ()

    async def _prepare_and_execute(self, operation: str, parameters: Any) -> None:
        if parameters or not _NO_ROWS.match(operation) or _RETURNING.search(operation):
            await super()._prepare_and_execute(operation, parameters)  # type: ignore[no-untyped-call]
            return
        adapt_connection = self._adapt_connection
        async with adapt_connection._execute_mutex:
            if adapt_connection._transaction is None:
                await adapt_connection._start_transaction()  # type: ignore[no-untyped-call]
            try:
                status = await adapt_connection._connection.execute(operation)  # type: ignore[attr-defined]
            except Exception as error:
                self._handle_exception(error)  # type: ignore[no-untyped-call]
            self._description = None
            self._rows = deque()
            counted = _COUNT.match(status or "")
            self._rowcount = int(counted.group(1)) if counted else -1


class OneShotConnection(AsyncAdapt_asyncpg_connection):
    __slots__ = ()
    _cursor_cls = OneShotCursor


def install(dbapi_connection: Any) -> None:
    """Give one SQLAlchemy-adapted asyncpg connection the one-round-trip cursor."""
    if type(dbapi_connection) is AsyncAdapt_asyncpg_connection:
        dbapi_connection.__class__ = OneShotConnection
