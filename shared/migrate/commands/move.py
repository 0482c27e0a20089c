"""`migrate module move`: a module's records (version rows, log entries) from the shared database
to the database of its own that the manifest now names, under both databases' locks.

Written to the new database first (one transaction), then removed from the shared one (another):
a run cut short between the two leaves the records in both, and running the command again
finishes it. The module's tables and their data are the user's to copy (README).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from shared.migrate.commands.run import DEFAULT_OPTIONS, Opened, RunOptions, _migrating
from shared.migrate.database import recorder, state
from shared.migrate.database.target import Placement, Target
from shared.migrate.database.translate import database_errors
from shared.migrate.errors import ConfigError
from shared.migrate.history.graph import RevisionGraph, load_graph
from shared.migrate.history.placed import placed
from shared.migrate.manifest import Settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


@dataclass(frozen=True)
class Moved:
    module: str
    source: str  # host:port/database
    destination: str
    rows: tuple[str, ...]  # the module's version rows in its database
    entries: int  # log entries of the module copied
    copied: bool  # this run wrote them to the new database (False: an earlier run had)
    removed: bool  # this run removed them from the shared database


def move(target: Target, name: str, *, options: RunOptions = DEFAULT_OPTIONS) -> Moved:
    """Move module `name`'s records from the shared database to its own; safe to run again."""
    manifest = target.manifest
    module = manifest.module(name)
    shared_env = manifest.settings.database_url_env
    own_env = manifest.database_env(module)
    if own_env == shared_env:
        raise ConfigError(
            f"module '{module.name}' lives in the shared database (${shared_env}); to move it, "
            f"give it `database_url_env: {module.name.upper()}_DATABASE_URL` in "
            f"{manifest.path.name}, point that variable at its new database, then run this again"
        )
    source, destination = target.url, target.url_of(module)
    if source.display() == destination.display():
        raise ConfigError(
            f"${own_env} and ${shared_env} name the same database ({source.display()}); point "
            f"{own_env} at the module's new database"
        )
    whole = load_graph(manifest)  # the shared database's history as it was written
    graph = placed(whole)
    ends = [Placement(source, (), (shared_env,)), Placement(destination, (), (own_env,))]
    ends.sort(key=lambda p: p.name)  # the one global order of locks

    async def work(opened: list[Opened]) -> Moved:
        [src] = [o for o in opened if o.placement.url is source]
        [dst] = [o for o in opened if o.placement.url is destination]
        return await _move(whole, graph, module.name, src, dst)

    return _migrating(target, "module move", options, work, lock=True, placements=ends)


async def _move(
    whole: RevisionGraph, graph: RevisionGraph, name: str, src: Opened, dst: Opened
) -> Moved:
    settings = graph.manifest.settings
    mine = set(graph.members.get(name, []))
    with database_errors(src.session.url, connected=True):
        src_db = await state.read_state(src.session.conn, settings, full=True)
        logged = await recorder.entries(src.session.conn, settings)
    entries = sorted((e for e in logged if e.module == name), key=lambda e: e.id)
    there = whole.ancestors(src_db.known_rows(whole)) & mine
    with database_errors(dst.session.url, connected=True):
        dst_db = await state.read_state(dst.session.conn, settings, full=True)
    here = graph.ancestors(r for r in dst_db.known_rows(graph) if r in mine)
    moved = Moved(name, src.placement.name, dst.placement.name, (), 0, False, False)
    if not (there or entries):
        # nothing left behind: moved before, or never applied
        return replace(moved, rows=tuple(sorted(graph.maximal(here))))
    started = here or any(e.module == name for e in dst_db.log.values())
    if started and not there <= here:
        raise ConfigError(
            f"module '{name}' has records in both {src.placement.name} and "
            f"{dst.placement.name}, and the first has applied {_listed(there - here)} that "
            "the second has not; compare `migrate log` of each database and set the wrong one "
            "right with `migrate resolve` before moving"
        )
    if not started:  # first step: the new database gets the records
        with database_errors(dst.session.url, connected=True):
            await recorder.ensure_tables(dst.session.conn, settings, dst_db)
            write = _writer(recorder.move_in, settings, graph.maximal(there), set(), entries)
            await dst.session.run_sync(write)
        moved = replace(moved, copied=True, entries=len(entries))
    # second step: the shared database without it (a row it implied stands on its own now)
    known = set(src_db.known_rows(whole))
    shared_env = settings.database_url_env
    env = {m.name: graph.manifest.database_env(m) for m in graph.manifest.modules}
    stays = {
        r for r in whole.ancestors(known) - mine if env[whole.revisions[r].module] == shared_env
    }
    others = {r for r in known - mine if env[whole.revisions[r].module] != shared_env}
    left = graph.maximal(stays) | others
    with database_errors(src.session.url, connected=True):
        await src.session.run_sync(_writer(recorder.move_out, settings, left, known, name))
    return replace(moved, rows=tuple(sorted(graph.maximal(there | here))), removed=True)


def _writer(
    write: Callable[[Connection, Settings, recorder.Record, Any], None],
    settings: Settings,
    wanted: set[str],
    rows: set[str],
    extra: Any,
) -> Callable[[Connection], None]:
    """One transaction that turns the version rows `rows` into `wanted` with `write`."""

    def run(conn: Connection) -> None:
        with conn.begin():
            write(conn, settings, recorder.record(rows, wanted), extra)

    return run


def _listed(revisions: set[str]) -> str:
    return ", ".join(sorted(revisions)[:3])
