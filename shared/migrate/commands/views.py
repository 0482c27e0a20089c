"""`status`, `current`, `log`, `history` and `heads`: the verbs that only read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from shared.migrate.database import recorder, state
from shared.migrate.database.session import (
    Session,
    run_async,
    run_session,
    with_session,
)
from shared.migrate.database.target import Target
from shared.migrate.errors import MigrateError
from shared.migrate.history.graph import Revision, RevisionGraph, load_graph
from shared.migrate.manifest import Manifest

if TYPE_CHECKING:
    pass

T = TypeVar("T")


# ---- read-only views ---------------------------------------------------------------------


def status(target: Target) -> state.Status:
    """`migrate current` and `migrate status`: where each module stands (reads, never writes)."""
    graph = load_graph(target.manifest)
    settings = target.manifest.settings

    async def work(session: Session) -> state.DatabaseState:
        return await state.read_state(session.conn, settings, also=tuple(graph.replacing))

    return state.status(graph, run_session(target.url, "status", work))


def log(target: Target) -> list[recorder.LogEntry]:
    """`migrate log`: the tool's record, newest first."""
    settings = target.manifest.settings

    async def work(session: Session) -> list[recorder.LogEntry]:
        return await recorder.entries(session.conn, settings)

    return run_session(target.url, "log", work)


@dataclass(frozen=True)
class History:
    modules: dict[str, list[Revision]]  # each module's revisions, newest first
    applied: set[str] | None  # None: no database was configured, or it could not be read
    replaces: dict[str, int] = field(default_factory=dict)  # replacing revision -> how many
    replaced: dict[str, list[Revision]] = field(default_factory=dict)  # module -> its replaced


def history(target: Target, branch: str | None = None) -> History:
    """`migrate history`: each module's revisions, newest first, and which are applied when
    a database is configured and answers within a moment (no models are imported)."""
    manifest = target.manifest
    graph = load_graph(manifest)
    modules = [manifest.module(branch)] if branch else list(manifest.modules)
    replaces = {name: len(graph.covered(name)) for name in graph.replacing}
    replaced = {m.name: graph.replaced_of(m.name) for m in modules}
    if manifest.adopted is not None and not branch:  # the adopted history, after the modules
        replaced[manifest.adopted.name] = graph.replaced_of(manifest.adopted.name)
    return History(
        {m.name: graph.of_module(m.name) for m in modules},
        _applied(target, graph),
        replaces,
        {m: revs for m, revs in replaced.items() if revs},
    )


def _applied(target: Target, graph: RevisionGraph) -> set[str] | None:
    """Marks are a bonus, never a reason to fail or to wait."""
    import asyncio

    try:
        url = target.url
        if url.source == "the built-in default":
            return None

        async def read(session: Session) -> state.DatabaseState:
            settings = target.manifest.settings
            return await state.read_state(session.conn, settings, also=tuple(graph.replacing))

        async def quick() -> state.DatabaseState:
            return await asyncio.wait_for(with_session(url, "history", read), timeout=3)

        db = run_async(quick)
    except (MigrateError, TimeoutError):
        return None
    return db.applied(graph)


def heads(manifest: Manifest, branch: str | None = None) -> dict[str, list[str]]:
    """`migrate heads`: each module's head(s) (no database, no models)."""
    graph = load_graph(manifest)
    modules = [manifest.module(branch)] if branch else list(manifest.modules)
    return {m.name: graph.heads(m.name) for m in modules}
