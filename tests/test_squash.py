"""`migrate squash`: a module's revisions replaced by one, written from what they build on a
shadow database and proved there; every database, wherever it stood, reaches the same
catalog afterwards. Other modules that depend on a squashed revision are re-pointed through
the squash's branch labels, never edited."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests import long_history, pg
from tests.conftest import Project

FIRST, SECOND = "a2aac9be69fc", "fe95ecace8c3"  # users' revisions
USERS = Path("services/users/migrations")


def state(project: Project, url: str) -> tuple[object, ...]:
    status = project.migrate("status", "--json", env={"DATABASE_URL": url}, url=False)
    assert status.code == 0, status.err
    modules = json.loads(status.out)["modules"]
    return pg.schema_snapshot(url), [(m["module"], m["current"], m["state"]) for m in modules]


def squash(project: Project, *args: str) -> tuple[str, Path]:
    """Run squash; the revision and file it wrote."""
    result = project.migrate("squash", *args, "--json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    return data["revision"], project.root / data["path"]


def files_of(project: Project) -> dict[str, str]:
    return {
        str(p.relative_to(project.root)): p.read_text()
        for p in (project.root / "services").rglob("*.py")
        if "__pycache__" not in p.parts
    }


@pytest.mark.console_script
def test_users_squashed_and_three_databases(
    project: Project, other_database: str, third_database: str
) -> None:
    at_head, middle, empty = project.database_url, other_database, third_database
    assert project.migrate("up").code == 0
    assert project.migrate("up", "-r", FIRST, env={"DATABASE_URL": middle}, url=False).code == 0
    agents = (project.root / "services/agents/migrations/6d1a84599872_create_agents.py").read_text()

    result = project.migrate("squash", "-b", "users")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == f"Squashed users: 2 revisions up to {SECOND}"
    assert "  + type user_status" in lines and "  + table users" in lines
    assert f"  labels {FIRST}: other modules' depends_on on them now lead here" in result.out
    assert lines[-1].startswith("Proved on a shadow database: from empty it builds exactly")
    [path] = (project.root / USERS).glob("*_users_squashed_up_to_*.py")
    squash_id = path.name.split("_")[0]
    text = path.read_text()
    assert f"branch_labels: str | Sequence[str] | None = ('users', '{FIRST}')" in text
    assert f"replaces: tuple[str, ...] = ('{SECOND}',)" in text
    assert "op.create_table('users'," in text and text.count("op.create_table(") == 1
    assert sorted(p.name[:12] for p in (project.root / USERS / "replaced").glob("*.py")) == [
        FIRST,
        SECOND,
    ]
    assert path.with_name(path.stem + ".catalog.json").is_file()
    # other modules' files are never edited: their depends_on reach the squash through a label
    assert (
        project.root / "services/agents/migrations/6d1a84599872_create_agents.py"
    ).read_text() == agents

    history = project.migrate("history", "-b", "users")
    assert (
        f"  [X] {squash_id}  users squashed up to {SECOND}  (head, replaces 2 revisions up to "
        in history.out
    )
    assert "  (2 replaced revisions kept in services/users/migrations/replaced/)" in history.out
    [users] = json.loads(project.migrate("history", "--json", "-b", "users").out)["modules"]
    assert (users["revisions"][0]["replaces"], users["revisions"][0]["replaces_count"]) == (
        [SECOND],
        2,
    )
    assert users["replaced"] == [SECOND, FIRST]

    project.database_url = empty
    assert project.migrate("up").code == 0
    fresh = state(project, empty)
    for url in (at_head, middle):
        result = project.migrate("up", env={"DATABASE_URL": url}, url=False)
        assert result.code == 0, result.err
        assert f"Moving onto {squash_id}" in result.out
        assert "Tidied" not in result.out  # the replaced row goes with the move, as it should
        assert state(project, url) == fresh
        project.database_url = url
        current = project.alembic("current")
        assert current.code == 0, current.err
        modules = json.loads(project.migrate("current", "--json").out)["modules"]
        assert {x.split()[0] for x in current.out.splitlines()} == {m["current"] for m in modules}
    check = json.loads(project.migrate("check", "--json").out)
    assert check["ok"], check["findings"]
    assert (
        "does not need services/users/migrations/replaced/ (it is at what replaced it)"
        in (check["notes"][0]["detail"])
    )


def test_a_module_of_300_revisions_another_depends_on_in_the_middle(
    project: Project, other_database: str, third_database: str, database_pool: pg.DatabasePool
) -> None:
    """Every state a database could be in before the squash reaches, after it, the catalog
    (and rows) the full history builds."""
    long_history.write(project.root)
    middle = long_history.ledger_id(150)
    extra = database_pool.take()
    try:
        urls = {
            "empty": project.database_url,
            "at 100": other_database,
            "at 150, reports done": third_database,
            "at every head": database_pool.url(extra),
        }
        steps = {
            "at 100": [("up", "-r", long_history.ledger_id(100))],
            "at 150, reports done": [("up", "-b", "reports")],
            "at every head": [("up",)],
        }
        for name, commands in steps.items():
            for args in commands:
                run = project.migrate(*args, env={"DATABASE_URL": urls[name]}, url=False)
                assert run.code == 0, (name, run.err)
        whole = pg.schema_snapshot(urls["at every head"])
        accounts = pg.fetch(urls["at every head"], "SELECT * FROM ledger_accounts ORDER BY 1")
        assert accounts == [("1000", "CASH"), ("2000", "PAYABLES"), ("4000", "SALES")]

        squash_id, path = squash(project, "-b", "ledger")
        text = path.read_text()
        assert f"branch_labels: str | Sequence[str] | None = ('ledger', '{middle}')" in text
        assert "INSERT INTO ledger_accounts (code, name) VALUES" in text
        assert "('1000', 'CASH')" in text  # the data migrations' last word, carried as rows
        assert text.count("op.create_table(") == 2
        assert len(list((project.root / "services/ledger/migrations/replaced").glob("*.py"))) == 300

        plan = project.migrate("up", "--plan", env={"DATABASE_URL": urls["at 100"]}, url=False)
        lines = plan.out.splitlines()
        assert f"  ledger {long_history.ledger_id(101)} step 101 of the ledger" in lines
        ledger = [x.split()[1] for x in lines if x.startswith("  ledger ")]
        assert ledger == [long_history.ledger_id(i) for i in range(101, 301)]  # then the move
        assert lines.index(f"  move onto {squash_id} (no script runs)") > lines.index(
            f"  ledger {long_history.ledger_id(300)} step 300 of the ledger"
        )
        for name, url in urls.items():
            run = project.migrate("up", env={"DATABASE_URL": url}, url=False)
            assert run.code == 0, (name, run.err)
            assert pg.schema_snapshot(url) == whole, name
            assert pg.fetch(url, "SELECT * FROM ledger_accounts ORDER BY 1") == accounts, name
            assert (
                project.migrate("status", "--check", env={"DATABASE_URL": url}, url=False).code == 0
            ), name
        empty = project.migrate("log", "--json", env={"DATABASE_URL": urls["empty"]}, url=False)
        entries = json.loads(empty.out)["entries"]
        ran = [e["revision"] for e in entries if e["module"] in ("ledger", "reports")]
        assert sorted(ran) == sorted([squash_id, long_history.REPORTS_ID])
    finally:
        database_pool.give_back(extra)


def test_a_squash_builds_its_types_in_each_tenant_schema(project: Project) -> None:
    """What a squash writes in public follows the search_path, as its tables do: a type too."""
    result = project.migrate("squash", "-b", "users")
    assert result.code == 0, result.err
    [path] = (project.root / USERS).glob("*_users_squashed_up_to_*.py")
    assert "CREATE TYPE user_status AS ENUM" in path.read_text()
    url = project.database_url
    for tenant in ("acme", "globex"):
        ran = project.migrate("--tenant-schema", tenant, "up")
        assert ran.code == 0, ran.err
    found = pg.fetch(
        url,
        "SELECT n.nspname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
        "WHERE t.typname = 'user_status' ORDER BY 1",
    )
    assert found == [("acme",), ("globex",)]


def test_squash_below_the_head_is_refused_naming_what_builds_on_it(project: Project) -> None:
    third = project.write_revision(
        "users",
        "3ee000000003",
        "op.add_column('users', sa.Column('x', sa.Text()))",
        "op.drop_column('users', 'x')",
    )
    before = files_of(project)
    result = project.migrate("squash", "-b", "users", "--to", SECOND)
    assert result.code == 2
    assert result.err == (
        f"error: module 'users': 3ee000000003 (services/users/migrations/{third.name}) build(s) "
        f"on the revisions up to {SECOND}; plain Alembic cannot follow a down_revision into a "
        "replaced folder, and those files may be applied somewhere (never edit them): squash "
        "up to the head instead (migrate squash -b users)\n"
    )
    assert files_of(project) == before


def test_a_range_that_writes_another_modules_rows_is_refused(project: Project) -> None:
    project.write_revision(
        "agents",
        "a9e000000003",
        "op.execute(\"INSERT INTO users (email, display_name) VALUES ('bot@example.com', 'Bot')\")",
        "op.execute(\"DELETE FROM users WHERE email = 'bot@example.com'\")",
    )
    before = files_of(project)
    result = project.migrate("squash", "-b", "agents")
    assert result.code == 2
    assert result.err.startswith(
        "error: module 'agents': revision a9e000000003 (services/agents/migrations/"
        "a9e000000003_by_hand.py) write(s) rows of table public.users, which another module "
        "owns; a squash carries only its module's rows"
    )
    assert files_of(project) == before


def test_what_the_writer_cannot_build_is_refused_and_nothing_is_kept(project: Project) -> None:
    project.write_revision(
        "users",
        "3ee000000004",
        "op.execute('CREATE TYPE float_range AS RANGE (subtype = float8)')",
        "op.execute('DROP TYPE float_range')",
    )
    before = files_of(project)
    result = project.migrate("squash", "-b", "users")
    assert result.code == 1
    assert result.err.startswith(
        "error: module 'users': the squash does not build what the 3 revisions up to "
        "3ee000000004 build: "
    )
    assert "- type float_range;" in result.err and "nothing was written" in result.err
    assert files_of(project) == before
    assert not (project.root / USERS / "replaced").exists()


def test_the_replaced_folder_goes_once_no_database_needs_it(
    project: Project, other_database: str
) -> None:
    assert project.migrate("up").code == 0
    assert (
        project.migrate("up", "-r", FIRST, env={"DATABASE_URL": other_database}, url=False).code
        == 0
    )
    squash_id, _ = squash(project, "-b", "users")
    notes = json.loads(
        project.migrate("check", "--json", env={"DATABASE_URL": other_database}, url=False).out
    )["notes"]
    assert notes[0]["detail"].startswith(
        f"the database is at {FIRST}, inside what {squash_id} replace(s): it needs "
        "services/users/migrations/replaced/ until `migrate up` moves it onto them"
    )
    assert project.migrate("up").code == 0
    shutil.rmtree(project.root / USERS / "replaced")
    # the squash stands alone; the database moved onto it does not notice
    status = project.migrate("status", "--check")
    assert status.code == 0, status.out + status.err
    history = project.migrate("history", "-b", "users")
    assert f"{squash_id}  users squashed up to {SECOND}  (head)" in history.out
    # one that was still inside is now at a revision nobody has: said, never guessed
    left = project.migrate("up", env={"DATABASE_URL": other_database}, url=False)
    assert left.code == 2
    assert f"the database is at revision {FIRST}, which no module's migrations contain" in left.err


def test_check_finds_a_squash_edited_after_it_was_proved(project: Project) -> None:
    squash_id, path = squash(project, "-b", "users")
    path.write_text(path.read_text().replace("sa.VARCHAR(length=200)", "sa.VARCHAR(length=250)"))
    result = project.migrate("check", "--json")
    assert result.code == 1
    [finding] = [f for f in json.loads(result.out)["findings"] if f["kind"] == "replaces"]
    assert finding["module"] == "users"
    assert finding["detail"].startswith(
        f"revision {squash_id} (services/users/migrations/{path.name}) builds otherwise than "
        f"the catalog kept beside it ({path.stem}.catalog.json): ~ column users.display_name "
        "(character varying(200) not null -> character varying(250) not null)"
    )


def test_a_module_squashed_twice(project: Project, other_database: str) -> None:
    """The first squash, replaced in turn, keeps its labels in the replaced folder beside the
    revisions it replaced: a database at the oldest head still finds its way."""
    oldest = other_database
    assert project.migrate("up", env={"DATABASE_URL": oldest}, url=False).code == 0
    first, _ = squash(project, "-b", "users")
    project.write_revision(
        "users",
        "3ee000000005",
        "op.add_column('users', sa.Column('nickname', sa.Text()))",
        "op.drop_column('users', 'nickname')",
    )
    second, path = squash(project, "-b", "users")
    assert f"('users', '{FIRST}')" in path.read_text()  # agents still depend on it
    replaced = sorted(p.name[:12] for p in (project.root / USERS / "replaced").glob("*.py"))
    assert replaced == sorted([FIRST, SECOND, first, "3ee000000005"])
    assert project.migrate("up").code == 0
    fresh = state(project, project.database_url)
    result = project.migrate("up", env={"DATABASE_URL": oldest}, url=False)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].startswith(f"Moving onto {first} ")  # the way out of the first range
    assert lines[1].startswith("Applying users 3ee000000005 by hand... OK")
    assert lines[2].startswith(f"Moving onto {second} ")
    assert state(project, oldest) == fresh
