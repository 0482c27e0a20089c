"""The tool's own record beside the version table: every revision applied and unapplied,
with when, how long, by whom, and the checksum of its file."""

from __future__ import annotations

import getpass
import hashlib
import socket
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection

from shared.migrate.database import table_exists


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


def checksum(path: Path) -> str:
    """sha256 of the revision file, line endings normalised (a checkout on Windows is no edit)."""
    return hashlib.sha256(path.read_bytes().replace(b"\r\n", b"\n")).hexdigest()


def ensure_table(conn: Connection, table: str) -> None:
    conn.execute(
        text(
            f'CREATE TABLE IF NOT EXISTS "{table}" ('
            "id bigserial PRIMARY KEY, module text NOT NULL, revision text NOT NULL, "
            "direction text NOT NULL CHECK (direction IN ('up', 'down')), "
            "checksum text NOT NULL, finished_at timestamptz NOT NULL DEFAULT now(), "
            "duration_ms integer NOT NULL, db_user text NOT NULL DEFAULT current_user, "
            "host text NOT NULL, os_user text NOT NULL)"
        )
    )


def record(
    conn: Connection,
    table: str,
    *,
    module: str,
    revision: str,
    direction: str,
    checksum: str,
    duration_ms: int,
) -> None:
    """One row, in the revision's own transaction: the log commits exactly when it does."""
    conn.execute(
        text(
            f'INSERT INTO "{table}" (module, revision, direction, checksum, duration_ms, host, '
            "os_user) VALUES (:module, :revision, :direction, :checksum, :ms, :host, :os_user)"
        ),
        {
            "module": module,
            "revision": revision,
            "direction": direction,
            "checksum": checksum,
            "ms": duration_ms,
            "host": socket.gethostname(),
            "os_user": _os_user(),
        },
    )


def entries(conn: Connection, table: str) -> list[LogEntry]:
    """Every entry, newest first (none when the table does not exist yet)."""
    if not table_exists(conn, table):
        return []
    rows = conn.execute(
        text(
            "SELECT id, module, revision, direction, checksum, finished_at, duration_ms, "
            f'db_user, host, os_user FROM "{table}" ORDER BY id DESC'
        )
    )
    return [LogEntry(*row) for row in rows]


def applied_checksums(log: list[LogEntry]) -> dict[str, LogEntry]:
    """For each revision whose latest entry is an upgrade: that entry."""
    latest: dict[str, LogEntry] = {}
    for entry in log:  # newest first
        latest.setdefault(entry.revision, entry)
    return {rev: e for rev, e in latest.items() if e.direction == "up"}


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "?"
