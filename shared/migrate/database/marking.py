"""`migrate baseline --mark`: record a module's baseline as applied on a database that already
has its tables (Flyway's baseline, verified: Django's --fake-initial is not).

Under the migration lock, in one transaction: the database's catalog is held against the one
kept beside each baseline (`<file>.catalog.json`); a difference names each object and records
nothing; else the baselines go into the version table and the log (action `baseline`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.migrate.database import recorder
from shared.migrate.database.executor import MoveRefused, kept_differences, listed
from shared.migrate.database.state import DatabaseState
from shared.migrate.errors import RevisionError
from shared.migrate.history.graph import RevisionGraph
from shared.migrate.history.revisionfile import expected_path, read_expected

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from shared.migrate.database.session import Session

BASELINE = "baseline"


def baselines(graph: RevisionGraph, modules: list[str]) -> list[str]:
    """The baselines of `modules`: first revisions with a kept catalog that replace nothing."""
    found = []
    for module in modules:
        for rev in graph.of_module(module):
            if not rev.parents and not rev.replaces and read_expected(rev.path) is not None:
                found.append(rev.revision)
    return graph.ordered(found)


async def mark_baselines(
    session: Session, graph: RevisionGraph, db: DatabaseState, names: list[str]
) -> tuple[str, ...]:
    """Record `names` as applied, once the database is what each builds."""
    applied = db.applied(graph)
    names = [n for n in names if n not in applied]
    if not names:
        return ()
    missing = sorted(graph.ancestors(names) - set(names) - applied)
    if missing:
        first = graph.revisions[missing[0]]
        raise RevisionError(
            f"baseline {names[0]} depends on revision {first.revision} of module "
            f"'{first.module}', which this database has not applied; bring that module up "
            f"first (migrate up -b {first.module}), or baseline it too"
        )
    settings = graph.manifest.settings
    await recorder.ensure_tables(session.conn, settings, db)
    rows = set(db.known_rows(graph))
    after = graph.maximal(applied | graph.ancestors(names))
    entries = tuple(
        recorder.Entry(
            graph.revisions[name].module,
            name,
            "up",
            graph.revisions[name].checksum,
            action=BASELINE,
            reason=f"verified against {expected_path(graph.revisions[name].path).name}",
        )
        for name in names
    )
    change = recorder.record(rows, after, entries)

    def write(conn: Connection) -> None:
        with conn.begin():
            _verify(conn, graph, names)
            recorder.write(conn, settings, change)

    await session.run_sync(write)
    return tuple(names)


def _verify(conn: Connection, graph: RevisionGraph, names: list[str]) -> None:
    for info, differences in kept_differences(conn, graph, names):
        raise MoveRefused(
            f"module '{info.module}': the database is not what baseline {info.revision} "
            f"({graph.relative(info.path)}) builds: {listed(differences)}; nothing was recorded; "
            "make the database match, or write the baseline again from this database (delete "
            f"the file, then migrate baseline -b {info.module})"
        )
