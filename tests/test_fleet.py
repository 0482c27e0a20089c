"""Fleets: one command over many databases (`--databases`) or tenant schemas (`--schemas`), each
database in a worker process of its own, a line per database, a summary, reruns that finish
only what is behind."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pytest

from tests import pg
from tests.conftest import Project, Run
from tests.holders import WATCHDOG, wait_for
from tests.pg import shown

Take = Callable[[int], list[str]]
# a revision that fails where a marker table exists, and one whose connection is ended there
FAIL_HERE = (
    "DO $$ BEGIN IF to_regclass('fail_here') IS NOT NULL THEN "
    "RAISE EXCEPTION 'broken in this database only'; END IF; END $$"
)
KILL_HERE = (
    "SELECT pg_terminate_backend(pg_backend_pid()) WHERE to_regclass('kill_here') IS NOT NULL"
)
SECRET = "fl33t p@ss:w/rd%25#?"


def only_users(project: Project) -> None:
    """The fleet tests need one module: each worker then runs its revisions, nothing more."""
    path = project.root / "migrations.yaml"
    text = path.read_text()
    path.write_text(text[: text.index("  - name: agents")])


def three_revisions(project: Project) -> None:
    """users gets three revisions; the second fails, or loses its connection, where marked."""
    project.write_revision("users", "f1ee00000001", "op.execute('SELECT 1')")
    project.write_revision(
        "users", "f1ee00000002", f'op.execute("{FAIL_HERE}")\nop.execute("{KILL_HERE}")'
    )
    project.write_revision("users", "f1ee00000003", "op.execute('SELECT 3')")


def fleet_file(project: Project, urls: list[str], name: str = "fleet.txt") -> str:
    (project.root / name).write_text("".join(f"{u}\n" for u in urls))
    return name


def lines(run: Run, state: str) -> list[str]:
    """The lines of the databases that ended in `state`, as they finished (not the summary)."""
    out = run.out.splitlines()
    table = [i for i, line in enumerate(out) if line.startswith("STATE ")]
    ended = out[: table[0]] if table else out
    return [line for line in ended if line.startswith(f"{state} ")]


@pytest.mark.deploy
def test_a_fleet_of_fifty_with_one_failing_half_way_and_one_cut_off(
    project: Project, other_databases: Take
) -> None:
    only_users(project)
    three_revisions(project)
    urls = other_databases(50)
    broken, cut = urls[16], urls[32]
    pg.execute(broken, "CREATE TABLE fail_here ()")
    pg.execute(cut, "CREATE TABLE kill_here ()")
    source = fleet_file(project, urls)

    first = project.migrate("up", "--databases", source, "--jobs", "4")
    assert first.code == 1, first.err
    assert len(lines(first, "done")) == 48
    failed = {line.split()[1]: line for line in lines(first, "failed")}
    assert sorted(failed) == sorted([shown(broken), shown(cut)])
    assert "module 'users' revision f1ee00000002" in failed[shown(broken)]
    assert "broken in this database only" in failed[shown(broken)]
    said = "the 3 revision(s) before it in this run are committed (of 5)"
    assert said in failed[shown(broken)]
    assert "lost the connection" in failed[shown(cut)] and "f1ee00000002" in failed[shown(cut)]
    summary = first.out.splitlines()
    assert summary[summary.index("STATE               DATABASES") + 1 :][:4] == [
        "done                48",
        "already up to date  0",
        "failed              2",
        "skipped             0",
    ]
    assert "50 databases in " in first.out
    assert pg.version_rows(broken) == pg.version_rows(cut) == {"f1ee00000001"}
    assert all(pg.version_rows(u) == {"f1ee00000003"} for u in urls if u not in (broken, cut))

    pg.execute(broken, "DROP TABLE fail_here")  # what was wrong there is set right
    pg.execute(cut, "DROP TABLE kill_here")
    rerun = project.migrate("up", "--databases", source, "--json")
    assert rerun.code == 0, rerun.err
    document = json.loads(rerun.out)
    assert document["summary"] == {"done": 2, "up to date": 48, "failed": 0, "skipped": 0}
    done = [d for d in document["databases"] if d["state"] == "done"]
    assert sorted(d["database"] for d in done) == sorted([shown(broken), shown(cut)])
    assert [s["revision"] for s in done[0]["result"]["steps"]] == ["f1ee00000002", "f1ee00000003"]
    assert pg.version_rows(broken) == pg.version_rows(cut) == {"f1ee00000003"}
    ran = pg.fetch(urls[0], "SELECT count(*) FROM migrate_log WHERE revision = 'f1ee00000002'")
    assert ran == [(1,)]  # a database done the first time was not migrated again


def test_the_fleets_picture_and_its_stragglers(project: Project, other_databases: Take) -> None:
    only_users(project)
    urls = other_databases(6)
    source = fleet_file(project, urls)
    assert project.migrate("up", "--databases", source).code == 0
    assert (
        project.migrate("down", "--databases", fleet_file(project, urls[:2], "two.txt")).code == 0
    )
    assert project.migrate("up", "--databases", fleet_file(project, urls[:1], "one.txt")).code == 0

    result = project.migrate("status", "--databases", source)
    assert result.code == 0, result.err
    assert result.out.splitlines()[:3] == [
        "MODULE  HEAD          CURRENT       DATABASES",
        "users   fe95ecace8c3  fe95ecace8c3  5",
        "                      a2aac9be69fc  1",
    ]
    assert "Behind: 1 of 6 databases" in result.out
    assert f"{shown(urls[1])}  users   a2aac9be69fc  behind" in result.out
    assert project.migrate("status", "--databases", source, "--check").code == 1
    document = json.loads(project.migrate("status", "--databases", source, "--json").out)
    assert document["modules"] == [
        {
            "module": "users",
            "head": "fe95ecace8c3",
            "at": [
                {"current": "fe95ecace8c3", "databases": 5},
                {"current": "a2aac9be69fc", "databases": 1},
            ],
        }
    ]
    [straggler] = document["stragglers"]
    assert straggler["database"] == shown(urls[1])
    assert straggler["modules"][0]["state"] == "behind"


def test_fail_fast_starts_no_more(project: Project, other_databases: Take) -> None:
    only_users(project)
    urls = other_databases(5)
    pg.execute(urls[1], "CREATE TABLE fail_here ()")
    project.write_revision("users", "fa57f0000001", f'op.execute("{FAIL_HERE}")')
    source = fleet_file(project, urls)
    result = project.migrate("up", "--databases", source, "--jobs", "1", "--fail-fast")
    assert result.code == 1
    assert [line.split()[0] for line in result.out.splitlines()[:5]] == [
        "done",
        "failed",
        "skipped",
        "skipped",
        "skipped",
    ]
    assert f"not started: --fail-fast after {shown(urls[1])} failed" in lines(result, "skipped")[0]
    assert all(pg.version_rows(u) == set() for u in urls[2:])


def test_a_tenant_registry_with_a_bad_url_and_duplicates(
    project: Project, other_databases: Take
) -> None:
    only_users(project)
    urls = other_databases(3)
    registry = project.database_url  # DATABASE_URL's database holds the tenants
    values = [urls[0], urls[1], urls[0], None, "not a url", urls[2]]
    pg.execute(registry, "CREATE TABLE tenants (id serial, url text)")
    for value in values:
        literal = "NULL" if value is None else "'" + value.replace("'", "''") + "'"
        pg.execute(registry, f"INSERT INTO tenants (url) VALUES ({literal})")
    query = "sql:SELECT url FROM tenants ORDER BY id"
    result = project.migrate("up", "--databases", query)
    assert result.code == 1
    assert len(lines(result, "done")) == 3
    assert lines(result, "skipped") == [
        f"skipped     {shown(urls[0])}  listed again at sql: row 3 (first at sql: row 1)"
    ]
    assert sorted(lines(result, "failed")) == [
        "failed      sql: row 4  no URL for DATABASE_URL",
        "failed      sql: row 5  the database URL (sql: row 5) cannot be parsed; expected "
        "postgresql://user:password@host:port/database",
    ]
    assert all(pg.version_rows(u) == {"fe95ecace8c3"} for u in urls)
    bad_query = project.migrate("status", "--databases", "sql:SELECT nope FROM tenants")
    assert bad_query.code == 1
    assert bad_query.err.startswith("error: --databases sql: the query failed on ")
    assert 'column "nope" does not exist; fix the query' in bad_query.err
    # the registry is read, never written, whatever the query says
    writes = project.migrate("status", "--databases", "sql:DELETE FROM tenants RETURNING url")
    assert writes.code == 1
    assert "cannot execute DELETE in a read-only transaction; fix the query" in writes.err
    assert pg.fetch(registry, "SELECT count(*) FROM tenants") == [(len(values),)]
    # an empty registry is a mistake to hear about, not a fleet done
    empty = project.migrate(
        "status", "--check", "--databases", "sql:SELECT url FROM tenants LIMIT 0"
    )
    assert (empty.code, empty.out) == (2, "")
    assert empty.err == (
        "error: --databases: the query returned no rows (blank lines and # comments are "
        "skipped); nothing was run: give the databases to run on\n"
    )


@pytest.mark.deploy
def test_a_fleet_of_tenant_schemas(project: Project) -> None:
    only_users(project)
    three_revisions(project)
    tenants = [f"tenant_{i}" for i in range(8)]
    url = project.database_url
    pg.execute(url, "CREATE SCHEMA tenant_3; CREATE TABLE tenant_3.fail_here ()")
    env = {"TENANTS": " ".join(tenants)}
    first = project.migrate("up", "--schemas", "env:TENANTS", env=env)
    assert first.code == 1, first.err
    [failed] = lines(first, "failed")
    assert failed.startswith(f"failed      {shown(url)} schema tenant_3  module 'users' ")
    assert "broken in this database only" in failed
    assert len(lines(first, "done")) == 7
    assert "8 tenant schemas in " in first.out
    # each tenant: its own tables, version table and log, nothing in public
    for tenant in tenants:
        assert pg.fetch(url, f"SELECT to_regclass('{tenant}.users') IS NOT NULL") == [(True,)]
        rows = pg.fetch(url, f"SELECT version_num FROM {tenant}.alembic_version")
        assert rows == [("f1ee00000001" if tenant == "tenant_3" else "f1ee00000003",)]
        assert pg.fetch(url, f"SELECT count(*) > 0 FROM {tenant}.migrate_log") == [(True,)]
    assert pg.tables(url) == set()

    pg.execute(url, "DROP TABLE tenant_3.fail_here")
    rerun = project.migrate("up", "--schemas", "env:TENANTS", "--json", env=env)
    assert rerun.code == 0, rerun.err
    document = json.loads(rerun.out)
    assert document["summary"] == {"done": 1, "up to date": 7, "failed": 0, "skipped": 0}
    [done] = [d for d in document["databases"] if d["state"] == "done"]
    assert done["schema"] == "tenant_3"
    status = project.migrate("status", "--schemas", "env:TENANTS", env=env)
    assert "users   f1ee00000003  f1ee00000003  8" in status.out
    one = project.migrate("--tenant-schema", "tenant_5", "current")
    assert one.out.splitlines()[1].split() == ["users", "f1ee00000003"]


def test_tenant_schemas_leave_out_a_module_that_owns_a_schema(bookshop: Project) -> None:
    result = bookshop.migrate("--tenant-schema", "acme", "up")
    assert result.code == 2
    assert "owns schema 'catalog'" in result.err and "every tenant would share" in result.err
    both = bookshop.migrate("--tenant-schema", "acme", "up", "--schemas", "env:X")
    assert (both.code, both.err) == (
        2,
        "error: --tenant-schema names one tenant; --schemas lists them: use one\n",
    )


def test_a_fleet_whose_modules_live_in_two_databases_each(
    project: Project, other_databases: Take
) -> None:
    only_users(project)
    added = project.migrate("module", "add", "ledger")
    assert added.code == 0, added.err
    project.edit(
        "migrations.yaml",
        "  - name: ledger\n",
        "  - name: ledger\n    database_url_env: LEDGER_DATABASE_URL\n",
    )
    project.write_revision(
        "ledger",
        "1ed6e0000001",
        "op.create_table('entries', sa.Column('id', sa.Integer(), primary_key=True))",
        "op.drop_table('entries')",
        parent=None,
    )
    urls = other_databases(7)
    shared, ledgers, alone = urls[:3], urls[3:6], urls[6]
    (project.root / "fleet.txt").write_text(
        "".join(
            f"DATABASE_URL={s} LEDGER_DATABASE_URL={o}\n"
            for s, o in zip(shared, ledgers, strict=True)
        )
        + f"{shared[0]}\n{alone}\n"  # listed again; and one without its ledger's database
    )
    result = project.migrate("up", "--databases", "fleet.txt")
    assert result.code == 1
    assert len(lines(result, "done")) == 3
    assert lines(result, "skipped") == [
        f"skipped     {shown(shared[0])}  listed again at fleet.txt line 4 "
        "(first at fleet.txt line 1)"
    ]
    assert lines(result, "failed") == [
        f"failed      {shown(alone)}  module 'ledger' lives in a database of its own, named by "
        "$LEDGER_DATABASE_URL (database_url_env in migrations.yaml), which is not set; export "
        "LEDGER_DATABASE_URL=postgresql://USER@HOST:PORT/DATABASE"
    ]
    assert pg.version_rows(alone) == set()
    assert all(pg.version_rows(s) == {"fe95ecace8c3"} for s in shared)
    assert all(pg.version_rows(o) == {"1ed6e0000001"} for o in ledgers)
    assert all(
        "entries" in pg.tables(o) and "entries" not in pg.tables(s)
        for s, o in zip(shared, ledgers, strict=True)
    )

    registry = project.database_url
    pg.execute(registry, "CREATE TABLE tenants (main text, ledger text)")
    pg.execute(
        registry,
        f"INSERT INTO tenants VALUES ('{shared[0]}', '{ledgers[0]}'), ('{shared[1]}', NULL)",
    )
    rows = project.migrate(
        "status",
        "--databases",
        'sql:SELECT main AS "DATABASE_URL", ledger AS ledger_database_url FROM tenants',
        "--json",
    )
    document = json.loads(rows.out)
    assert document["summary"]["done"] == 1 and document["summary"]["failed"] == 1
    [ok] = [d for d in document["databases"] if d["state"] == "done"]
    assert ok["databases"] == {
        "DATABASE_URL": shown(shared[0]),
        "LEDGER_DATABASE_URL": shown(ledgers[0]),
    }
    assert {m["module"]: m["database"] for m in ok["result"]["modules"]}["ledger"] == shown(
        ledgers[0]
    )
    [bad] = [d for d in document["databases"] if d["state"] == "failed"]
    assert bad["error"] == "no URL for LEDGER_DATABASE_URL"


def with_password(url: str) -> str:
    # the servers here trust local connections: the password travels, and is not needed
    return url.replace("://postgres@", f"://postgres:{quote(SECRET, safe='')}@", 1)


def assert_no_secret(text: str) -> None:
    for form in (SECRET, quote(SECRET, safe=""), "p@ss", "w/rd"):
        assert form not in text, (form, text)


@pytest.mark.console_script
def test_a_fleet_file_full_of_passwords_shows_none(project: Project, other_databases: Take) -> None:
    only_users(project)
    project.write_revision("users", "5ec2e0000001", "op.execute('SELECT pg_sleep(1.5)')")
    urls = [with_password(u) for u in other_databases(3)]
    missing = urls[0].rpartition("/")[0] + "/no_such_database"
    unreachable = "postgresql://app:" + quote(SECRET, safe="") + "@127.0.0.1:9/app"
    source = fleet_file(project, [*urls, missing, unreachable])
    env = {"DATABASE_URL": with_password(project.database_url)}

    running = project.spawn("up", "--databases", source, "--jobs", "5", env=env)
    seen: list[str] = []

    def workers_at_work() -> bool:
        for pid in os.listdir("/proc"):
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except (OSError, ValueError):
                continue
            if "shared.migrate" in argv:
                seen.append(argv)
        return len(seen) >= 5  # the fleet, its fork server, the workers it forked

    wait_for(workers_at_work)
    out, err = running.communicate(timeout=WATCHDOG)
    assert running.returncode == 1
    assert_no_secret(" ".join(seen))  # the URL is in a worker's environment, not on its argv
    assert_no_secret(out + err)
    assert len(lines(Run(1, out, err), "failed")) == 2
    for args in (("status",), ("check",), ("up", "--json"), ("status", "--json")):
        result = project.migrate(*args, "--databases", source, env=env)
        assert result.code == 1, (args, result.err)
        assert_no_secret(result.out + result.err)
    registry = project.migrate("up", "--databases", "sql:SELECT 'x' AS url FROM nowhere", env=env)
    assert registry.code == 1
    assert_no_secret(registry.out + registry.err)


@pytest.mark.deploy
@pytest.mark.console_script
def test_a_terminated_fleet_terminates_its_workers_honestly(
    project: Project, other_databases: Take
) -> None:
    only_users(project)
    project.write_revision("users", "7e57e0000001", "op.execute('SELECT pg_sleep(20)')")
    urls = other_databases(3)
    source = fleet_file(project, urls)
    assert project.migrate("up", "--databases", source, "--revision", "fe95ecace8c3").code == 0
    fleet = project.spawn("up", "--databases", source)
    asleep = (
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(20)%' "
        "AND application_name = 'migrate up' AND datname = current_database()"
    )
    wait_for(lambda: all(pg.fetch(u, asleep) == [(1,)] for u in urls))
    fleet.send_signal(signal.SIGTERM)
    out, err = fleet.communicate(timeout=WATCHDOG)
    assert fleet.returncode == 143, err
    assert err.strip() == (
        "error: terminated (SIGTERM); 0 of 3 had finished; the 3 at work were terminated, each "
        "saying what became of its revision (above); the others did not start"
    )
    failed = lines(Run(0, out, err), "failed")
    assert len(failed) == 3
    assert all(
        "terminated (SIGTERM); revision 7e57e0000001 of module 'users' was rolled back" in line
        for line in failed
    )
    assert all(pg.version_rows(u) == {"fe95ecace8c3"} for u in urls)


@pytest.mark.console_script
def test_a_live_count_on_a_terminal(project: Project, other_databases: Take) -> None:
    from tests.test_cli import ANSI, on_terminal

    only_users(project)
    project.write_revision("users", "11fe00000001", "op.execute('SELECT pg_sleep(0.5)')")
    source = fleet_file(project, other_databases(3))
    result = on_terminal(project, "up", "--databases", source, "--jobs", "1")
    assert result.code == 0, result.out
    assert ANSI.search(result.out)  # coloured
    text = ANSI.sub("", result.out)
    assert "0/3" in text and "3/3" in text  # the count, as databases finish
    assert "1 at work" in text
    assert text.count("applied 3 revision(s) of users") == 3  # a line for each
    assert "3 databases in " in text


def test_the_readme_documents_every_fleet_json_field(
    project: Project, other_databases: Take
) -> None:
    import re

    from tests.test_cli import README

    rows = dict(re.findall(r"^\| `(up|status) --databases`[^|]*\| `?(.*?)`? \|$", README, re.M))
    only_users(project)
    source = fleet_file(project, other_databases(2))

    def keys(value: object) -> set[str]:
        """Every key, down the document; not those of a worker's own document (documented
        above it), nor the variables naming an entry's databases."""
        if isinstance(value, dict):
            inner = {key: v for key, v in value.items() if key not in ("result", "databases")}
            lists = [v for key, v in value.items() if key == "databases" and isinstance(v, list)]
            return set(value) | {k for v in [*inner.values(), *lists] for k in keys(v)}
        if isinstance(value, list):
            return {k for v in value for k in keys(v)}
        return set()

    for command in ("up", "status"):
        result = project.migrate(command, "--databases", source, "--json")
        assert result.code == 0, result.err
        documented = rows["up"] + rows[command]
        missing = {k for k in keys(json.loads(result.out)) if f'"{k}"' not in documented}
        assert not missing, (command, missing)


