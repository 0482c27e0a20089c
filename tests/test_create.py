"""`create`: files written into the module's own directory, touching only its own tables."""

from __future__ import annotations

import pytest

from tests import pg
from tests.conftest import Project

pytestmark = pytest.mark.deploy

AGENTS_MODEL = "services/agents/models.py"
USERS_MODEL = "services/users/models.py"
NAME_LINE = "    name: Mapped[str] = mapped_column(String(100))\n"
EMAIL_LINE = "    email: Mapped[str] = mapped_column(String(320), unique=True)\n"


def add_agent_column(project: Project) -> None:
    project.edit(
        AGENTS_MODEL, NAME_LINE, NAME_LINE + "    priority: Mapped[int | None] = mapped_column()\n"
    )


def add_user_column(project: Project) -> None:
    project.edit(
        USERS_MODEL,
        EMAIL_LINE,
        EMAIL_LINE + "    locale: Mapped[str | None] = mapped_column(String(16))\n",
    )


def new_files(project: Project, module: str, before: list) -> list:  # type: ignore[type-arg]
    return [p for p in project.versions(module) if p not in before]


def test_create_writes_only_the_modules_change_and_up_applies_it(project: Project) -> None:
    assert project.migrate("up").code == 0
    add_agent_column(project)
    add_user_column(project)
    before = {m: project.versions(m) for m in ("users", "agents", "billing")}

    result = project.migrate("create", "add column", "--module", "agents")
    assert result.code == 0, result.err
    [written] = new_files(project, "agents", before["agents"])
    assert result.out.strip().startswith(f"Created services/agents/migrations/{written.name}")
    text = written.read_text()
    assert "op.add_column('agents', sa.Column('priority'" in text
    assert "locale" not in text and "'users'" not in text
    assert "branch_labels: str | Sequence[str] | None = None" in text
    assert new_files(project, "users", before["users"]) == []
    assert new_files(project, "billing", before["billing"]) == []

    up = project.migrate("up", "--branch", "agents")
    assert up.code == 0, up.err
    assert "priority" in pg.columns(project.database_url, "agents")
    assert "locale" not in pg.columns(project.database_url, "users")

    # the users change was left alone, and is still found by a create for users
    users = project.migrate("create", "add locale", "--module", "users")
    assert users.code == 0, users.err
    [users_file] = new_files(project, "users", before["users"])
    assert "op.add_column('users', sa.Column('locale'" in users_file.read_text()
    assert "priority" not in users_file.read_text()


def test_create_gives_the_same_file_whatever_the_database_state(project: Project) -> None:
    add_agent_column(project)
    bodies = []
    ahead = "UPDATE alembic_version SET version_num = 'a4ead0000000' WHERE version_num LIKE 'a9b4%'"
    for prepare in (
        ("down", "--branch", "users", "--revision", "base", "--cascade"),
        ("up", "--branch", "users"),
        ("up",),
        (),  # ahead: at a revision this code does not know
    ):
        if prepare:
            assert project.migrate(*prepare).code == 0
        else:
            pg.execute(project.database_url, ahead)
            assert "a4ead0000000" in pg.version_rows(project.database_url)
        before = project.versions("agents")
        result = project.migrate("create", "add priority", "--module", "agents")
        assert result.code == 0, result.err
        [written] = new_files(project, "agents", before)
        bodies.append(written.read_text().split("depends_on", 1)[1])
        written.unlink()
    assert bodies[0] == bodies[1] == bodies[2] == bodies[3]
    assert "priority" in bodies[0]


def test_no_change_writes_nothing(project: Project) -> None:
    before = project.versions("billing")
    result, pid = project.migrate_with_pid("create", "nothing here", "--module", "billing")
    assert result.code == 0, result.err
    assert "No changes in module 'billing'; no revision written." in result.out
    assert project.versions("billing") == before
    assert pg.shadows(project.database_url, pid) == []  # the shadow database was dropped


def test_shadow_url_puts_the_shadow_database_elsewhere(project: Project, server_url: str) -> None:
    add_agent_column(project)
    unreachable = ("--database-url", "postgresql://u:pw@127.0.0.1:9/none")
    without = project.migrate(*unreachable, "create", "add priority", "--module", "agents")
    assert without.code == 1 and "127.0.0.1:9" in without.err

    result, pid = project.migrate_with_pid(
        *unreachable, "create", "add priority", "--module", "agents", "--shadow-url", server_url
    )
    assert result.code == 0, result.err
    assert "priority" in project.head_file("agents").read_text()
    assert pg.shadows(server_url, pid) == []

    bad = project.migrate("create", "x", "--module", "agents", "--shadow-url", "mysql://a@b/c")
    assert bad.code == 2
    assert bad.err.strip() == (
        "error: the database URL (--shadow-url) uses 'mysql', only postgresql is supported"
    )


def test_the_shadow_database_is_dropped_when_create_fails(project: Project) -> None:
    project.edit(
        AGENTS_MODEL,
        NAME_LINE,
        NAME_LINE + "    invoice_id: Mapped[int | None] = mapped_column("
        "ForeignKey('invoices.id'))\n",
    )
    result, pid = project.migrate_with_pid("create", "link invoices", "--module", "agents")
    assert result.code == 2 and "add 'billing' to depends_on" in result.err
    assert pg.shadows(project.database_url, pid) == []


def test_a_new_enum_column_goes_up_down_and_up_again(project: Project) -> None:
    assert project.migrate("up").code == 0
    project.edit(
        AGENTS_MODEL,
        NAME_LINE,
        NAME_LINE + "    tier: Mapped[str | None] = mapped_column("
        "Enum('free', 'pro', \"o'neil\", name='agent_tier'))\n",
    )
    result = project.migrate("create", "add tier", "--module", "agents")
    assert result.code == 0, result.err
    text = project.head_file("agents").read_text()
    assert "CREATE TYPE agent_tier AS ENUM ('free', 'pro', 'o''neil')" in text
    for step in (("up",), ("down", "--branch", "agents"), ("up",)):
        done = project.migrate(*step)
        assert done.code == 0, (step, done.err)
    assert "tier" in pg.columns(project.database_url, "agents")
    labels = pg.fetch(
        project.database_url,
        "SELECT enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid "
        "WHERE t.typname = 'agent_tier' ORDER BY e.enumsortorder",
    )
    assert labels == [("free",), ("pro",), ("o'neil",)]
    assert project.migrate("down", "--branch", "agents").code == 0
    assert "agent_tier" not in pg.enum_types(project.database_url)
    # the existing enum of another column is left alone
    assert "agent_kind" in pg.enum_types(project.database_url)
