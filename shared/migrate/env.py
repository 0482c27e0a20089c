"""The body of `alembic/env.py`, shared by `migrate` and plain `alembic`.

Offline (`--sql`) renders SQL without connecting. Online it uses the connection `migrate` put in
`config.attributes["connection"]`, or (plain `alembic`) opens one through asyncpg itself.
Each revision commits in its own transaction. Models are imported only where they are needed:
plain `alembic` always loads them; `migrate` says so through `config.attributes["load_models"]`.
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig
from pathlib import Path
from typing import Any

from alembic import context
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from shared.db.url import resolve_url, to_async_url
from shared.migrate.discovery import discover
from shared.migrate.manifest import MANIFEST_NAME, Manifest, find_manifest, load_manifest


def run_env() -> None:
    config = context.config
    if config.config_file_name and "manifest" not in config.attributes:
        fileConfig(config.config_file_name)  # plain `alembic`: its logging from alembic.ini
    manifest = _manifest(config)
    opts: dict[str, Any] = {
        "version_table": manifest.settings.version_table,
        "transaction_per_migration": True,
        "compare_type": True,
        "compare_server_default": True,
        "target_metadata": _metadata(config, manifest),
        **config.attributes.get("configure", {}),
    }
    if context.is_offline_mode():
        context.configure(dialect_name="postgresql", literal_binds=True, **opts)
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_online(connection, opts)
    else:
        asyncio.run(_run_plain_alembic(manifest, opts))


def _run_online(connection: Connection, opts: dict[str, Any]) -> None:
    context.configure(connection=connection, **opts)
    with context.begin_transaction():
        context.run_migrations()
    if connection.in_transaction():
        # a step-less run leaves the read of the version table open; never carry it over
        connection.commit()


async def _run_plain_alembic(manifest: Manifest, opts: dict[str, Any]) -> None:
    url = to_async_url(resolve_url(None, manifest.settings.database_url_env))
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_online, opts)
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


def _metadata(config: Config, manifest: Manifest) -> Any:
    if not config.attributes.get("load_models", True):
        return None
    return discover(manifest).metadata
