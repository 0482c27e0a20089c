"""Passwords never leak, read-only roles can look, and no input writes outside its directory."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy.engine import make_url

from tests import pg
from tests.conftest import BIN, Project, Run

SECRET = "p@ss:w/rd%25#?'\" x&y=z"


def with_password(url: str, password: str = SECRET) -> str:
    # the servers here trust local connections, so the password travels but is not needed
    return make_url(url).set(password=password).render_as_string(hide_password=False)


def assert_no_secret(result: Run) -> None:
    text = result.out + result.err
    for form in (SECRET, quote(SECRET, safe=""), "p@ss", "w/rd"):
        assert form not in text, (form, text)


def test_no_password_in_any_output_whatever_fails(project: Project) -> None:
    url = with_password(project.database_url)
    env = {"DATABASE_URL": url}
    ok = [("up",), ("status",), ("current",), ("log",), ("up", "--sql"), ("history",)]
    for args in ok:
        result = project.migrate(*args, env=env)
        assert result.code == 0, (args, result.err)
        assert_no_secret(result)

    sql_error = project.write_revision("users", "5ec0e0000001", "op.execute('SELECT 1/0')")
    for debug in ((), ("--debug",)):
        result = project.migrate(*debug, "up", env=env)
        assert result.code == 1
        assert_no_secret(result)
    sql_error.write_text(
        sql_error.read_text().replace("op.execute('SELECT 1/0')", "raise ValueError('boom')")
    )
    for debug in ((), ("--debug",)):
        result = project.migrate(*debug, "up", env=env)
        assert result.code == 1 and "ValueError: boom" in result.err
        assert_no_secret(result)
    sql_error.unlink()

    missing_db = with_password(
        make_url(project.database_url)
        .set(database="no_such_db")
        .render_as_string(hide_password=False)
    )
    unreachable = "postgresql://app:" + quote(SECRET, safe="") + "@127.0.0.1:9/app"
    for bad in (missing_db, unreachable):
        for debug in ((), ("--debug",)):
            result = project.migrate(*debug, "--database-url", bad, "status")
            assert result.code == 1, result.err
            assert_no_secret(result)

    project.edit(
        "services/agents/models.py",
        "    name: Mapped[str] = mapped_column(String(100))\n",
        "    name: Mapped[str] = mapped_column(String(100))\n"
        "    rank: Mapped[int | None] = mapped_column()\n",
    )
    created = project.migrate("create", "add rank", "--module", "agents", env=env)
    assert created.code == 0, created.err
    assert_no_secret(created)
    for path in project.root.rglob("*.py"):
        assert "p@ss" not in path.read_text()


def test_plain_alembic_takes_a_percent_password(project: Project) -> None:
    url = with_password(project.database_url, "100%sure")
    done = project.run([str(BIN / "alembic"), "upgrade", "heads"], env={"DATABASE_URL": url})
    assert done.code == 0, done.err
    assert "100%sure" not in done.out + done.err
    assert "users" in pg.tables(project.database_url)


@pytest.fixture
def reader(project: Project) -> Iterator[str]:
    """A role that may connect and read, but not create tables."""
    role = f"reader_{uuid.uuid4().hex[:8]}"
    pg.execute(
        project.database_url,
        f"CREATE ROLE {role} LOGIN; REVOKE CREATE ON SCHEMA public FROM PUBLIC",
    )
    try:
        yield (
            make_url(project.database_url).set(username=role).render_as_string(hide_password=False)
        )
    finally:
        pg.execute(project.database_url, f"DROP OWNED BY {role}; DROP ROLE {role}")


def test_a_read_only_role_can_look_but_creates_nothing(project: Project, reader: str) -> None:
    env = {"DATABASE_URL": reader}
    for args in (
        ("status",),
        ("current",),
        ("history",),
        ("log",),
        ("up", "--sql"),
        ("status", "--json"),
    ):
        result = project.migrate(*args, env=env)
        assert result.code == 0, (args, result.err)
    assert pg.tables(project.database_url) == set()

    refused = project.migrate("up", env=env)
    assert refused.code == 1
    assert len(refused.err.strip().splitlines()) == 1 and "permission denied" in refused.err
    assert pg.tables(project.database_url) == set()

    assert project.migrate("up").code == 0
    role = make_url(reader).username
    pg.execute(project.database_url, f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
    status = json.loads(project.migrate("status", "--json", env=env).out)
    assert {m["state"] for m in status["modules"]} == {"up to date"}
    assert project.migrate("log", env=env).code == 0


def files(project: Project) -> set[Path]:
    """Every file in the project but caches (the revision index, bytecode)."""
    return {p for p in project.root.rglob("*") if "__pycache__" not in p.parts}


def test_path_like_names_never_write_outside(project: Project) -> None:
    before = files(project)
    for args in (
        ("module", "add", "../evil"),
        ("module", "add", "a/b"),
        ("create", "x", "--module", "../users", "--no-autogenerate"),
        ("up", "--branch", "../../etc"),
    ):
        result = project.migrate(*args)
        assert result.code == 2, (args, result.err)
    assert files(project) == before
    assert not (project.root.parent / "evil").exists()

    result = project.migrate(
        "create", "../../../etc/passwd", "--module", "users", "--no-autogenerate"
    )
    assert result.code == 0, result.err
    [written] = {p for p in files(project) if p.suffix == ".py"} - before
    assert written.parent == project.root / "services/users/migrations"
    assert "passwd" in written.name and ".." not in written.name
