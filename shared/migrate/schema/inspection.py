"""`owners` and `check`: every module built from its migrations on a shadow database and
compared with its models, the database itself read once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.migrate.database.session import Session, run_async, with_session
from shared.migrate.database.state import DatabaseState, read_state
from shared.migrate.history import index
from shared.migrate.history.graph import RevisionGraph, load_graph
from shared.migrate.schema import checks
from shared.migrate.schema.build import (
    TABLES_SQL,
    Built,
    bookkeeping,
    heads_of,
    on_shadow,
    table_key,
)
from shared.migrate.schema.databases import crossings
from shared.migrate.schema.discovery import Discovery, discover
from shared.migrate.schema.ownership import OwnershipMap, ownership, undeclared_references

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from shared.migrate.database.target import Target
    from shared.migrate.schema.checks import Finding


@dataclass(frozen=True)
class Inspected:
    built: Built
    drift: list[Finding]
    database: DatabaseState
    tables: set[str]


def owners(target: Target, shadow_url: str | None) -> OwnershipMap:
    graph = load_graph(target.manifest)
    discovery = discover(target.manifest)
    seen = _inspect(target, graph, discovery, shadow_url, drift=False, stairway=set())
    return _ownership(graph, discovery, seen)


def check(
    target: Target,
    shadow_url: str | None,
    *,
    all_revisions: bool,
    modules: set[str] | None = None,
) -> tuple[list[Finding], list[Finding]]:
    """The findings, and notes (what the database says about the replaced folders); with
    `modules` (the modules of one database, `target` pointed at it), only theirs and those of
    no module."""
    manifest = target.manifest
    revisions, problems = index.scan_all(manifest)
    findings = checks.file_findings(manifest, problems)
    if problems:
        return findings, []  # the graph cannot be built until the files are sorted out
    graph = RevisionGraph(manifest, revisions)
    findings += checks.head_findings(graph)
    if any(f.kind == "heads" for f in findings):
        return findings, []
    discovery = discover(manifest)
    findings += checks.revision_dependency_findings(graph)
    allowed = {
        m.name: {d.name for d in manifest.dependency_closure(m.name)} for m in manifest.modules
    }
    findings += checks.dependency_findings(
        undeclared_references(discovery.metadata, discovery.owners, allowed)
    )
    findings += checks.crossing_findings(manifest, crossings(manifest, discovery))
    stairway: set[str] | None = set(graph.revisions) if all_revisions else None
    seen = _inspect(
        target, graph, discovery, shadow_url, drift=True, stairway=stairway, modules=modules
    )
    findings += checks.stairway_findings(seen.built)
    if seen.built.complete:
        findings += checks.ownership_findings(_ownership(graph, discovery, seen))
        findings += seen.drift
    findings += checks.integrity_findings(graph, seen.database)
    findings += _replacement_findings(target, graph, shadow_url)
    notes = checks.replaced_notes(graph, seen.database)
    return [f for f in findings if _mine(f, modules)], [n for n in notes if _mine(n, modules)]


def _mine(finding: Finding, modules: set[str] | None) -> bool:
    return modules is None or finding.module in modules or finding.module == "-"


def _replacement_findings(
    target: Target, graph: RevisionGraph, shadow_url: str | None
) -> list[Finding]:
    """A squash, baseline or adopted baseline that no longer builds the catalog kept beside
    it, or whose replaced revisions no longer do (each built on a shadow of its own)."""
    from shared.migrate.schema import proof

    kept = proof.kept_catalogs(graph)
    if not kept:
        return []
    server = target.shadow_server(shadow_url)
    tops = {t for name in kept for t in graph.revisions[name].replaces if t in graph.revisions}

    replacing = [name for name in kept if name in graph.replacing]
    before = graph.before(replacing) if tops else graph

    async def both() -> tuple[proof.Picture, proof.Picture | None]:
        now = await proof.built_at(server, graph, set(kept), "check")
        old = await proof.built_at(server, before, tops, "check") if tops else None
        return now, old

    now, old = run_async(both)
    return proof.kept_findings(graph, kept, now, old)


def _ownership(graph: RevisionGraph, discovery: Discovery, seen: Inspected) -> OwnershipMap:
    return ownership(
        discovery.owners, seen.built.created_by, seen.tables, bookkeeping(graph, qualify=False)
    )


def _inspect(
    target: Target,
    graph: RevisionGraph,
    discovery: Discovery,
    shadow_url: str | None,
    *,
    drift: bool,
    stairway: set[str] | None,
    modules: set[str] | None = None,
) -> Inspected:
    """Read the database (its state and tables), then build everything on a shadow; the
    stairway runs on `stairway`, or (None) on the revisions the database has not applied."""
    manifest = graph.manifest
    server = target.shadow_server(shadow_url)

    async def main() -> Inspected:
        async def read(session: Session) -> tuple[DatabaseState, set[str]]:
            db = await read_state(session.conn, manifest.settings, full=True)
            rows = await session.conn.fetch(TABLES_SQL)
            return db, {table_key(schema, name) for schema, name in rows}

        db, found = await with_session(target.url, "check", read)
        pending = graph.pending(db.reached(graph)) - graph.replaced  # (old ranges: not walked)
        steps = pending if stairway is None else stairway
        if modules is not None:  # one database's check: its own modules' revisions
            steps = {r for r in steps if graph.revisions[r].module in modules}
        built, drifted = await on_shadow(
            server,
            graph,
            heads_of(graph, list(manifest.modules)),
            "check",
            lambda conn, built: (built, _drift(conn, graph, discovery, built) if drift else []),
            stairway=steps,
        )
        return Inspected(built, drifted, db, found)

    return run_async(main)


def _drift(
    conn: Connection, graph: RevisionGraph, discovery: Discovery, built: Built
) -> list[Finding]:
    """Every module's models against what its migrations built, in one comparison."""
    from shared.migrate.schema.autogen import compare

    if not built.complete:
        return []
    owner_of = {**built.created_by, **discovery.owners}
    schemas = discovery.schemas() | {m.schema for m in graph.manifest.modules if m.schema}
    script = compare(conn, discovery, set(owner_of), schemas)
    if script is None or script.upgrade_ops is None:
        return []
    return checks.drift_findings(script.upgrade_ops, owner_of)
