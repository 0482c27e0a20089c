"""A way back for a development database: a revision whose file was discarded is resolved by
its id, and `migrate reset` starts over, refusing any database but a local or named one."""

from __future__ import annotations

import json

from shared.db.url import DatabaseURL
from tests import pg
from tests.conftest import Project

EXPERIMENT = "e4be21000001"


def discarded_experiment(project: Project) -> None:
    """Apply an experimental revision, then throw its file away (git checkout . && git clean)."""
    assert project.migrate("up").code == 0
    path = project.write_revision(
        "users", EXPERIMENT, "op.execute('CREATE TABLE experiment (id int)')"
    )
    assert project.migrate("up").code == 0
    path.unlink()


def test_a_discarded_revision_is_named_with_the_way_back(project: Project) -> None:
    discarded_experiment(project)
    for command in (["up"], ["down", "-b", "users"]):
        result = project.migrate(*command)
        assert result.code == 2, result.out
        assert f"the database is at revision {EXPERIMENT}" in result.err
        assert f"migrate resolve --rolled-back {EXPERIMENT} --reason '...'" in result.err
        assert "migrate reset" in result.err


def test_a_discarded_revision_is_rolled_back_on_the_record(project: Project) -> None:
    discarded_experiment(project)
    result = project.migrate("resolve", "--rolled-back", EXPERIMENT[:6], "--reason", "discarded")
    assert result.code == 0, result.err
    assert result.out == f"Marked as rolled back: {EXPERIMENT} (recorded in the log).\n"
    status = json.loads(project.migrate("status", "--json").out)
    assert {m["module"]: m["state"] for m in status["modules"]} == {
        "users": "up to date",
        "agents": "up to date",
        "billing": "up to date",
    }
    heads = json.loads(project.migrate("heads", "--json").out)
    users_head = next(m["heads"][0] for m in heads["modules"] if m["module"] == "users")
    rows = pg.version_rows(project.database_url)
    assert EXPERIMENT not in rows and users_head in rows  # where users was below it
    [entry] = [
        e
        for e in json.loads(project.migrate("log", "--json").out)["entries"]
        if e["revision"] == EXPERIMENT and e["direction"] == "down"
    ]
    assert (entry["module"], entry["action"], entry["reason"]) == ("users", "resolve", "discarded")
    # the record only: what the revision did is the developer's to undo (or `migrate reset`)
    assert "experiment" in pg.tables(project.database_url)
    assert project.migrate("up").out == "No migrations to apply.\n"


def test_a_revision_neither_the_code_nor_the_database_has_is_unknown(project: Project) -> None:
    assert project.migrate("up").code == 0
    result = project.migrate("resolve", "--rolled-back", "0badc0ffee00", "--reason", "x")
    assert result.code == 2
    assert "unknown revision '0badc0ffee00'" in result.err


def test_reset_empties_a_local_database_and_applies_every_module(project: Project) -> None:
    discarded_experiment(project)
    pg.execute(
        project.database_url,
        "CREATE SCHEMA scratch; CREATE TABLE scratch.notes (id int); CREATE TYPE mood AS "
        "ENUM ('ok'); CREATE FUNCTION scratch.hello() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    )
    result = project.migrate("reset")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    where = DatabaseURL.parse(project.database_url).display()
    assert lines[0] == f"Emptied {where}: dropped schema public, scratch and all it held."
    assert lines[-1].startswith("Applied 6 revisions in ")
    assert pg.tables(project.database_url) == {"users", "agents", "invoices", *pg.BOOKKEEPING}
    schemas = {r[0] for r in pg.fetch(project.database_url, "SELECT nspname FROM pg_namespace")}
    assert "scratch" not in schemas and "public" in schemas
    assert "mood" not in pg.enum_types(project.database_url)
    functions = "SELECT count(*) FROM pg_proc WHERE proname = 'hello'"
    assert pg.fetch(project.database_url, functions) == [(0,)]
    # public is as a new database has it: owned by the database's owner, USAGE for everyone
    assert pg.fetch(
        project.database_url,
        "SELECT nspowner::regrole::text, has_schema_privilege('public', 'public', 'USAGE') "
        "FROM pg_namespace WHERE nspname = 'public'",
    ) == [("pg_database_owner", True)]
    empty = project.migrate("reset", "--empty")
    assert empty.code == 0 and pg.tables(project.database_url) == set()


def test_reset_refuses_a_database_elsewhere_unless_it_is_named(project: Project) -> None:
    elsewhere = "postgresql://deploy:s3cret-pw@db.example.invalid:5432/shop"
    refused = project.migrate("--database-url", elsewhere, "reset")
    assert refused.code == 2
    assert refused.err == (
        "error: migrate reset drops everything in db.example.invalid:5432/shop, which is not "
        "on this machine; to go on, name the database: migrate reset --database shop\n"
    )
    wrong = project.migrate("--database-url", elsewhere, "reset", "--database", "shop_test")
    assert wrong.code == 2
    assert "--database names 'shop_test' but the database URL points at 'shop'" in wrong.err
    named = project.migrate("--database-url", elsewhere, "reset", "--database", "shop")
    assert named.code == 1 and "cannot reach the database at db.example.invalid" in named.err
    assert "s3cret-pw" not in refused.err + wrong.err + named.err
