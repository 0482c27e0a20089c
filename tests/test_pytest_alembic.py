"""The tools people already use: pytest-alembic's built-in tests, run against this repository
the way its documentation sets up an async environment (an AsyncEngine as `alembic_engine`),
and plain Alembic handed a connection by its caller."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from alembic import command
from alembic.config import Config as AlembicConfig
from pytest_alembic import runner
from pytest_alembic.config import Config
from pytest_alembic.tests import default
from pytest_alembic.tests.experimental import downgrade_leaves_no_trace
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests import pg
from tests.conftest import REPO, Project

BUILT_IN: list[Callable[[Any], None]] = [
    default.test_upgrade,
    default.test_model_definitions_match_ddl,
    default.test_up_down_consistency,
    downgrade_leaves_no_trace.test_downgrade_leaves_no_trace,
]


@pytest.fixture
def alembic_engine(database_url: str) -> Iterator[AsyncEngine]:
    # as pytest-alembic's documentation has it: the default pool, though each step runs in an
    # event loop of its own
    engine = create_async_engine(database_url)
    try:
        yield engine
    finally:
        asyncio.run(engine.dispose())


@pytest.mark.parametrize("built_in", BUILT_IN, ids=lambda test: test.__name__)
def test_pytest_alembic_built_in_tests(
    built_in: Callable[[Any], None], alembic_engine: AsyncEngine
) -> None:
    config = Config.from_raw_config({"file": str(REPO / "alembic.ini")})
    with runner(config=config, engine=alembic_engine) as alembic_runner:
        built_in(alembic_runner)


def test_one_head_per_module_replaces_the_single_head_test(project: Project) -> None:
    # pytest-alembic's test_single_head_revision fails by design on several branches
    data = json.loads(project.migrate("heads", "--json").out)
    assert [len(m["heads"]) for m in data["modules"]] == [1, 1, 1]


def plain_config() -> AlembicConfig:
    return AlembicConfig(str(REPO / "alembic.ini"))


def test_a_transaction_the_caller_owns_is_never_committed(alembic_engine: AsyncEngine) -> None:
    url = alembic_engine.url.render_as_string(hide_password=False)

    async def upgrade_and_roll_back() -> None:
        async with alembic_engine.connect() as connection:
            transaction = await connection.begin()

            def upgrade(sync_connection: Any) -> None:
                config = plain_config()
                config.attributes["connection"] = sync_connection
                command.upgrade(config, "heads")
                assert "users" in {
                    row[0]
                    for row in sync_connection.exec_driver_sql(
                        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                    )
                }

            await connection.run_sync(upgrade)
            await transaction.rollback()
        await alembic_engine.dispose()  # the owner closes its connections in its own loop

    asyncio.run(upgrade_and_roll_back())
    assert pg.tables(url) == set()  # the caller rolled back, and nothing stayed


def test_existing_loggers_are_kept(alembic_engine: AsyncEngine) -> None:
    mine = logging.getLogger("an.application.logger")
    mine.disabled = False
    config = plain_config()
    config.attributes["connection"] = alembic_engine
    command.upgrade(config, "heads")
    assert mine.disabled is False
    url = alembic_engine.url.render_as_string(hide_password=False)
    assert {"users", "agents", "invoices"} <= pg.tables(url)


def test_two_commands_on_one_pooled_async_engine(database_url: str) -> None:
    """pytest-alembic's documented async setup: an AsyncEngine with its default pool, one
    event loop per command; and the engine stays its owner's, in a loop of its own."""
    engine = create_async_engine(database_url)
    try:
        config = plain_config()
        config.attributes["connection"] = engine
        command.upgrade(config, "heads")
        command.downgrade(config, "agents@-1")
        command.upgrade(config, "agents@head")

        async def owners_query() -> set[str]:
            async with engine.connect() as connection:
                rows = await connection.exec_driver_sql("SELECT version_num FROM alembic_version")
                found = {row[0] for row in rows}
            await engine.dispose()  # the owner closes its connections in its own loop
            return found

        assert asyncio.run(owners_query()) == pg.version_rows(database_url)
    finally:
        asyncio.run(engine.dispose())
    assert {"users", "agents", "invoices"} <= pg.tables(database_url)
    assert "description" in pg.columns(database_url, "agents")  # agents' newest, applied again
