"""Plain `alembic` keeps working from the repository root, and agrees with `migrate`."""

from __future__ import annotations

import json
from pathlib import Path

from shared.migrate.history.config import (
    expected_locations,
    in_step,
    read_locations,
    write_locations,
)
from shared.migrate.manifest import load_manifest
from tests import pg
from tests.conftest import REPO, Project


def test_repository_alembic_ini_is_in_step_with_the_manifest() -> None:
    manifest = load_manifest(REPO / "migrations.yaml")
    assert read_locations(REPO / "alembic.ini") == expected_locations(manifest)


def test_write_locations_follows_a_new_module(project: Project) -> None:
    (project.root / "services/audit/migrations").mkdir(parents=True)
    manifest_path = project.root / "migrations.yaml"
    manifest_path.write_text(manifest_path.read_text() + "  - name: audit\n")
    manifest = load_manifest(manifest_path)
    assert not in_step(manifest)
    assert write_locations(manifest) is True
    assert in_step(manifest)
    assert read_locations(project.root / "alembic.ini")[-1] == "%(here)s/services/audit/migrations"
    assert write_locations(manifest) is False


def migrate_current(project: Project) -> set[str]:
    data = json.loads(project.migrate("current", "--json").out)
    return {m["current"] for m in data["modules"] if m["current"]}


def test_upgrade_current_downgrade_history_and_sql(project: Project) -> None:
    up = project.alembic("upgrade", "heads")
    assert up.code == 0, up.err
    assert {"users", "agents", "invoices"} <= pg.tables(project.database_url)

    current = project.alembic("current")
    assert current.code == 0, current.err
    rows = {line.split()[0] for line in current.out.splitlines() if line.strip()}
    assert rows == pg.version_rows(project.database_url)
    assert rows <= migrate_current(project)

    down = project.alembic("downgrade", "agents@-1")
    assert down.code == 0, down.err
    assert "description" not in pg.columns(project.database_url, "agents")
    status = json.loads(project.migrate("status", "--json").out)["modules"]
    assert [m["state"] for m in status] == ["up to date", "behind", "up to date"]

    history = project.alembic("history")
    assert history.code == 0 and "(agents)" in history.out and "(billing)" in history.out

    sql = project.alembic("upgrade", "heads", "--sql")
    assert sql.code == 0, sql.err
    assert "CREATE TABLE users" in sql.out and "CREATE TABLE agents" in sql.out


def test_plain_alembic_commits_each_revision_and_runs_autocommit_blocks(
    project: Project,
) -> None:
    """transaction_per_migration, as the env promises: no transaction left open by its own
    reads (which would make the whole run one, and autocommit_block() fail)."""
    project.write_revision(
        "billing",
        "a1b0c0000001",
        "with op.get_context().autocommit_block():\n"
        "    op.execute('CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_inv_cur '\n"
        "               'ON invoices (currency)')",
        "op.execute('DROP INDEX IF EXISTS ix_inv_cur')",
    )
    project.write_revision("billing", "a1b0c0000002", "op.execute('SELECT 1/0')")
    up = project.alembic("upgrade", "heads")
    assert up.code == 1 and "division by zero" in up.err
    url = project.database_url
    assert "a1b0c0000001" in pg.version_rows(url)  # committed before the next one failed
    assert pg.fetch(url, "SELECT to_regclass('ix_inv_cur') IS NOT NULL") == [(True,)]
    status = {
        m["module"]: m for m in json.loads(project.migrate("status", "--json").out)["modules"]
    }
    assert status["billing"]["current"] == "a1b0c0000001"


def test_migrate_sql_never_connects_nor_imports_models(project: Project) -> None:
    for module in ("users", "agents", "billing"):
        models = project.root / "services" / module / "models.py"
        models.write_text("raise RuntimeError('models imported')\n" + models.read_text())
    unreachable = ("--database-url", "postgresql://u:pw@127.0.0.1:9/none")
    sql = project.migrate(*unreachable, "up", "--sql")
    assert sql.code == 0, sql.err
    # the version table, the tool's log, and the three modules' tables
    assert sql.out.count("CREATE TABLE") == 5
    assert 'CREATE TABLE IF NOT EXISTS "migrate_log"' in sql.out
    assert "pw@" not in sql.out
    one = project.migrate(*unreachable, "up", "--sql", "--branch", "billing")
    assert "CREATE TABLE invoices" in one.out and "CREATE TABLE agents" not in one.out
    for args in (("heads",), ("history",), ("history", "--verbose"), ("--help",)):
        result = project.migrate(*unreachable, *args)
        assert result.code == 0, (args, result.err)


def test_history_lists_each_module_newest_first(project: Project) -> None:
    result = project.migrate("history", "--verbose")
    assert result.code == 0
    lines = result.out.splitlines()
    assert [line for line in lines if line.endswith(":")] == ["users:", "agents:", "billing:"]
    agents = lines[lines.index("agents:") + 1 :]
    assert agents[0].startswith("  [ ] ")  # a database is configured: not applied yet
    assert agents[0].endswith("add column X to agents  (head)")
    assert "file: services/agents/migrations/" in agents[2]
    assert any("depends on:" in line for line in agents[:8])
    data = json.loads(project.migrate("history", "--branch", "agents", "--json").out)
    [module] = data["modules"]
    first, second = module["revisions"][1], module["revisions"][0]
    assert second["parents"] == [first["revision"]] and first["parents"] == []
    assert second["head"] is True and first["head"] is False and second["applied"] is False
    assert Path(project.root / second["path"]).is_file()
    assert project.migrate("up", "--branch", "agents").code == 0
    marked = project.migrate("history", "-b", "agents").out.splitlines()
    assert all(line.startswith("  [X] ") for line in marked[1:])
    unconfigured = project.migrate("history", url=False)
    assert (
        unconfigured.code == 0 and "[X]" not in unconfigured.out and "[ ]" not in unconfigured.out
    )
