"""`migrate baseline`: databases the bookshop's models made with create_all(), no history at
all. Each module's first revision is written from the database's own schema of its tables and
proved on a shadow; `--mark` records it on a database only once that database has exactly
what it builds (Flyway's baseline, verified: Django's --fake-initial is not)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests import pg
from tests.conftest import Project
from tests.test_cli import undocumented

MODULES = ("accounts", "catalog", "orders", "support")
CREATE_ALL = """
import asyncio, sys
sys.path.insert(0, ".")
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
import services.accounts.models, services.catalog.models, services.orders.models
import services.support.models
from shared.db import metadata

async def main():
    engine = create_async_engine(sys.argv[1])
    async with engine.begin() as conn:
        await conn.execute(text("CREATE SCHEMA catalog"))
        await conn.run_sync(metadata.create_all)
    await engine.dispose()

asyncio.run(main())
"""


def create_all(project: Project, url: str) -> None:
    """What a project without migrations does: the models' tables, made by SQLAlchemy."""
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", CREATE_ALL, url],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def baselines(project: Project) -> dict[str, str]:
    found = {}
    for module in MODULES:
        files = list((project.root / "services" / module / "migrations").glob("*_baseline.py"))
        if files:
            [path] = files
            found[module] = path.name.split("_")[0]
    return found


def test_databases_made_by_create_all_get_baselines_and_are_marked(
    bookshop: Project, other_database: str, third_database: str
) -> None:
    project = bookshop
    first, changed, empty = project.database_url, other_database, third_database
    create_all(project, first)
    create_all(project, changed)

    result = project.migrate("baseline")
    assert result.code == 0, result.err
    written = baselines(project)
    assert list(written) == list(MODULES)
    for module, revision in written.items():
        assert (
            f"Wrote services/{module}/migrations/{revision}_{module}_baseline.py (revision "
            f"{revision}), the first revision of {module}, from the database's schema"
        ) in result.out
    assert "models differ" not in result.out  # create_all made exactly the models
    assert (
        result.out.rstrip()
        .splitlines()[-1]
        .startswith(
            "Proved on a shadow database: the baselines build exactly what the database has"
        )
    )
    assert pg.version_rows(first) == set()  # writing a baseline changes no database
    wrong = project.migrate("up")  # run, a baseline would make what is there already
    assert wrong.code == 1
    assert (
        f"revision {written['accounts']} is a baseline and this database has its objects "
        "already: record it with `migrate baseline --mark -b accounts`" in wrong.err
    )

    marked = project.migrate("baseline", "--mark")
    assert marked.code == 0, marked.err
    assert marked.out.startswith("Marked as applied: ")
    assert project.migrate("status", "--check").code == 0
    log = json.loads(project.migrate("log", "--json").out)["entries"]
    assert sorted((e["module"], e["action"]) for e in log) == [(m, "baseline") for m in MODULES]
    assert project.migrate("baseline", "--mark").out == (
        "Nothing to mark: the baselines are applied here already.\n"
    )

    # a database that differs is told how, and nothing is recorded
    pg.execute(changed, "ALTER TABLE accounts ADD COLUMN nickname text")
    refused = project.migrate("baseline", "--mark", env={"DATABASE_URL": changed}, url=False)
    assert refused.code == 1, refused.err
    assert refused.err.startswith(
        f"error: module 'accounts': the database is not what baseline {written['accounts']} "
        f"(services/accounts/migrations/{written['accounts']}_accounts_baseline.py) builds: "
        "+ column accounts.nickname; nothing was recorded"
    ), refused.err
    assert pg.version_rows(changed) == set()

    # an empty database builds from the baselines what create_all made
    up = project.migrate("up", env={"DATABASE_URL": empty}, url=False)
    assert up.code == 0, up.err
    assert pg.schema_snapshot(empty) == pg.schema_snapshot(first)


