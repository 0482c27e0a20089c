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
    from sqlalchemy.engine import Connection


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
        """What is applied: what it ran, and a revision that replaced revisions once all of
        those are (see RevisionGraph.applied)."""
        return graph.applied(self.reached(graph))

    def reached(self, graph: RevisionGraph) -> set[str]:
        """What the database ran (replaced revisions included): its rows and all they build
        on, read with the log where a replacement makes the rows alone ambiguous."""
        return graph.reached(self.known_rows(graph), self.moved)

    def moved(self, revision: str) -> bool:
        """Whether the log says `revision` was applied (run, or moved onto) last."""
        entry = self.log.get(revision)
        return entry is not None and entry.direction == "up"

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
    conn: asyncpg.Connection,
    settings: Settings,
    *,
    full: bool = False,
    also: tuple[str, ...] = (),
) -> DatabaseState:
    """The version rows and the log (in full, or the digest and the entries of the rows and
    of the revisions in `also`); nothing is created. One statement once both tables exist, as
    they do after the first `up`."""
    import asyncpg

    vt, lt = settings.qualified(settings.version_table), settings.qualified(settings.log_table)
    latest = _LATEST.format(lt=lt, extra=", action")
    where = "" if full else f" WHERE revision IN (SELECT version_num FROM {vt})"
    if also and not full:  # replacing revisions: the log says whether a database moved on
        where += " OR revision = ANY($1::text[])"
    try:
        row = await conn.fetchrow(
            f"WITH latest AS ({latest}) "
            f"SELECT ARRAY(SELECT version_num FROM {vt} ORDER BY 1), "
            + _ENTRIES.format(where=where)
            # in the order the CTE yields (sorted): should it ever differ, the digest just
            # does not match, and every entry is read and checked one by one
            + ", (SELECT md5(string_agg(revision || ' ' || checksum, ',')) "
            "FROM latest WHERE direction = 'up')",
            *([list(also)] if also and not full else []),
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


def moved_onto(conn: Connection, settings: Settings, names: list[str]) -> set[str]:
    """Which of `names` the log says were applied last (plain Alembic's env, on its own
    SQLAlchemy connection: whether a database was moved onto a replacing revision)."""
    from sqlalchemy import text

    lt = settings.qualified(settings.log_table)
    if not names or conn.execute(text("SELECT to_regclass(:t)"), {"t": lt}).scalar() is None:
        return set()
    rows = conn.execute(
        text(
            f'SELECT DISTINCT ON (revision COLLATE "C") revision, direction FROM {lt} '
            'WHERE revision = ANY(:names) ORDER BY revision COLLATE "C", id DESC'
        ),
        {"names": names},
    )
    return {revision for revision, direction in rows if direction == "up"}


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
    reached = state.reached(graph)
    # rows plain Alembic cannot upgrade from (replaced ones are a move's to clear, not tidying's)
    implied = tuple(
        sorted(r for r in graph.implied(known, graph.ancestors(known)) if r not in graph.replaced)
    )
    owner_of = {rev: state.log[rev].module if rev in state.log else "?" for rev in unknown}
    via = _via_old_revisions(graph, reached)
    positions = [_position(graph, m, reached, owner_of, via) for m in manifest.modules]
    for name in sorted({o for o in owner_of.values()} - set(manifest.names)):
        theirs = tuple(r for r, o in owner_of.items() if o == name)
        positions.append(
            Position(name, "-", theirs, (), None, "unknown revision", True, in_manifest=False)
        )
    return Status(positions, implied, tuple(unknown))


def _via_old_revisions(graph: RevisionGraph, reached: set[str]) -> dict[str, tuple[str, ...]]:
    """Module -> the replaced revisions its database stands at, for a module that has to be
    moved onto the revisions that replaced them (`up` does it)."""
    found: dict[str, tuple[str, ...]] = {}
    for name in graph.inside(reached):
        module = graph.revisions[name].module
        at = graph.maximal(reached & graph.covered(name))
        found[module] = tuple(sorted({*found.get(module, ()), *at}))
    return found


def _position(
    graph: RevisionGraph,
    module: Module,
    applied: set[str],
    owner_of: dict[str, str],
    via: dict[str, tuple[str, ...]],
) -> Position:
    mine = graph.members.get(module.name, [])
    done = {r for r in mine if r in applied}
    current = tuple(sorted(r for r in done if not any(c in done for c in graph.children[r])))
    pending: int | None = len(mine) - len(done)
    theirs = tuple(r for r, owner in owner_of.items() if owner == module.name)
    if theirs:
        state, current, pending = "unknown revision", (*current, *theirs), None
    elif module.name in via:  # inside (or at the top of) what its revisions replace
        state, current = "behind, via old revisions", (*current, *via[module.name])
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