def test_a_tenant_source_with_bad_names_and_duplicates(project: Project) -> None:
    only_users(project)
    url = project.database_url
    (project.root / "tenants.txt").write_text(
        "acme globex  # the first two\n# a comment\n\nacme public Bad-Name\n"
    )
    result = project.migrate("up", "--schemas", "tenants.txt")
    assert result.code == 1
    assert len(lines(result, "done")) == 2  # acme and globex
    assert lines(result, "skipped") == [
        f"skipped     {shown(url)} schema acme  listed again at tenants.txt line 4 item 1 "
        "(first at tenants.txt line 1 item 1)"
    ]
    assert sorted(lines(result, "failed")) == [
        "failed      tenants.txt line 4 item 2  'public' is not a tenant's schema; give each "
        "tenant a schema of its own",
        "failed      tenants.txt line 4 item 3  'Bad-Name' is not a tenant schema name "
        "([a-z][a-z0-9_]*, at most 63 characters)",
    ]
    assert pg.tables(url) == set()  # nothing in public
    pg.execute(
        url, "CREATE TABLE registry (name text); INSERT INTO registry VALUES ('acme'), (NULL)"
    )
    rows = project.migrate("status", "--schemas", "sql:SELECT name FROM registry", "--json")
    document = json.loads(rows.out)
    assert document["summary"] == {"done": 1, "up to date": 0, "failed": 1, "skipped": 0}
    assert [d["error"] for d in document["databases"]] == [None, "no schema name"]
    one = project.migrate("--tenant-schema", "public", "up")
    assert (one.code, one.err) == (
        2,
        "error: --tenant-schema: 'public' is not a tenant's schema; give each tenant a schema of "
        "its own\n",
    )
