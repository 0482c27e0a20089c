"""The tool's own record beside the version table: every revision applied, unapplied, accepted
or marked by hand, with when, how long, by whom, why, and the checksum of its file.

The version rows and the log entry of a revision are written by one statement, in the
revision's own transaction: the log commits exactly when the revision does.
"""

from __future__ import annotations

import getpass
import hashlib
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.migrate.history.index import CHECKSUM_PREFIX
from shared.migrate.manifest import Settings

if TYPE_CHECKING:
    import asyncpg
    from sqlalchemy.engine import Connection

    from shared.migrate.database.state import DatabaseState

ACTIONS = ("run", "accept", "resolve")


@dataclass(frozen=True)
class LogEntry:
    id: int
    module: str
    revision: str
    direction: str
    checksum: str
    finished_at: datetime
    duration_ms: int
    db_user: str
    host: str
    os_user: str
    action: str = "run"
    reason: str | None = None
    database: str = ""  # host:port/database it was read from


async def ensure_tables(conn: asyncpg.Connection, settings: Settings, db: DatabaseState) -> None:
    """Create what is missing of the version and log tables; a role that may not create tables
    there is told which tables, where, and what to change."""
    import asyncpg

    if db.version_table and db.log_table and db.log_current:
        return
    sql = create_tables(
        settings, version=db.version_table, log=db.log_table, log_current=db.log_current
    )
    try:
        await conn.execute(sql)
    except asyncpg.InsufficientPrivilegeError as exc:
        from shared.migrate.database.translate import server_message
        from shared.migrate.errors import DatabaseError

        schema = settings.version_table_schema or "the first schema on the search_path"
        raise DatabaseError(
            f"cannot create the tables {settings.version_table} and {settings.log_table} in "
            f"{schema} ({server_message(exc)}); run migrate as a role that may create tables "
            "there (the schema's owner, or one granted CREATE on it), or set "
            "version_table_schema in migrations.yaml to a schema it may write; nothing was "
            "applied"
        ) from exc


def create_tables(settings: Settings, *, version: bool, log: bool, log_current: bool) -> str:
    """The statements (one round trip) that make the version and log tables usable."""
    vt, lt = settings.qualified(settings.version_table), settings.qualified(settings.log_table)
    statements = []
    if settings.version_table_schema and not (version and log):
        statements.append(f'CREATE SCHEMA IF NOT EXISTS "{settings.version_table_schema}"')
    if not version:
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {vt} (version_num VARCHAR(32) NOT NULL, "
            f'CONSTRAINT "{settings.version_table}_pkc" PRIMARY KEY (version_num))'
        )
    if not log:
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {lt} (id bigserial PRIMARY KEY, module text NOT NULL, "
            "revision text NOT NULL, direction text NOT NULL CHECK (direction IN ('up', 'down')), "
            "checksum text NOT NULL, finished_at timestamptz NOT NULL DEFAULT now(), "
            "duration_ms integer NOT NULL, db_user text NOT NULL DEFAULT current_user, "
            "host text NOT NULL, os_user text NOT NULL, "
            "action text NOT NULL DEFAULT 'run', reason text)"
        )
    elif not log_current:  # a log written by an earlier version of the tool
        statements.append(
            f"ALTER TABLE {lt} ADD COLUMN IF NOT EXISTS action text NOT NULL DEFAULT 'run', "
            "ADD COLUMN IF NOT EXISTS reason text"
        )
    if not (log and log_current):
        statements.append(
            f'CREATE INDEX IF NOT EXISTS "{settings.log_table}_revision_id" ON {lt} (revision, id)'
        )
    return ";\n".join(statements)


@dataclass(frozen=True)
class Entry:
    """One log entry: a revision applied or unapplied (`run`), accepted or marked by hand."""

    module: str
    revision: str
    direction: str  # "up" or "down"
    checksum: str
    duration_ms: int = 0
    action: str = "run"
    reason: str | None = None


@dataclass(frozen=True)
class Record:
    """What one transaction writes: version rows out, version rows in, log entries."""

    gone: tuple[str, ...] = ()
    added: tuple[str, ...] = ()
    entries: tuple[Entry, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.gone or self.added or self.entries)


def record(rows: set[str], wanted: set[str], entries: tuple[Entry, ...] = ()) -> Record:
    """The record that turns the version rows `rows` into `wanted`, with `entries` logged."""
    return Record(tuple(sorted(rows - wanted)), tuple(sorted(wanted - rows)), entries)


def statement(settings: Settings) -> str:
    """The one statement that writes the version table and the log (named parameters): every
    change of either, by up, down, resolve and tidying, goes through it."""
    vt, lt = settings.qualified(settings.version_table), settings.qualified(settings.log_table)
    return (
        f"WITH gone AS (DELETE FROM {vt} WHERE version_num = ANY(CAST(:gone AS text[]))), "
        f"added AS (INSERT INTO {vt} (version_num) SELECT unnest(CAST(:added AS text[]))) "
        f"INSERT INTO {lt} (module, revision, direction, checksum, duration_ms, host, os_user, "
        "action, reason) SELECT e.module, e.revision, e.direction, e.checksum, e.ms, :host, "
        ":os_user, e.action, e.reason FROM unnest(CAST(:modules AS text[]), "
        "CAST(:revisions AS text[]), CAST(:directions AS text[]), CAST(:checksums AS text[]), "
        "CAST(:ms AS integer[]), CAST(:actions AS text[]), CAST(:reasons AS text[])) "
        "AS e(module, revision, direction, checksum, ms, action, reason)"
    )


