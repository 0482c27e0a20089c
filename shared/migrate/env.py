"""The body of `alembic/env.py`: what plain `alembic` and pytest-alembic run.

`migrate` itself runs revisions through its own executor; this env gives plain Alembic the same
database URL handling, every module's models, the same schemas and bookkeeping tables, and one
transaction per revision. A connection (or Engine, AsyncEngine) handed over in
`config.attributes["connection"]`, as pytest-alembic does, is used as is: a transaction its
caller opened is never committed here.
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
from shared.migrate.discovery import discover
from shared.migrate.manifest import MANIFEST_NAME, Manifest, find_manifest, load_manifest


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
        url = resolve_url(None, manifest.settings.database_url_env)
        asyncio.run(_run_engine(async_engine(url, application_name="alembic"), opts))
    elif isinstance(given, Connection):
        _run(given, opts)
    elif hasattr(given, "sync_engine"):  # an AsyncEngine (pytest-alembic's async setup)
        asyncio.run(_run_engine(given, opts, dispose=False))
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
    with context.begin_transaction():
        context.run_migrations()
    if owned and connection.in_transaction():
        # a step-less run leaves the read of the version table open; never carry it over
        connection.commit()


async def _run_engine(engine: Any, opts: dict[str, Any], dispose: bool = True) -> None:
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run, opts)
    finally:
        if dispose:
            await engine.dispose()


def _manifest(config: Config) -> Manifest:
    manifest = config.attributes.get("manifest")
    if isinstance(manifest, Manifest):
        return manifest
    # plain `alembic`: the manifest beside alembic.ini
    start = Path(config.config_file_name).resolve().parent if config.config_file_name else Path()
    path = start / MANIFEST_NAME
    return load_manifest(path if path.is_file() else find_manifest(Path.cwd()))
