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
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shared.db.url import DatabaseURL
from shared.migrate.manifest import Manifest
from shared.migrate.testing.migrator import Migrator
from tests.conftest import REPO, Project, Run, copy_project

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
