"""A throwaway database on the same server, created for one `create`, `check` or `owners` and
always dropped after it, even when the command is interrupted or terminated.

Its name is `migrate_shadow_<pid>_<random>`, and an "owner" session named after it stays
connected to the server while it is in use. A shadow whose owner is gone (the process was
killed) is dropped by the next command that makes one.

Building a long history on a shadow costs what applying it costs. So the state a build
reaches before the revisions it has to prove is kept as a template database
(`migrate_template_<key>`), the key being every built revision's checksum (what runs) and the
tool's versions: the next command with the same history clones it instead of building.
At most `shadow_templates` of them are kept (the manifest setting; 0 keeps none).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from shared.db.connect import connect
from shared.db.url import DatabaseURL
from shared.migrate.database.session import KEEP_ALIVE
from shared.migrate.database.translate import database_errors
from shared.migrate.errors import DatabaseError

if TYPE_CHECKING:
    import asyncpg

T = TypeVar("T")
PREFIX = "migrate_shadow_"
TEMPLATE_PREFIX = "migrate_template_"
TEMPLATE_FORMAT = 1
TEMPLATE_MIN_AGE = 60.0  # seconds: no older clone of it can still be starting
# a shadow is thrown away: it needs no durable commits (no WAL flush per revision)
SETTINGS = {**KEEP_ALIVE, "synchronous_commit": "off"}
OWNER = "migrate shadow "  # + the database's name: the application name of its owner session


@dataclass
class Shadow:
    """The shadow database, and what its template knew (None: it starts empty)."""

    url: DatabaseURL
    template: str | None
    created_by: dict[str, str] | None
    _owner: Any
    _server: DatabaseURL
    _keep: int

    async def keep(self, created_by: dict[str, str]) -> None:
        """Keep the shadow as it is now (no session open on it) as the template."""
        if self.template is None or self._keep <= 0:
            return
        name = self.url.database or ""
        await _save_template(self._owner, self._server, name, self.template, created_by, self._keep)


def template_name(lines: Iterable[str]) -> str:
    """The template of a state reached by applying the revisions named in `lines`."""
    import alembic
    import sqlalchemy

    digest = hashlib.sha256(
        "\n".join(
            [f"{TEMPLATE_FORMAT} {alembic.__version__} {sqlalchemy.__version__}", *sorted(lines)]
        ).encode()
    )
    return TEMPLATE_PREFIX + digest.hexdigest()[:24]


async def in_shadow(
    server: DatabaseURL,
    work: Callable[[Shadow], Awaitable[T]],
    template: str | None = None,
    keep: int = 3,
) -> T:
    """Create a shadow database on `server` (cloned from `template` when it exists), call
    `work` with it, drop it."""
    import asyncpg

    name = f"{PREFIX}{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with database_errors(server):
        owner = await connect(server, application_name=OWNER + name, settings=KEEP_ALIVE)
    try:
        with database_errors(server):
            await _sweep(owner)
            created_by = await _clone(owner, name, template) if template and keep else None
            if created_by is None:
                try:
                    await owner.execute(f'CREATE DATABASE "{name}"')
                except asyncpg.InsufficientPrivilegeError as exc:
                    raise DatabaseError(
                        f"cannot create a shadow database on {server.display()}: the role may "
                        "not create databases; grant it CREATEDB, or point --shadow-url (or "
                        "$SHADOW_DATABASE_URL) at a server where it may"
                    ) from exc
        try:
            shadow = Shadow(server.with_database(name), template, created_by, owner, server, keep)
            return await work(shadow)
        finally:
            with database_errors(server):
                await asyncio.shield(
                    owner.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                )
    finally:
        await owner.close(timeout=5)


async def _clone(owner: asyncpg.Connection, name: str, template: str) -> dict[str, str] | None:
    """Create the shadow from the template; what its build attributed, or None (no template,
    or it went away: the caller builds from scratch)."""
    import asyncpg

    comment = await owner.fetchval(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
        template,
    )
    if comment is None:
        return None
    try:
        meta = json.loads(comment)
        created_by = dict(meta["created_by"])
        await owner.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    except (ValueError, KeyError, TypeError, asyncpg.PostgresError):
        return None
    return created_by


async def _save_template(
    owner: asyncpg.Connection,
    server: DatabaseURL,
    shadow: str,
    template: str,
    created_by: dict[str, str],
    keep: int,
) -> None:
    import asyncpg

    spare = f"{template}_{os.getpid()}"
    meta = json.dumps({"created_by": created_by, "at": time.time()}).replace("'", "''")
    try:
        # a pooler (PgBouncer) keeps our closed sessions on the shadow open: the copy would wait
        # for them, then fail
        await owner.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", shadow
        )
        await owner.execute(f'CREATE DATABASE "{spare}" TEMPLATE "{shadow}"')
        await owner.execute(f"COMMENT ON DATABASE \"{spare}\" IS '{meta}'")
        await owner.execute(f'ALTER DATABASE "{spare}" IS_TEMPLATE true')
        await owner.execute(f'ALTER DATABASE "{spare}" RENAME TO "{template}"')
    except asyncpg.PostgresError:  # a cache: another process made it first, or no right to
        await _drop(server, spare)
        return
    await _trim(owner, server, keep)


async def _trim(owner: asyncpg.Connection, server: DatabaseURL, keep: int) -> None:
    """Drop templates beyond the newest `keep`, once they are old enough that nobody can be
    cloning them."""
    rows = await owner.fetch(
        "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database "
        f"WHERE datname LIKE '{TEMPLATE_PREFIX}%' AND pg_has_role(datdba, 'USAGE')"
    )
    dated = []
    for name, comment in rows:
        try:
            dated.append((float(json.loads(comment)["at"]), name))
        except (TypeError, ValueError, KeyError):
            dated.append((0.0, name))
    dated.sort(reverse=True)
    for at, name in dated[keep:]:
        if time.time() - at > TEMPLATE_MIN_AGE:
            await _drop(server, name)


async def _drop(server: DatabaseURL, name: str) -> None:
    """Drop a template (or a half-made one), on a session of its own: PostgreSQL ends the
    session (FATAL, not an error) that alters a database whose DROP another session has
    begun, as two commands trimming at once would; that must never be the owner's."""
    import asyncpg

    try:
        conn = await connect(server, application_name="migrate template trim", settings=KEEP_ALIVE)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return
    try:
        invalid = await conn.fetchval(  # -2: a DROP DATABASE under way, or cut short
            "SELECT datconnlimit = -2 FROM pg_database WHERE datname = $1", name
        )
        if invalid is None:
            return
        if not invalid:
            await conn.execute(f'ALTER DATABASE "{name}" IS_TEMPLATE false')
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except (asyncpg.PostgresError, asyncpg.InterfaceError):
        pass  # someone else's to finish
    finally:
        await _close(conn)


async def _close(conn: asyncpg.Connection) -> None:
    if conn.is_closed():
        return
    try:
        await conn.close(timeout=5)
    except Exception:
        conn.terminate()


async def _sweep(owner: asyncpg.Connection) -> None:
    """Drop shadow databases left by processes that died (no owner session), where allowed."""
    import asyncpg

    orphans = await owner.fetch(
        "SELECT d.datname FROM pg_database d "
        "WHERE d.datname LIKE 'migrate\\_shadow\\_%' AND pg_has_role(d.datdba, 'USAGE') "
        "AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a "
        f"WHERE a.application_name = '{OWNER}' || d.datname)"
    )
    for (name,) in orphans:
        try:
            await owner.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except asyncpg.PostgresError:
            continue  # someone else's, or already gone