def test_one_module_baselined_with_where_its_models_differ(bookshop: Project) -> None:
    project = bookshop
    create_all(project, project.database_url)
    project.edit(
        "services/accounts/models.py",
        "    created_at: Mapped[datetime]",
        "    nickname: Mapped[str | None]\n    created_at: Mapped[datetime]",
    )
    result = project.migrate("baseline", "-b", "accounts", "--json")
    assert result.code == 0, result.err
    assert list(baselines(project)) == ["accounts"]
    document = json.loads(result.out)
    assert document["drift"] == [{"module": "accounts", "change": "+ column accounts.nickname"}]
    assert not undocumented("baseline", document)
    text = next((project.root / "services/accounts/migrations").glob("*_baseline.py")).read_text()
    assert "nickname" not in text  # the database's truth, not the models'
    assert project.migrate("baseline", "--mark", "-b", "accounts").code == 0
    status = json.loads(project.migrate("status", "--json").out)["modules"]
    assert [(m["module"], m["state"]) for m in status] == [
        ("accounts", "up to date"),
        ("catalog", "no revisions"),
        ("orders", "no revisions"),
        ("support", "no revisions"),
    ]


def test_a_module_with_revisions_is_not_baselined(project: Project) -> None:
    result = project.migrate("baseline", "-b", "users")
    assert result.code == 2
    assert result.err == (
        "error: module 'users' has revisions already; a baseline is a module's first revision, "
        "for a database whose tables no revision created\n"
    )


HAND_MADE = """
CREATE SEQUENCE invoice_numbers START 1000 INCREMENT 5;
CREATE TYPE point3 AS (x float8, y float8, z float8);
CREATE TABLE shapes (
  id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, origin point3, seqno serial,
  number int NOT NULL DEFAULT nextval('invoice_numbers'), label text CHECK (label <> ''));
CREATE TABLE old_tags (id serial PRIMARY KEY, name text UNIQUE);
ALTER TABLE old_tags RENAME TO tags;
CREATE TABLE a (id int PRIMARY KEY, b_id int);
CREATE TABLE b (id int PRIMARY KEY, a_id int REFERENCES a (id) DEFERRABLE INITIALLY DEFERRED);
ALTER TABLE a ADD FOREIGN KEY (b_id) REFERENCES b (id);
CREATE INDEX ix_tags_lower ON tags (lower(name)) WHERE name IS NOT NULL;
COMMENT ON INDEX ix_tags_lower IS 'case-insensitive';
CREATE VIEW tag_names AS SELECT name FROM tags;
COMMENT ON VIEW tag_names IS 'names only';
COMMENT ON COLUMN tag_names.name IS 'as typed';
CREATE FUNCTION tag_count() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM tags';
"""


def test_what_reflection_does_not_cover_is_written_and_proved(
    bookshop: Project, other_database: str
) -> None:
    """A composite type, an identity, a serial that is not the key, a sequence a renamed
    table kept, one of its own, a foreign-key cycle, an expression index, comments on an
    index and a view, a SQL function: written, built on a shadow, and equal."""
    project = bookshop
    pg.execute(project.database_url, HAND_MADE)
    assigned = [
        x for t in ("shapes", "tags", "a", "b", "tag_count") for x in ("--assign", f"{t}=accounts")
    ]
    result = project.migrate("baseline", "-b", "accounts", *assigned)
    assert result.code == 0, result.err
    for line in (
        "+ type point3",
        "+ sequence invoice_numbers",
        "+ view tag_names",
        "+ function tag_count()",
    ):
        assert f"  {line}" in result.out.splitlines(), line
    assert project.migrate("baseline", "--mark").code == 0
    up = project.migrate("up", env={"DATABASE_URL": other_database}, url=False)
    assert up.code == 0, up.err
    assert pg.schema_snapshot(other_database) == pg.schema_snapshot(project.database_url)
    comments = "SELECT obj_description(CAST($1 AS regclass))"
    assert pg.fetch(other_database, comments, "ix_tags_lower") == [("case-insensitive",)]
