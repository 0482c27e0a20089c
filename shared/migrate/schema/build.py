"""Building modules from their migrations on a shadow database: which module's migrations
created which table, and (the stairway) whether each chosen revision goes up, down without a
trace, and up again."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from shared.migrate.database.catalog import snapshot
from shared.migrate.database.executor import Executor, RevisionFailed
from shared.migrate.history.graph import RevisionGraph
from shared.migrate.history.plans import Step, upgrade_plan
from shared.migrate.manifest import Module

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from shared.db.url import DatabaseURL

T = TypeVar("T")


@dataclass(frozen=True)
class StairFinding:
    module: str
    kind: str  # "downgrade" (fails or leaves a trace) or "reapply" (the second upgrade fails)
    revision: str
    detail: str


@dataclass
class Built:
    created_by: dict[str, str] = field(default_factory=dict)  # table -> module
    findings: list[StairFinding] = field(default_factory=list)
    complete: bool = True  # False: a revision could not be applied again; the build stopped


TABLES_SQL = (
    "SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT LIKE 'pg\\_%' "
    "AND schemaname <> 'information_schema'"
)


def table_key(schema: str, name: str) -> str:
    """A table named as MetaData keys it: bare in the default schema, qualified elsewhere."""
    return name if schema == "public" else f"{schema}.{name}"


def tables(conn: Connection) -> set[str]:
    """Every table outside the system schemas."""
    from sqlalchemy import text

    return {table_key(schema, name) for schema, name in conn.execute(text(TABLES_SQL))}


def bookkeeping(graph: RevisionGraph, qualify: bool = True) -> set[str]:
    """The version and log tables: as `snapshot` names them (`schema.table`), or (`qualify`
    false) as MetaData keys them."""
    settings = graph.manifest.settings
    schema = settings.version_table_schema or ("public" if qualify else None)
    return {f"{schema}.{t}" if schema else t for t in (settings.version_table, settings.log_table)}


def heads_of(graph: RevisionGraph, modules: list[Module]) -> set[str]:
    return {head for m in modules if (head := graph.head(m))}


def build(
    conn: Connection,
    graph: RevisionGraph,
    targets: set[str],
    stairway: set[str] | frozenset[str] = frozenset(),
    applied: set[str] | frozenset[str] = frozenset(),
    created_by: dict[str, str] | None = None,
    data: Mapping[str, Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]]] | None = None,
) -> Built:
    """Bring the database from `applied` to `targets` (in one order that respects every
    dependency), noting the tables each module's revisions created; walk the stairway on the
    revisions in `stairway`. `data` (revision -> "before"/"at" -> table -> rows) is inserted
    right before a revision is applied, and right after, so data migrations run on data."""
    plan = upgrade_plan(graph, set(applied), targets)
    executor = Executor.online(conn, graph, graph.maximal(set(applied)))
    result = Built(created_by=dict(created_by or {}))
    ignored = bookkeeping(graph)
    seen = tables(conn)
    current: str | None = None

    def attribute() -> None:
        nonlocal seen
        now = tables(conn)
        if current is not None:
            for table in now - seen:
                result.created_by.setdefault(table, current)
        seen = now

    seeds = data or {}
    with executor.contexts():
        for step in plan:
            if step.module != current:
                attribute()
                current = step.module
            _seed(conn, seeds.get(step.revision, {}).get("before", {}))
            if step.revision in stairway:
                if not _stair(conn, graph, executor, step, ignored, result):
                    result.complete = False
                    break
            else:
                executor.step(step)
            _seed(conn, seeds.get(step.revision, {}).get("at", {}))
        attribute()
    own = bookkeeping(graph, qualify=False)
    result.created_by = {t: m for t, m in result.created_by.items() if t not in own}
    return result


def _seed(conn: Connection, tables_rows: Mapping[str, Sequence[Mapping[str, Any]]]) -> None:
    from sqlalchemy import text

    for table, rows in tables_rows.items():
        if not rows:
            continue
        columns = list(rows[0])
        quoted = ".".join(f'"{part}"' for part in table.split("."))
        names = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join(f":c{i}" for i in range(len(columns)))
        conn.execute(
            text(f"INSERT INTO {quoted} ({names}) VALUES ({marks})"),
            [{f"c{i}": row[c] for i, c in enumerate(columns)} for row in rows],
        )
    if tables_rows:
        conn.commit()


def _stair(
    conn: Connection,
    graph: RevisionGraph,
    executor: Executor,
    step: Step,
    ignored: set[str],
    result: Built,
) -> bool:
    """Up, down, up again; False when the revision could not be applied again."""
    info = graph.revisions[step.revision]
    where = f"revision {info.revision} ({graph.relative(info.path)})"
    before = snapshot(conn, ignored)
    executor.step(step)  # a revision that cannot go up at all stops the build: an error
    down = Step(step.module, step.revision, step.message, "down")
    try:
        executor.step(down)
    except RevisionFailed as exc:
        result.findings.append(
            StairFinding(
                info.module, "downgrade", info.revision, f"{where}: downgrade fails: {exc.reason}"
            )
        )
        return True
    trace = snapshot(conn, ignored).difference(before)
    if trace:
        result.findings.append(
            StairFinding(
                info.module,
                "downgrade",
                info.revision,
                f"{where} leaves a trace after its downgrade: {', '.join(trace[:8])}"
                + (f" and {len(trace) - 8} more" if len(trace) > 8 else "")
                + "; make the downgrade undo them",
            )
        )
    try:
        executor.step(step)
    except RevisionFailed as exc:
        result.findings.append(
            StairFinding(
                info.module,
                "reapply",
                info.revision,
                f"{where}: the upgrade fails when run again after its downgrade: {exc.reason}",
            )
        )
        return False
    return True


def _template_of(graph: RevisionGraph, base: set[str], role: str) -> str:
    """The template of the state `base` builds: what its revisions run, the repository's
    modules they import, and the role that builds it (another role's template holds objects
    this one may not own)."""
    from shared.migrate.schema.imports import imported_sources
    from shared.migrate.schema.shadow import template_name

    revisions = [graph.revisions[r] for r in base]
    sources = imported_sources(graph.manifest.root, (r.path for r in revisions))
    return template_name(
        [f"{r.revision} {r.module} {r.checksum}" for r in revisions]
        + [f"imports {line}" for line in sources]
        + [f"role {role}"]
    )


async def on_shadow(
    server: DatabaseURL,
    graph: RevisionGraph,
    targets: set[str],
    command: str,
    then: Callable[[Connection, Built], T],
    stairway: set[str] | frozenset[str] = frozenset(),
) -> T:
    """A shadow database brought to `targets` (through the template of everything below the
    stairway, made on the first run), then `then(connection, built)` on it."""
    from shared.migrate.database import recorder
    from shared.migrate.database.session import Session, with_session
    from shared.migrate.schema.shadow import Shadow, in_shadow, session_settings

    settings = graph.manifest.settings
    session = session_settings(settings)
    base = graph.ancestors(targets) - graph.descendants(stairway)
    template = _template_of(graph, base, server.user or "") if base else None
    tables_sql = recorder.create_tables(settings, version=False, log=False, log_current=False)

    async def work(shadow: Shadow) -> T:
        created_by, applied = shadow.created_by, base
        if created_by is None:
            applied = set()
            if base:

                async def first(session: Session) -> Built:
                    await session.conn.execute(tables_sql)
                    return await session.run_sync(lambda conn: build(conn, graph, base))

                below = await with_session(shadow.url, command, first, settings=session)
                await shadow.keep(below.created_by)
                created_by, applied = below.created_by, base

        async def second(session: Session) -> T:
            await session.conn.execute(tables_sql)

            def run(conn: Connection) -> T:
                return then(conn, build(conn, graph, targets, stairway, applied, created_by))

            return await session.run_sync(run)

        return await with_session(shadow.url, command, second, settings=session)

    try:
        return await in_shadow(server, command, work, template, keep=settings.shadow_templates)
    except RevisionFailed as exc:  # said as for a deploy ("... are committed"): it was not one
        exc.args = (
            f"{exc.where} fails on a shadow database: {exc.reason}; nothing was changed in the "
            "database being migrated; fix the file",
        )
        raise