def parameters(record: Record) -> dict[str, Any]:
    host, os_user = who()
    return {
        "gone": list(record.gone),
        "added": list(record.added),
        **_arrays(record.entries, **_ENTRY_ARRAYS),
        "host": host,
        "os_user": os_user,
    }


# the parameter (an array, unnest's input) of each field of an entry
_ENTRY_ARRAYS = {
    "modules": "module",
    "revisions": "revision",
    "directions": "direction",
    "checksums": "checksum",
    "ms": "duration_ms",
    "actions": "action",
    "reasons": "reason",
}


def _arrays(entries: Sequence[object], **fields: str) -> dict[str, list[Any]]:
    """One array parameter per field of `entries`: name=attribute."""
    return {name: [getattr(e, attribute) for e in entries] for name, attribute in fields.items()}


def write(conn: Connection, settings: Settings, record: Record) -> None:
    """Write `record` on `conn`, in its current transaction (online)."""
    if record:
        conn.execute(_compiled(settings), parameters(record))


@cache
def _compiled(settings: Settings) -> Any:
    from sqlalchemy import text

    return text(statement(settings))


OFFLINE_REASON = "applied from the output of migrate up --sql"


def render(settings: Settings, record: Record) -> str:
    """`record` as SQL text with literal values, for `up --sql` (offline): the log entries name
    no host, and the role that runs the script as the OS user."""
    vt, lt = settings.qualified(settings.version_table), settings.qualified(settings.log_table)
    lines = [f"DELETE FROM {vt} WHERE version_num = {_literal(rev)};\n" for rev in record.gone]
    lines += [f"INSERT INTO {vt} (version_num) VALUES ({_literal(rev)});\n" for rev in record.added]
    for entry in record.entries:
        values = ", ".join(
            _literal(v) for v in (entry.module, entry.revision, entry.direction, entry.checksum)
        )
        lines.append(
            f"INSERT INTO {lt} (module, revision, direction, checksum, duration_ms, host, "
            f"os_user, action, reason) VALUES ({values}, 0, 'offline SQL', "
            f"current_user, {_literal(entry.action)}, "
            f"{_literal(entry.reason or OFFLINE_REASON)});\n"
        )
    return "".join(lines)


def _literal(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


async def entries(conn: asyncpg.Connection, settings: Settings) -> list[LogEntry]:
    """Every entry, newest first (none when the table does not exist yet)."""
    table = settings.qualified(settings.log_table)
    exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table)
    if not exists:
        return []
    has_action = await conn.fetchval(
        "SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass($1) "
        "AND attname = 'action' AND NOT attisdropped",
        table,
    )
    extra = "action, reason" if has_action else "'run', NULL::text"
    rows = await conn.fetch(
        "SELECT id, module, revision, direction, checksum, finished_at, duration_ms, "
        f"db_user, host, os_user, {extra} FROM {table} ORDER BY id DESC"
    )
    return [LogEntry(*row) for row in rows]


def matches(recorded: str, path: Path, current: str) -> bool:
    """Whether a checksum in the log still describes the file. Entries written before
    checksums ignored formatting hold the sha256 of the file's bytes."""
    if recorded.startswith(CHECKSUM_PREFIX):
        return recorded == current
    try:
        data = path.read_bytes().replace(b"\r\n", b"\n")
    except OSError:
        return False
    return hashlib.sha256(data).hexdigest() == recorded


@cache
def who() -> tuple[str, str]:
    """(host, OS user) of this process, as the log records them."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "?"
    return socket.gethostname(), user


# ---- moving a module to a database of its own (`migrate module move`) ------------------------

_COPY = (
    "INSERT INTO {lt} (module, revision, direction, checksum, finished_at, duration_ms, "
    "db_user, host, os_user, action, reason) SELECT * FROM unnest(CAST(:modules AS text[]), "
    "CAST(:revisions AS text[]), CAST(:directions AS text[]), CAST(:checksums AS text[]), "
    "CAST(:finished AS timestamptz[]), CAST(:ms AS integer[]), CAST(:db_users AS text[]), "
    "CAST(:hosts AS text[]), CAST(:os_users AS text[]), CAST(:actions AS text[]), "
    "CAST(:reasons AS text[]))"
)


def move_in(conn: Connection, settings: Settings, rows: Record, entries: list[LogEntry]) -> None:
    """In a module's new database, in the caller's transaction: its version rows, and its log
    entries as they were written (when, by whom), oldest first."""
    from sqlalchemy import text

    write(conn, settings, rows)
    if entries:
        lt = settings.qualified(settings.log_table)
        written = {"finished": "finished_at", "db_users": "db_user", "hosts": "host"}
        arrays = _arrays(entries, **_ENTRY_ARRAYS, **written, os_users="os_user")
        conn.execute(text(_COPY.format(lt=lt)), arrays)


def move_out(conn: Connection, settings: Settings, rows: Record, module: str) -> None:
    """In the database a module left, in the caller's transaction: the version rows as they
    are without it, and its log entries gone (they are in its new database)."""
    from sqlalchemy import text

    write(conn, settings, rows)
    lt = settings.qualified(settings.log_table)
    conn.execute(text(f"DELETE FROM {lt} WHERE module = :module"), {"module": module})
