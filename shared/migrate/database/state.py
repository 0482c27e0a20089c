"""Where a database stands: its version rows and what the log says, read in one round trip,
and what that means per module (`status`, `current`, the planner's starting point)."""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from shared.migrate.history.graph import RevisionGraph
from shared.migrate.manifest import Manifest, Module, Settings

if TYPE_CHECKING:
    import asyncpg


class Logged(NamedTuple):
    """The newest log entry of one revision."""

    module: str
    direction: str
    checksum: str
    id: int


@dataclass(frozen=True)
class DatabaseState:
    """The version rows, and the log: in full, or (`complete` false) only the entries of the
    version rows plus a digest of every applied revision's checksum, which is enough to
    verify a database nobody edited by hand in one small round trip."""

    rows: tuple[str, ...] = ()
    log: Mapping[str, Logged] = field(default_factory=dict)
    version_table: bool = False
    log_table: bool = False
    log_current: bool = False  # the log has the columns this version of the tool writes
    digest: str | None = None  # md5 of "revision checksum" of the newest "up" entries
    complete: bool = True

    def known_rows(self, graph: RevisionGraph) -> list[str]:
        return [r for r in self.rows if r in graph.revisions]

    def unknown_rows(self, graph: RevisionGraph) -> list[str]:
        return [r for r in self.rows if r not in graph.revisions]

    def applied(self, graph: RevisionGraph) -> set[str]:
        return graph.ancestors(self.known_rows(graph))

    def recency(self) -> dict[str, int]:
        """Revision -> id of its newest log entry (a larger id is more recent)."""
        return {rev: entry.id for rev, entry in self.log.items()}

    def matches(self, graph: RevisionGraph, applied: set[str]) -> bool:
        """Whether the log's digest says every applied revision was logged with the checksum
        its file has now (the usual case: then no entry needs reading)."""
        if self.digest is None:
            return not applied
        revisions = graph.revisions
        text = ",".join(f"{r} {revisions[r].checksum}" for r in sorted(applied))
        return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest() == self.digest


# C collation: a cheap sort, and the order Python sorts the same strings in
_LATEST = (
    'SELECT DISTINCT ON (revision COLLATE "C") revision, module, direction, checksum, id{extra} '
    'FROM {lt} ORDER BY revision COLLATE "C", id DESC'
)
_ENTRIES = "ARRAY(SELECT ARRAY[revision, module, direction, checksum, id::text] FROM latest{where})"


async def read_state(
    conn: asyncpg.Connection, settings: Settings, *, full: bool = False
) -> DatabaseState:
    """The version rows and the log (in full, or the digest and the rows' entries); nothing
    is created. One statement once both tables exist, as they do after the first `up`."""
    import asyncpg

    vt, lt = settings.qualified(settings.version_table), settings.qualified(settings.log_table)
    latest = _LATEST.format(lt=lt, extra=", action")
    where = "" if full else f" WHERE revision IN (SELECT version_num FROM {vt})"
    try:
        row = await conn.fetchrow(
            f"WITH latest AS ({latest}) "
            f"SELECT ARRAY(SELECT version_num FROM {vt} ORDER BY 1), "
            + _ENTRIES.format(where=where)
            # in the order the CTE yields (sorted): should it ever differ, the digest just
            # does not match, and every entry is read and checked one by one
            + ", (SELECT md5(string_agg(revision || ' ' || checksum, ',')) "
            "FROM latest WHERE direction = 'up')"
        )
        assert row is not None
        return DatabaseState(tuple(row[0]), _log(row[1]), True, True, True, row[2], full)
    except (
        asyncpg.UndefinedTableError,
        asyncpg.UndefinedColumnError,
        asyncpg.InvalidSchemaNameError,
    ):
        pass
    exists = await conn.fetchrow(
        "SELECT to_regclass($1) IS NOT NULL, to_regclass($2) IS NOT NULL, EXISTS (SELECT 1 "
        "FROM pg_attribute WHERE attrelid = to_regclass($2) AND attname = 'action' "
        "AND NOT attisdropped)",
        vt,
        lt,
    )
    assert exists is not None
    has_version, has_log, log_current = exists
    rows: tuple[str, ...] = ()
    if has_version:
        rows = tuple(await conn.fetchval(f"SELECT ARRAY(SELECT version_num FROM {vt} ORDER BY 1)"))
    log: dict[str, Logged] = {}
    if has_log:
        query = f"WITH latest AS ({_LATEST.format(lt=lt, extra='')}) SELECT " + _ENTRIES.format(
            where=""
        )
        log = _log(await conn.fetchval(query))
    return DatabaseState(rows, log, has_version, has_log, log_current)


def _log(rows: list[list[str]]) -> dict[str, Logged]:
    return {
        rev: Logged(module, direction, checksum, int(id_))
        for rev, module, direction, checksum, id_ in rows
    }


@dataclass(frozen=True)
class Position:
    """Where the database stands for one module."""

    module: str
    branch: str
    current: tuple[str, ...]
    heads: tuple[str, ...]
    pending: int | None  # None: unknown (the database is at a revision the code lacks)
    state: str  # up to date, behind, not started, unknown revision, no revisions
    models: bool = True  # its models module exists
    in_manifest: bool = True


@dataclass(frozen=True)
class Status:
    positions: list[Position]
    implied_rows: tuple[str, ...]  # version rows another row already implies
    unknown_rows: tuple[str, ...]
    databases: Mapping[str, str] = field(default_factory=dict)  # module -> host:port/database

    @property
    def version_table_ok(self) -> bool:
        return not self.implied_rows


def status(graph: RevisionGraph, state: DatabaseState) -> Status:
    manifest = graph.manifest
    known = state.known_rows(graph)
    unknown = state.unknown_rows(graph)
    applied = graph.ancestors(known)
    implied = tuple(sorted(graph.implied(known, applied)))
    owner_of = {rev: state.log[rev].module if rev in state.log else "?" for rev in unknown}
    positions = [_position(graph, m, applied, owner_of) for m in manifest.modules]
    for name in sorted({o for o in owner_of.values()} - set(manifest.names)):
        theirs = tuple(r for r, o in owner_of.items() if o == name)
        positions.append(
            Position(name, "-", theirs, (), None, "unknown revision", True, in_manifest=False)
        )
    return Status(positions, implied, tuple(unknown))


def _position(
    graph: RevisionGraph, module: Module, applied: set[str], owner_of: dict[str, str]
) -> Position:
    mine = graph.members.get(module.name, [])
    done = {r for r in mine if r in applied}
    current = tuple(sorted(r for r in done if not any(c in done for c in graph.children[r])))
    pending: int | None = len(mine) - len(done)
    theirs = tuple(r for r, owner in owner_of.items() if owner == module.name)
    if theirs:
        state, current, pending = "unknown revision", (*current, *theirs), None
    elif not mine:
        state = "no revisions"
    elif pending == 0:
        state = "up to date"
    elif current:
        state = "behind"
    else:
        state = "not started"
    heads = tuple(graph.heads(module.name))
    return Position(
        module.name,
        module.branch,
        current,
        heads,
        pending,
        state,
        _has_models(graph.manifest, module),
    )


def _has_models(manifest: Manifest, module: Module) -> bool:
    if module.models_file(manifest.root) is not None:
        return True
    try:  # installed elsewhere than the repository
        return importlib.util.find_spec(module.models) is not None
    except (ImportError, ValueError):
        return False
