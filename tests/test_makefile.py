"""The seed's Makefile targets, per module, against the test database."""

from __future__ import annotations

import json

import pytest

from shared.db.url import DatabaseURL
from tests import pg
from tests.conftest import Project

pytestmark = pytest.mark.console_script  # make runs the installed console script itself


def test_makefile_targets_per_module(project: Project) -> None:
    up = project.make("migrate-up", "branch=agents")
    assert up.code == 0, up.err
    assert pg.tables(project.database_url) == {"users", "agents", *pg.BOOKKEEPING}

    status = project.make("migrate-status")
    assert status.code == 0 and "billing" in status.out and "not started" in status.out
    one = project.make("migrate-status", "branch=agents")
    assert one.code == 0 and "agents" in one.out and "billing" not in one.out

    down = project.make("migrate-down", "branch=agents")
    assert down.code == 0 and "Unapplying agents" in down.out
    assert "description" not in pg.columns(project.database_url, "agents")

    current = project.make("migrate-current", "branch=agents")
    assert current.code == 0 and current.out.split()[:3] == ["MODULE", "CURRENT", "agents"]

    history = project.make("migrate-history", "branch=users")
    assert history.code == 0 and history.out.startswith("users:")
    assert "agents:" not in history.out

    assert project.make("migrate-up").code == 0
    project.edit(
        "services/agents/models.py",
        "    name: Mapped[str] = mapped_column(String(100))\n",
        "    name: Mapped[str] = mapped_column(String(100))\n"
        "    rank: Mapped[int | None] = mapped_column()\n",
    )
    drift = project.make("migrate-check")
    assert drift.code != 0 and "drift" in drift.out

    create = project.make("migrate-create", "m=add rank", "module=agents")
    assert create.code == 0, create.err
    assert create.out.startswith("Created services/agents/migrations/")
    assert project.make("migrate-check").code == 0

    usage = project.make("migrate-create", "m=x")
    assert usage.code != 0 and "module=NAME" in usage.err

    heads = json.loads(project.migrate("heads", "--json").out)
    assert all(len(m["heads"]) == 1 for m in heads["modules"])


def test_make_migrate_reset_on_the_local_database(project: Project) -> None:
    assert project.make("migrate-up").code == 0
    pg.execute(project.database_url, "CREATE TABLE scratch (id int)")
    reset = project.make("migrate-reset")
    assert reset.code == 0, reset.err
    where = DatabaseURL.parse(project.database_url).display()
    assert reset.out.startswith(f"Emptied {where}: dropped schema public")
    assert pg.tables(project.database_url) == {"users", "agents", "invoices", *pg.BOOKKEEPING}
    named = project.make("migrate-reset", "database=not_this_one")
    assert named.code != 0 and "--database names 'not_this_one'" in named.err
