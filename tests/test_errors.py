"""Bad input: one line, the right exit code, no traceback, no password, nothing changed."""

from __future__ import annotations

import shutil

from tests import pg
from tests.conftest import Project

SECRET = "s3cr%t:p@ss/w#rd"
UNREACHABLE = "postgresql://app:s3cr%25t%3Ap%40ss%2Fw%23rd@127.0.0.1:9/appdb"


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


def test_unreachable_database_names_host_and_port_not_password(project: Project) -> None:
    for args in (
        ("up",),
        ("status",),
        ("current",),
        ("down", "--branch", "users"),
        ("create", "x", "--module", "users"),
    ):
        result = project.migrate("--database-url", UNREACHABLE, *args)
        assert result.code == 1, (args, result.err)
        line = one_line(result.err)
        assert line.startswith("error: cannot reach the database at 127.0.0.1:9/")
        assert SECRET not in result.out + result.err and "s3cr" not in result.err


def test_debug_shows_a_traceback_without_the_password(project: Project) -> None:
    result = project.migrate("--debug", "--database-url", UNREACHABLE, "status")
    assert result.code == 1
    assert "Traceback" in result.err
    assert "s3cr" not in result.err + result.out


def test_unknown_module_lists_the_known_ones(project: Project) -> None:
    for args in (
        ("up", "--branch", "payments"),
        ("history", "--branch", "payments"),
        ("create", "x", "--module", "payments", "--no-autogenerate"),
    ):
        result = project.migrate(*args)
        assert result.code == 2, args
        assert one_line(result.err) == (
            "error: unknown module or branch 'payments'; known modules: users, agents, billing"
        )
    assert pg.tables(project.database_url) == set()


def test_a_typo_is_answered_with_did_you_mean(project: Project) -> None:
    module = project.migrate("up", "--branch", "agnets")
    assert module.code == 2
    assert one_line(module.err) == (
        "error: unknown module or branch 'agnets'; did you mean 'agents'? "
        "known modules: users, agents, billing"
    )
    expression = project.migrate("up", "--revision", "bilin@head")
    assert expression.code == 2 and "did you mean 'billing'?" in one_line(expression.err)

    text = (project.root / "migrations.yaml").read_text()
    project.edit("migrations.yaml", "    depends_on: [users]", "    depend_on: [users]")
    key = project.migrate("heads")
    assert key.code == 2
    assert one_line(key.err) == (
        "error: migrations.yaml modules[1]: unknown key 'depend_on'; did you mean "
        "'depends_on'? allowed keys: branch, database_url_env, depends_on, lint, "
        "lint_from, models, name, path, schema, versions"
    )
    (project.root / "migrations.yaml").write_text(
        text.replace("depends_on: [users]", "depends_on: [user]", 1)
    )
    dependency = project.migrate("heads")
    assert dependency.code == 2
    assert "depends_on unknown module 'user'; did you mean 'users'?" in one_line(dependency.err)
    (project.root / "migrations.yaml").write_text(text)

    command = project.migrate("stauts")  # Typer's own suggestion, kept
    assert command.code == 2 and "No such command 'stauts'. Did you mean 'status'?" in command.err
    assert pg.tables(project.database_url) == set()


def test_unknown_revision(project: Project) -> None:
    result = project.migrate("up", "--revision", "deadbeef")
    assert result.code == 2
    assert "unknown revision 'deadbeef'" in one_line(result.err)
    assert pg.tables(project.database_url) == set()


def test_database_at_a_revision_the_code_does_not_know(project: Project) -> None:
    assert project.migrate("up").code == 0
    pg.execute(
        project.database_url,
        "UPDATE alembic_version SET version_num = 'feedface0000' "
        "WHERE version_num IN (SELECT min(version_num) FROM alembic_version)",
    )
    result = project.migrate("up")
    assert result.code == 2
    assert "revision feedface0000, which no module's migrations contain" in one_line(result.err)
    status = project.migrate("status")
    assert status.code == 0 and "unknown revision" in status.out


def test_two_heads_in_one_module_are_refused(project: Project) -> None:
    second = project.head_file("agents")
    second_text = second.read_text()
    head = second_text.split("revision: str = '")[1].split("'")[0]
    twin = project.root / "services/agents/migrations/0badc0ffee00_parallel_work.py"
    shutil.copy(second, twin)
    twin.write_text(second_text.replace(head, "0badc0ffee00").replace("'description'", "'notes'"))

    heads = project.migrate("heads")
    assert "0badc0ffee00" in heads.out and head in heads.out
    for args in (("up",), ("up", "--branch", "agents"), ("create", "x", "--module", "agents")):
        result = project.migrate(*args)
        assert result.code == 1, (args, result.err)
        line = one_line(result.err)
        assert "module 'agents' has 2 heads" in line and "0badc0ffee00" in line and head in line
        assert "merge" in line
    assert pg.tables(project.database_url) == set()
    # heads of other modules are normal: billing alone still goes up
    assert project.migrate("up", "--branch", "billing").code == 0


def test_failing_revision_names_module_revision_and_file(project: Project) -> None:
    second = project.head_file("billing")
    text = second.read_text()
    second.write_text(
        text.replace(
            "def upgrade() -> None:\n", "def upgrade() -> None:\n    op.execute('SELECT 1/0')\n"
        )
    )
    result = project.migrate("up")
    assert result.code == 1
    line = one_line(result.err)
    assert "module 'billing' revision" in line and second.name in line
    assert "division by zero" in line
    assert "invoices" in pg.tables(project.database_url)
    assert "currency" not in pg.columns(project.database_url, "invoices")
    second.write_text(text)
    again = project.migrate("up")
    assert again.code == 0, again.err
    assert "currency" in pg.columns(project.database_url, "invoices")
