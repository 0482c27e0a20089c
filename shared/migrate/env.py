"""The body of `alembic/env.py`: what plain `alembic` and pytest-alembic run.

`migrate` itself runs revisions through its own executor; this env gives plain Alembic the same
database URL handling, every module's models, the same schemas and bookkeeping tables, and one
transaction per revision. A connection (or Engine, AsyncEngine) handed over in
`config.attributes["connection"]`, as pytest-alembic does, is used as is: a transaction its
caller opened is never committed here, and an AsyncEngine is given back with an empty pool.
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig
from pathlib import Path
from typing import Any

from alembic import context
from alembic.config import Config
from sqlalchemy.engine import Connection

from shared.db.connect import async_engine
from shared.db.url import resolve_url
from shared.migrate.manifest import MANIFEST_NAME, Manifest, find_manifest, load_manifest
from shared.migrate.schema.discovery import discover


def run_env() -> None:
    config = context.config
    if config.config_file_name and "manifest" not in config.attributes:
        # alembic.ini's logging, leaving the loggers the caller (a test suite) set up alone
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    manifest = _manifest(config)
    opts = options(manifest, discover(manifest).metadata)
    if context.is_offline_mode():
        context.configure(dialect_name="postgresql", literal_binds=True, **opts)
        with context.begin_transaction():
            context.run_migrations()
        return
    given = config.attributes.get("connection")
    if given is None:
        if manifest.split:  # it would put every module in the one database it drives
            from alembic.util import CommandError

            raise CommandError(
                "migrations.yaml puts modules in databases of their own (database_url_env); "
                "plain alembic drives one database: run migrate up"
            )
        url = resolve_url(None, manifest.settings.database_url_env)
        asyncio.run(_run_engine(async_engine(url, application_name="alembic"), opts))
    elif isinstance(given, Connection):
        _run(given, opts)
    elif hasattr(given, "sync_engine"):  # an AsyncEngine (pytest-alembic's async setup)
        asyncio.run(_run_engine(given, opts, borrowed=True))
    elif hasattr(given, "run_sync"):  # an AsyncConnection
        raise TypeError("pass an AsyncEngine or a Connection, not an AsyncConnection")
    else:  # an Engine, or anything with connect() that yields a Connection
        with given.connect() as connection:
            _run(connection, opts)


def options(manifest: Manifest, metadata: Any) -> dict[str, Any]:
    """Alembic's configure() options for this repository: plain autogenerate compares every
    schema the models use and never proposes to drop the version or log table."""
    settings = manifest.settings
    schemas = {t.schema for t in metadata.tables.values() if t.schema}
    schemas |= {m.schema for m in manifest.modules if m.schema}
    bookkeeping = {settings.version_table, settings.log_table}

    def include_name(name: str | None, type_: str, parents: Any) -> bool:
        if type_ == "schema":
            return name is None or name in schemas
        if type_ == "table":
            return not (
                parents.get("schema_name") == settings.version_table_schema and name in bookkeeping
            )
        return True

    return {
        "version_table": settings.version_table,
        "version_table_schema": settings.version_table_schema,
        "transaction_per_migration": True,
        "compare_type": True,
        "compare_server_default": True,
        "include_schemas": bool(schemas),
        "include_name": include_name,
        "target_metadata": metadata,
    }


def _run(connection: Connection, opts: dict[str, Any]) -> None:
    owned = not connection.in_transaction()  # a caller's transaction is theirs to end
    context.configure(connection=connection, **opts)
    _refuse_replaced(
        connection, _manifest(context.config), context.get_context().get_current_heads()
    )
    if owned and connection.in_transaction():
        # that read began a transaction: left open, Alembic would take it for the caller's and
        # run every revision inside it (no transaction_per_migration, no autocommit_block())
        connection.commit()
    wrapped = _newest_first(context.get_context().opts)
    if wrapped:  # configure() takes the command's step function as `fn`
        context.configure(connection=connection, **opts, **wrapped)
    with context.begin_transaction():
        context.run_migrations()
    if owned and connection.in_transaction():
        # a step-less run leaves the read of the version table open; never carry it over
        connection.commit()


def _refuse_replaced(connection: Connection, manifest: Manifest, rows: tuple[str, ...]) -> None:
    """A database still inside revisions that others replaced (a squash, an adopted history)
    is `migrate up`'s to move: plain Alembic does not see the replaced files, and reads such a
    database as if it were moved already; it must not guess."""
    from alembic.util import CommandError

    from shared.migrate.database.state import moved_onto
    from shared.migrate.history.graph import load_graph

    if not rows:
        return
    graph = load_graph(manifest)
    if not graph.replacing:
        return
    moved = moved_onto(connection, manifest.settings, sorted(graph.replacing))
    reached = graph.reached(rows, moved.__contains__)
    inside = sorted(graph.inside(reached))
    if inside:
        at = ", ".join(sorted(graph.maximal(reached & graph.covered(inside[0]))))
        raise CommandError(
            f"the database is at revision {at}, which {', '.join(inside)} replaced; run "
            "`migrate up` first (it moves the database onto the revisions that replace it), "
            "then alembic"
        )


def _newest_first(given: dict[str, Any]) -> dict[str, Any]:
    """Plain Alembic on a history of one branch per module, for tools that walk it as one
    line (pytest-alembic): the command's step function (`fn`, which configure() takes),
    wrapped so that

    - the version rows reach the command newest first (history order), so "the first row"
      is the revision applied last, not another module's;
    - `downgrade D`, where D is the revision just before the newest one in history order but
      in another module (Alembic refuses it, or does nothing), takes back that newest one."""
    from alembic.runtime.migration import MigrationStep

    steps = given.get("fn")
    script = given.get("script") or context.script
    if steps is None or script is None:
        return {}

    def ordered(heads: Any, ctx: Any) -> Any:
        position: dict[str, int] = {}
        if len(heads) > 1:
            position = _positions(script)
            heads = tuple(sorted(heads, key=lambda h: position.get(h, len(position))))
        if getattr(steps, "__name__", "") == "downgrade" and heads:  # alembic.command's
            destination = context.get_revision_argument()
            target = _one_back(script, heads, destination, position or _positions(script))
            if target is not None:
                revisions = script.iterate_revisions(heads, target, select_for_downgrade=True)
                return [
                    MigrationStep.downgrade_from_script(script.revision_map, revision)
                    for revision in revisions
                ]
        return steps(heads, ctx)

    return {"fn": ordered}


def _positions(script: Any) -> dict[str, int]:
    """Each revision's place in history order, newest first (0)."""
    return {s.revision: i for i, s in enumerate(script.walk_revisions())}


