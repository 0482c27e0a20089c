"""`migrate baseline [-b X]`: a module's first revision written from a database that has its
tables but no history, proved on a shadow database; `--mark` records it as applied on a
database once its catalog matches (Flyway's baseline, verified)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.migrate.commands.replace import (
    Staged,
    Written,
    discover_models,
    model_drift,
    reloaded,
    wrapped,
    write_baselines,
)
from shared.migrate.database.session import run_async
from shared.migrate.database.target import Target
from shared.migrate.errors import ConfigError
from shared.migrate.history.graph import RevisionGraph, load_graph
from shared.migrate.manifest import Manifest

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from shared.migrate.database.session import Session
    from shared.migrate.schema.claims import Claims
    from shared.migrate.schema.proof import Picture


@dataclass(frozen=True)
class Baselined:
    baselines: list[Written]
    drift: list[tuple[str, str]]  # (module, how its models differ from the database)
    unclaimed: list[str]  # objects of the database no module claims: left alone
    notes: list[str]
    objects: int


def baseline(
    target: Target,
    module_name: str | None = None,
    assign: list[str] | None = None,
    shadow_url: str | None = None,
) -> Baselined:
    """`migrate baseline [-b X]`: the first revision of X (or of every module without one)
    written from the database's own schema of its tables, proved on a shadow to build it."""
    from shared.migrate.database.catalog import Catalog, snapshot
    from shared.migrate.database.holdings import Holdings, read_holdings
    from shared.migrate.database.session import run_session
    from shared.migrate.schema import claims, proof
    from shared.migrate.schema.build import bookkeeping

    manifest = target.manifest
    assigned = claims.parse_assignments(manifest, assign or [])
    graph = load_graph(manifest)
    ignored = bookkeeping(graph)

    async def read(session: Session) -> tuple[Holdings, Catalog]:
        return await session.run_sync(
            lambda conn: (read_holdings(conn, ignored), snapshot(conn, ignored))
        )

    holdings, catalog = run_session(target.url, "baseline", read)
    source = proof.Picture(catalog, holdings)
    discovery = discover_models(manifest)
    models = {claims.catalog_name(t): m for t, m in discovery.owners.items()}
    claimed = claims.claim(manifest, holdings, models, assigned, what="the database")
    chosen = _baselined_modules(manifest, graph, claimed, module_name)
    needs = claims.dependencies(manifest, holdings, claimed)
    heads = {m.name: h for m in manifest.modules if (h := graph.head(m)) is not None}
    for module in chosen:
        for other in needs.get(module, set()):
            if other not in chosen and other not in heads:
                raise ConfigError(
                    f"module '{module}' needs objects of module '{other}', which has no "
                    f"revisions; baseline both (migrate baseline, without -b)"
                )
    picked = claims.Claims(
        {t: m for t, m in claimed.tables.items() if m in chosen},
        {k: m for k, m in claimed.things.items() if m in chosen},
    )
    staged = Staged()
    try:
        written = write_baselines(
            manifest,
            staged,
            source,
            picked,
            needs,
            replaces=(),
            note=_baseline_note(target),
            message="{module} baseline",
            heads=heads,
            rows=False,
        )
        fresh = reloaded(manifest, written[0].path)

        def check(conn: Connection, seen: Picture) -> list[tuple[str, str]]:
            found: list[str] = []
            for one in written:
                tables, things = picked.of(one.module)
                expected = proof.objects_of(source, tables, things)
                found += seen.catalog.around(expected).difference(expected)
            if found:
                raise proof.ProofFailed(
                    f"the baselines do not build what the database has: {proof.listed(found)}; "
                    "nothing was written (report it: the writer missed something)"
                )
            return [d for d in model_drift(conn, fresh, discovery, picked) if d[0] in chosen]

        seen, drift = run_async(
            lambda: proof.prove(
                target.shadow_server(shadow_url),
                fresh,
                {w.revision for w in written},
                "baseline",
                check,
            )
        )
    except BaseException:
        staged.undo()
        raise
    objects = sum(len(proof.objects_of(source, *picked.of(w.module)).objects) for w in written)
    del seen
    return Baselined(written, drift, claimed.unclaimed, claimed.notes, objects)


def _baselined_modules(
    manifest: Manifest, graph: RevisionGraph, claimed: Claims, module_name: str | None
) -> list[str]:
    owning = set(claimed.modules())
    if module_name is not None:
        module = manifest.module(module_name)
        if graph.members.get(module.name):
            raise ConfigError(
                f"module '{module.name}' has revisions already; a baseline is a module's first "
                "revision, for a database whose tables no revision created"
            )
        if module.name not in owning:
            raise ConfigError(
                f"the database has no table of module '{module.name}' (its models define "
                f"{', '.join(sorted(_model_tables(manifest, module.name))) or 'none'}); "
                "nothing to baseline"
            )
        return [module.name]
    chosen = [
        m.name for m in manifest.ordered() if m.name in owning and not graph.members.get(m.name)
    ]
    if not chosen:
        raise ConfigError(
            "every module that owns tables in the database has revisions already; there is "
            "nothing to baseline"
        )
    return chosen


def _model_tables(manifest: Manifest, module: str) -> set[str]:
    return discover_models(manifest).tables_of(module)


def _baseline_note(target: Target) -> str:
    return wrapped(
        f"Written by `migrate baseline` from the schema of {target.url.display()}, and "
        "proved on a shadow database to build it. `migrate baseline --mark` records it as "
        "applied on a database that has these tables, once it has checked that the database "
        "has exactly what this revision builds (the catalog kept beside it)."
    )


@dataclass(frozen=True)
class Marked:
    revisions: tuple[str, ...]


def mark(target: Target, module_name: str | None = None, lock_wait: float | None = None) -> Marked:
    """`migrate baseline --mark [-b X]`: record the baselines as applied on this database,
    once its catalog matches what each builds."""
    from shared.migrate.commands.run import under_lock
    from shared.migrate.database import marking, state

    manifest = target.manifest
    graph = load_graph(manifest)
    modules = [manifest.module(module_name).name] if module_name else manifest.names
    names = marking.baselines(graph, modules)
    if module_name and not names:
        raise ConfigError(
            f"module '{modules[0]}' has no baseline to mark; write one with "
            f"migrate baseline -b {modules[0]}"
        )

    async def work(session: Session, db: state.DatabaseState) -> Marked:
        db = await state.read_state(session.conn, manifest.settings, full=True)
        return Marked(await marking.mark_baselines(session, graph, db, names))

    return under_lock(target, "baseline", work, lock_wait)
