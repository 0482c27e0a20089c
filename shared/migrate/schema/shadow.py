"""A throwaway database on the same server, created for one `create`, `check` or `owners` and
always dropped after it, even when the command is interrupted or terminated.

Its name is `migrate_shadow_<pid>_<random>`, and an "owner" session holds an advisory lock
keyed on that name while it is in use. (The session is also named exactly `migrate shadow
<name>`, whatever the URL's `application_name` makes of session names, and a session so
named keeps a shadow too: older versions of the tool, sharing a server with this one, know
an owner only by that name.) A shadow whose key nobody holds (the process was killed) is
dropped by the next command that makes one. A shadow dropped under a command all the same (by
hand) is reported as that, whatever the statement the drop cut short.

Building a long history on a shadow costs what applying it costs. So the state a build
reaches before the revisions it has to prove is kept as a template database
(`migrate_template_<key>`), the key being every built revision's checksum (what runs), the
content of the repository's modules they import, and the tool's versions: the next command
with the same history clones it instead of building.
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
from shared.migrate.database.session import lock_key
from shared.migrate.database.session import session_settings as migrating_settings
from shared.migrate.database.translate import database_errors
from shared.migrate.errors import DatabaseError
from shared.migrate.manifest import Settings

if TYPE_CHECKING:
    import asyncpg

T = TypeVar("T")
PREFIX = "migrate_shadow_"
TEMPLATE_PREFIX = "migrate_template_"
TEMPLATE_FORMAT = 1
TEMPLATE_MIN_AGE = 60.0  # seconds: no older clone of it can still be starting


def session_settings(settings: Settings) -> dict[str, str]:
    """A shadow session's settings. It is thrown away: no durable commits (no WAL flush per
    revision). Its revisions run under the manifest's statement_timeout, as `up` runs them,
    never under a role's or server's own (check would fail where the deploy passes), and
    with no lock_timeout: nothing else uses a shadow."""
    return migrating_settings(0, settings.statement_timeout, {"synchronous_commit": "off"})


# the owner's and the trimmer's own statements (CREATE DATABASE from a template, DROP ...
# WITH (FORCE)) take what they take: never a role's or server's timeouts
OWNER_SETTINGS = migrating_settings(0, 0)
OWNER = "migrate shadow "  # + the database's name: the application name of its owner session
OWNER_LOCK = 0x6D736864  # "mshd": the first half of the advisory lock key its owner holds


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
    command: str,
    work: Callable[[Shadow], Awaitable[T]],
    template: str | None = None,
    keep: int = 3,
) -> T:
    """Create a shadow database on `server` (cloned from `template` when it exists), call
    `work` with it, drop it. `command` names the verb in errors."""
    import asyncpg

    with database_errors(server):
        owner, name = await _owner(server)
    try:
        with database_errors(server, connected=True):
            await _sweep(owner)
            await _trim(owner, server, keep)  # kept ones, and spares a killed run left
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
            return await _unless_gone(owner, server, name, command, work(shadow))
        finally:
            with database_errors(server, connected=True):
                await asyncio.shield(
                    owner.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                )
    finally:
        await owner.close(timeout=5)


async def _owner(server: DatabaseURL) -> tuple[asyncpg.Connection, str]:
    """The owner session and the new shadow's name, whose key it holds from before the
    database exists (so no sweep sees the one without the other) until it ends."""
    while True:
        name = f"{PREFIX}{os.getpid()}_{uuid.uuid4().hex[:8]}"
        owner = await connect(server, application_name=OWNER + name, settings=OWNER_SETTINGS)
        try:
            key = lock_key(name)
            if await owner.fetchval("SELECT pg_try_advisory_lock($1, $2)", OWNER_LOCK, key):
                # the name exactly, whatever the URL's application_name made of it: a `migrate`
                # older than this one, sharing the server, knows an owner only by that
                await owner.execute(f"SET application_name = '{OWNER}{name}'")
                return owner, name
        except BaseException:
            owner.terminate()
            raise
        await owner.close(timeout=5)  # the key of a live shadow's name: pick another name


async def _unless_gone(
    owner: asyncpg.Connection, server: DatabaseURL, name: str, command: str, work: Awaitable[T]
) -> T:
    """What `work` returns, once the shadow is known to have outlived it; else the one error
    that explains the failure, whatever statement the drop cut short."""
    try:
        result = await work
    except Exception as exc:
        if await _gone(owner, name):
            raise _dropped(server, name, command, exc) from exc
        raise
    if await _gone(owner, name):  # a cut stairway can end normally, its findings made of the cut
        raise _dropped(server, name, command)
    return result


async def _gone(owner: asyncpg.Connection, name: str) -> bool:
    """Whether the shadow is gone, or going: DROP DATABASE ends the sessions on it before it
    commits, under an exclusive lock on it. False when the owner cannot tell."""
    import asyncpg

    try:
        return bool(
            await owner.fetchval(
                "SELECT NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) OR EXISTS ("
                "SELECT 1 FROM pg_locks l JOIN pg_database d ON d.oid = l.objid "
                "WHERE l.locktype = 'object' AND l.classid = 'pg_database'::regclass "
                "AND l.mode = 'AccessExclusiveLock' AND l.granted AND d.datname = $1)",
                name,
            )
        )
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
        return False


def _dropped(
    server: DatabaseURL, name: str, command: str, cause: BaseException | None = None
) -> DatabaseError:
    written = getattr(cause, "written", None)  # a file `create` wrote before proving it there
    left = f"{written} was written but not proved: delete it, then " if written else ""
    return DatabaseError(
        f"the shadow database {name} on {server.display()} was dropped by another process "
        f"while `migrate {command}` was using it; {left}run `migrate {command}` again"
    )


async def _clone(owner: asyncpg.Connection, name: str, template: str) -> dict[str, str] | None:
    """Create the shadow from the template; what its build attributed, or None (no template,
    or it went away: the caller builds from scratch)."""
    import asyncpg

    comment = await owner.fetchval(  # only a template this role may own the objects of
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1 "
        "AND pg_has_role(datdba, 'USAGE')",
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
        conn = await connect(
            server, application_name="migrate template trim", settings=OWNER_SETTINGS
        )
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
    """Drop shadow databases left by processes that died (nobody holds their key, and no
    session has their owner's exact name, as an older version's owner does), where allowed.
    The databases are read before the locks: an owner locks before it creates."""
    import asyncpg

    shadows = await owner.fetch(
        "SELECT d.datname FROM pg_database d WHERE d.datname LIKE 'migrate\\_shadow\\_%' "
        "AND pg_has_role(d.datdba, 'USAGE') AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a "
        f"WHERE a.application_name = '{OWNER}' || d.datname)"
    )
    held = {  # advisory locks of every database of the server: owners connect anywhere
        key
        for (key,) in await owner.fetch(
            "SELECT objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND objsubid = 2 AND classid = $1::bigint::oid",
            OWNER_LOCK,
        )
    }
    orphans = [name for (name,) in shadows if lock_key(name) & 0xFFFFFFFF not in held]
    for name in orphans:
        try:
            await owner.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except asyncpg.PostgresError:
            continue  # someone else's, or already gone
