"""The pytest plugin, as another team meets it: a throwaway project that installs this one by
path, writes the README's conftest, and runs the standard migration tests per module; and the
stairway of `migrate check`, which goes down as well as up."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from shared.db.url import DatabaseURL
from shared.migrate.manifest import Manifest
from shared.migrate.testing.migrator import Migrator
from tests import pg
from tests.conftest import BIN, REPO, Project, Run, add_a_core_table_to_billing, copy_project

README_FILES = re.compile(r"```python\n# (tests/\w+\.py)\n(.*?)```", re.DOTALL)


def uv() -> str:
    found = shutil.which("uv") or str(REPO / ".bootstrap" / "bin" / "uv")
    assert Path(found).exists(), "uv is needed to install the project by path (make install)"
    return found


@pytest.fixture(scope="session")
def team_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment of its own, with this project installed by path, as a service's
    repository would have it."""
    venv = tmp_path_factory.mktemp("team") / "venv"
    subprocess.run([uv(), "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    installed = subprocess.run(
        [
            uv(),
            "pip",
            "install",
            "-q",
            "--python",
            str(venv / "bin" / "python"),
            str(REPO),
            "pytest",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "UV_NO_PROGRESS": "1"},
    )
    assert installed.returncode == 0, installed.stderr
    return venv


@pytest.fixture
def team(tmp_path: Path, team_venv: Path, database_url: str) -> Iterator[Project]:
    """The example modules in a repository of their own, with the README's conftest."""
    root = tmp_path / "team"
    root.mkdir()
    copy_project(root)
    (root / "tests").mkdir()
    files = dict(README_FILES.findall((REPO / "README.md").read_text()))
    assert set(files) == {"tests/conftest.py", "tests/test_migrations.py"}
    # this project's own suite runs with the same conftest and test
    fixture = files["tests/conftest.py"].split("import pytest\n", 1)[1].strip()
    assert fixture in (REPO / "tests" / "conftest.py").read_text()
    assert files["tests/test_migrations.py"] in (REPO / "tests" / "test_migrations.py").read_text()
    for name, text in files.items():
        (root / name).write_text(text)
    (root / "pytest.ini").write_text("[pytest]\ntestpaths = tests\n")
    yield Project(root, database_url)


def pytest_in(team: Project, venv: Path, server: str, *args: str) -> Run:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["MIGRATE_TEST_DATABASE_URL"] = server
    done = subprocess.run(
        [str(venv / "bin" / "pytest"), "-v", "-p", "no:cacheprovider", *args],
        cwd=team.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def test_the_plugin_in_another_teams_project(
    team: Project, team_venv: Path, server_url: str
) -> None:
    quiet = pytest_in(team, team_venv, server_url)  # opt-in: nothing of ours without the flag
    assert quiet.code == 0, quiet.out + quiet.err
    assert "test_stairway[" not in quiet.out
    assert "test_a_data_migration_with_data PASSED" in quiet.out

    full = pytest_in(team, team_venv, server_url, "--migrate-tests")
    assert full.code == 0, full.out[-3000:] + full.err[-2000:]
    for test in (
        "test_single_head",
        "test_upgrade",
        "test_models_match_migrations",
        "test_stairway",
        "test_dependencies_declared",
        "test_lint",
    ):
        for module in ("users", "agents", "billing"):
            assert f"{test}[{module}] PASSED" in full.out, (test, module)

    # a downgrade that forgets to drop its enum type
    [first] = [p for p in team.versions("billing") if "create_invoices" in p.name]
    forgot = "    op.execute('DROP TYPE IF EXISTS \"invoice_status\"')\n"
    assert forgot in first.read_text()
    first.write_text(first.read_text().replace(forgot, ""))
    # a NOT NULL column without a default: fine on an empty table, not on the conftest's rows
    team.write_revision(
        "users",
        "e1e500000001",
        "op.add_column('users', sa.Column('nickname', sa.Text(), nullable=False))",
        "op.drop_column('users', 'nickname')",
    )
    broken = pytest_in(
        team, team_venv, server_url, "--migrate-tests", "-k", "stairway or upgrade or lint"
    )
    assert broken.code == 1
    # lint: the new NOT NULL column breaks the INSERTs of the code still running
    assert "test_lint[users] FAILED" in broken.out
    assert "adding-required-field at services/users/migrations/e1e500000001" in broken.out
    assert "test_lint[agents] PASSED" in broken.out
    assert "test_stairway[billing] FAILED" in broken.out
    assert "+ type invoice_status" in broken.out
    assert "test_stairway[agents] PASSED" in broken.out
    assert "test_upgrade[users] PASSED" in broken.out  # no rows, no problem
    assert "test_stairway[users] FAILED" in broken.out
    assert "e1e500000001" in broken.out and 'column "nickname"' in broken.out
    check = team.migrate("check", "--json")
    assert check.code == 1
    found = json.loads(check.out)["findings"]
    kinds = {(f["module"], f["kind"]) for f in found}
    assert ("billing", "downgrade") in kinds
    detail = next(f["detail"] for f in found if f["kind"] == "downgrade")
    assert "+ type invoice_status" in detail and first.name in detail


def test_check_goes_down_as_well_as_up(project: Project) -> None:
    assert project.migrate("up").code == 0
    project.write_revision(
        "agents",
        "d0e500000001",
        "op.execute(\"CREATE TYPE agent_mood AS ENUM ('calm', 'busy')\")\n"
        "op.add_column('agents', sa.Column('mood', sa.Enum(name='agent_mood', create_type=False)))",
        "op.drop_column('agents', 'mood')",  # forgets DROP TYPE agent_mood
    )
    result = project.migrate("check", "--json")
    assert result.code == 1
    found = json.loads(result.out)["findings"]
    downgrade = [f for f in found if f["kind"] == "downgrade"]
    assert [(f["module"]) for f in downgrade] == ["agents"]
    assert "revision d0e500000001" in downgrade[0]["detail"]
    assert "+ type agent_mood" in downgrade[0]["detail"]
    reapply = next(f["detail"] for f in found if f["kind"] == "reapply")
    # CREATE TYPE fails the second time: the database's message, not a deploy's advice
    assert 'the upgrade fails when run again after its downgrade: type "agent_mood"' in reapply
    assert "committed" not in reapply and "run it again" not in reapply
    # applied in the database: not walked again unless asked
    project.edit(
        "services/agents/migrations/d0e500000001_by_hand.py",
        "    op.drop_column('agents', 'mood')",
        "    op.drop_column('agents', 'mood')\n    op.execute('DROP TYPE agent_mood')",
    )
    assert project.migrate("up").code == 0
    clean = json.loads(project.migrate("check", "--all-revisions", "--json").out)
    assert [f for f in clean["findings"] if f["kind"] in ("downgrade", "reapply")] == []


def test_a_table_left_behind_is_named_once_not_column_by_column(project: Project) -> None:
    project.write_revision(
        "agents",
        "7ab1e0000001",
        "op.create_table('agents_notes', sa.Column('id', sa.Integer(), primary_key=True),\n"
        "    sa.Column('body', sa.Text(), nullable=False))\n"
        "op.create_index('ix_agents_notes_body', 'agents_notes', ['body'])\n"
        "op.add_column('agents', sa.Column('note_count', sa.Integer()))",
        "op.drop_column('agents', 'note_count')",  # forgets the table
    )
    found = json.loads(project.migrate("check", "--json").out)["findings"]
    [detail] = [f["detail"] for f in found if f["kind"] == "downgrade"]
    left = detail.split("leaves a trace after its downgrade: ")[1].split(";")[0].split(", ")
    assert left == ["+ table agents_notes", "+ sequence agents_notes_id_seq"]


def test_migrated_database_is_the_module_and_what_it_needs(
    migrated_database: Callable[[str | None], DatabaseURL], migrate_manifest: Manifest
) -> None:
    first = Migrator(migrate_manifest, migrated_database("agents"))
    tables = first.tables()
    assert {"users", "agents"} <= tables and "invoices" not in tables
    assert first.current("agents") == tuple(first.graph.heads("agents"))
    first.insert("users", {"email": "ann@example.com", "display_name": "Ann"})
    second = Migrator(migrate_manifest, migrated_database("agents"))  # a clone of its own
    assert second.url.database != first.url.database
    assert second.fetch("SELECT count(*) FROM users") == [(0,)]
    assert second.current("agents") == first.current("agents")


def test_the_built_in_tests_after_the_suite_imported_the_models(
    project: Project, server_url: str
) -> None:
    """A conftest that imports the models (for its own fixtures) before the plugin's tests
    look at them: each table still belongs to its module."""
    add_a_core_table_to_billing(project)
    (project.root / "tests").mkdir()
    (project.root / "tests/conftest.py").write_text(
        "from services.agents.models import Agent  # noqa: F401\n"
        "from services.billing.models import Invoice, invoice_notes  # noqa: F401\n"
    )
    plugins = ("-p", "no:cacheprovider", "-p", "no:pytest_alembic")
    run = project.run(
        [str(BIN / "pytest"), *plugins, "-v", "--migrate-tests", "-k", "models or dependencies"],
        env={"MIGRATE_TEST_DATABASE_URL": server_url, "PYTHONPATH": str(project.root)},
    )
    assert run.code == 0, run.out[-3000:] + run.err[-2000:]
    for module in ("users", "agents", "billing"):
        assert f"test_models_match_migrations[{module}] PASSED" in run.out
        assert f"test_dependencies_declared[{module}] PASSED" in run.out


def test_migrated_database_leaves_no_template_when_the_build_fails(
    project: Project, server_url: str
) -> None:
    project.write_revision("users", "b40e00000003", "op.execute('SELECT 1/0')")
    (project.root / "tests").mkdir()
    (project.root / "tests/test_users.py").write_text(
        "def test_users(migrated_database):\n    migrated_database('users')\n"
    )
    role = f"plugin_{uuid.uuid4().hex[:8]}"  # every database the run makes is this role's

    def owned() -> list[str]:
        return [
            name
            for (name,) in pg.fetch(
                server_url,
                "SELECT datname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba "
                "WHERE r.rolname = $1",
                role,
            )
        ]

    pg.execute(server_url, f"CREATE ROLE {role} LOGIN CREATEDB")
    as_role = make_url(server_url).set(username=role).render_as_string(hide_password=False)
    try:
        run = project.run(
            [str(BIN / "pytest"), "-p", "no:cacheprovider", "-p", "no:pytest_alembic"],
            env={"MIGRATE_TEST_DATABASE_URL": as_role},
        )
        left = owned()
    finally:
        for name in owned():
            pg.execute(server_url, f'ALTER DATABASE "{name}" IS_TEMPLATE false')
            pg.execute(server_url, f'DROP DATABASE "{name}" WITH (FORCE)')
        pg.execute(server_url, f"DROP ROLE {role}")
    assert run.code == 1, run.out[-3000:] + run.err[-2000:]
    assert "revision b40e00000003" in run.out and "division by zero" in run.out
    assert left == []