def _one_back(
    script: Any, heads: tuple[str, ...], destination: Any, position: dict[str, int]
) -> str | None:
    """Where to downgrade to so that only the newest applied revision is taken back, when the
    destination comes just before it in history order; else None."""
    if not isinstance(destination, str) or destination not in position or not heads:
        return None
    applied = {r.revision for r in script.revision_map.iterate_revisions(heads, "base")}
    newer = {r for r in applied if position.get(r, len(position)) < position[destination]}
    if destination not in applied or newer != {heads[0]}:
        return None
    revision = script.get_revision(heads[0])
    down = revision.down_revision
    parents = (down,) if isinstance(down, str) else tuple(down or ())
    if parents:
        return str(parents[0])
    labels = sorted(revision.branch_labels)
    return f"{labels[0]}@base" if labels else None


async def _run_engine(engine: Any, opts: dict[str, Any], borrowed: bool = False) -> None:
    """Run on a connection of `engine` in this command's event loop, which ends with it.

    A caller's engine (`borrowed`) is handed over as SQLAlchemy says an AsyncEngine moves
    between loops: its pool is replaced first (what it holds belongs to its owner's loops, and
    is left to them), and this loop's connections are closed in it before it ends, so the
    engine goes back with an empty pool, usable in the owner's loop and by the next command."""
    if borrowed:
        await engine.dispose(close=False)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run, opts)
    finally:
        await engine.dispose()


def _manifest(config: Config) -> Manifest:
    manifest = config.attributes.get("manifest")
    if isinstance(manifest, Manifest):
        return manifest
    # plain `alembic`: the manifest beside alembic.ini
    start = Path(config.config_file_name).resolve().parent if config.config_file_name else Path()
    path = start / MANIFEST_NAME
    return load_manifest(path if path.is_file() else find_manifest(Path.cwd()))
