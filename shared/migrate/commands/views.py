"""`status`, `current`, `log`, `history` and `heads`: the verbs that only read."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, TypeVar

from shared.migrate.database import recorder, state
from shared.migrate.database.session import (
    Session,
    run_async,
    run_session,
    with_session,
)
from shared.migrate.database.target import Placement, Target
from shared.migrate.errors import MigrateError
from shared.migrate.history.graph import Revision, RevisionGraph, load_graph
from shared.migrate.manifest import Manifest, Module, Settings

if TYPE_CHECKING:
    pass

T = TypeVar("T")


# ---- read-only views ---------------------------------------------------------------------


def status(target: Target) -> state.Status:
    """`migrate current` and `migrate status`: where each module stands (reads, never writes),
    each in the database it lives in."""
    graph = target.graph()
    settings = target.manifest.settings
    placements = target.placements()
    if len(placements) == 1:
        [placement] = placements

        async def work(session: Session) -> state.DatabaseState:
            return await state.read_state(session.conn, settings, also=tuple(graph.replacing))

        found = state.status(graph, run_session(placement.url, "status", work))
        return replace(found, databases=dict.fromkeys(placement.modules, placement.name))
    return _status_across(graph, _read_all(placements, "status", settings, graph))


def _read_all(
    placements: list[Placement], command: str, settings: Settings, graph: RevisionGraph
) -> list[tuple[Placement, state.DatabaseState]]:
    """Each database's state, read at once (reads only: no lock, nothing migrates)."""
    import asyncio

    async def read(session: Session) -> state.DatabaseState:
        return await state.read_state(session.conn, settings, also=tuple(graph.replacing))

    async def main() -> list[state.DatabaseState]:
        return await asyncio.gather(*(with_session(p.url, command, read) for p in placements))

    return list(zip(placements, run_async(main), strict=True))


def _status_across(
    graph: RevisionGraph, read: list[tuple[Placement, state.DatabaseState]]
) -> state.Status:
    """One status from several databases: each module as its own database has it; a module
    whose rows are (also) in another database is a move not done."""
    manifest = graph.manifest
    env_of = {m.name: manifest.database_env(m) for m in manifest.modules}
    positions: dict[str, state.Position] = {}
    strangers: list[state.Position] = []
    implied: list[str] = []
    unknown: list[str] = []
    databases: dict[str, str] = {}
    moving: set[str] = set()
    for placement, db in read:
        found = state.status(graph, db)
        implied += found.implied_rows
        unknown += found.unknown_rows
        for position in found.positions:
            if not position.in_manifest:
                strangers.append(position)
            elif position.module in placement.modules:
                positions[position.module] = position
                databases[position.module] = placement.name
        for row in db.known_rows(graph):
            if env_of[graph.revisions[row].module] not in placement.envs:
                moving.add(graph.revisions[row].module)
    for name in moving & set(positions):
        position = positions[name]
        state_ = "move unfinished" if position.current else "not moved"
        positions[name] = replace(position, state=state_)
    ordered = [positions[m.name] for m in manifest.modules if m.name in positions]
    return state.Status([*ordered, *strangers], tuple(sorted(implied)), tuple(unknown), databases)


def log(target: Target) -> list[recorder.LogEntry]:
    """`migrate log`: the tool's record, newest first (from every database modules live in)."""
    settings = target.manifest.settings
    placements = target.placements()

    async def work(session: Session) -> list[recorder.LogEntry]:
        return await recorder.entries(session.conn, settings)

    async def main() -> list[list[recorder.LogEntry]]:
        import asyncio

        return await asyncio.gather(*(with_session(p.url, "log", work) for p in placements))

    if len(placements) == 1:
        found = [run_session(placements[0].url, "log", work)]
    else:
        found = run_async(main)
    entries = [
        replace(e, database=p.name) for p, some in zip(placements, found, strict=True) for e in some
    ]
    if len(placements) > 1:
        entries.sort(key=lambda e: e.finished_at, reverse=True)
    return entries


@dataclass(frozen=True)
class History:
    modules: dict[str, list[Revision]]  # each module's revisions, newest first
    applied: set[str] | None  # None: no database was configured, or it could not be read
    databases: dict[str, str | None] = field(default_factory=dict)  # module -> its database
    replaces: dict[str, int] = field(default_factory=dict)  # replacing revision -> how many
    replaced: dict[str, list[Revision]] = field(default_factory=dict)  # module -> its replaced


def history(target: Target, branch: str | None = None) -> History:
    """`migrate history`: each module's revisions, newest first, and which are applied when
    a database is configured and answers within a moment (no models are imported)."""
    manifest = target.manifest
    graph = target.graph()
    modules = [manifest.module(branch)] if branch else list(manifest.modules)
    replaces = {name: len(graph.covered(name)) for name in graph.replacing}
    replaced = {m.name: graph.replaced_of(m.name) for m in modules}
    if manifest.adopted is not None and not branch:  # the adopted history, after the modules
        replaced[manifest.adopted.name] = graph.replaced_of(manifest.adopted.name)
    return History(
        {m.name: graph.of_module(m.name) for m in modules},
        _applied(target, graph),
        {m.name: _database_of(target, m) for m in modules},
        replaces,
        {m: revs for m, revs in replaced.items() if revs},
    )


def _database_of(target: Target, module: Module) -> str | None:
    try:
        url = target.url_of(module)
    except MigrateError:
        return None
    return None if url.source == "the built-in default" else url.display()


def _applied(target: Target, graph: RevisionGraph) -> set[str] | None:
    """Marks are a bonus, never a reason to fail or to wait."""
    import asyncio

    try:
        placements = [p for p in target.placements() if p.url.source != "the built-in default"]
        if not placements:
            return None
        settings = target.manifest.settings

        async def read(session: Session) -> state.DatabaseState:
            return await state.read_state(session.conn, settings, also=tuple(graph.replacing))

        async def quick() -> list[state.DatabaseState]:
            reads = (with_session(p.url, "history", read) for p in placements)
            return await asyncio.wait_for(asyncio.gather(*reads), timeout=3)

        found = run_async(quick)
    except (MigrateError, TimeoutError):
        return None
    return graph.applied(
        {
            r
            for p, db in zip(placements, found, strict=True)
            for r in graph.reached(
                [row for row in db.known_rows(graph) if graph.revisions[row].module in p.modules],
                db.moved,
            )
        }
    )


def heads(manifest: Manifest, branch: str | None = None) -> dict[str, list[str]]:
    """`migrate heads`: each module's head(s) (no database, no models)."""
    graph = load_graph(manifest)
    modules = [manifest.module(branch)] if branch else list(manifest.modules)
    return {m.name: graph.heads(m.name) for m in modules}
