"""Safe to run at deploy: replicas at once, a held or lost lock, failures, timeouts, integrity.

Everything about concurrency uses real separate processes, each waited on with a timeout.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import pytest

from shared.migrate.history.index import checksum_of
from tests import holders, pg
from tests.conftest import REPO, Project
from tests.holders import WATCHDOG, wait_for

pytestmark = pytest.mark.deploy


def activity(project: Project, application: str) -> list[tuple[int, str]]:
    return [
        (r[0], r[1])
        for r in pg.fetch(
            project.database_url,
            "SELECT pid, coalesce(query, '') FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = $1",
            application,
        )
    ]


def log_entries(project: Project) -> list[dict[str, object]]:
    result = project.migrate("log", "--json")
    assert result.code == 0, result.err
    return json.loads(result.out)["entries"]


def test_many_replicas_on_an_empty_database(project: Project) -> None:
    project.write_revision(
        "users",
        "d0a7a0000001",
        'op.execute("INSERT INTO users (email, display_name) '
        "VALUES ('seed@example.com', 'Seed')\")",
    )
    replicas = [project.spawn("up", "--lock-wait", "60") for _ in range(6)]
    outputs = [p.communicate(timeout=WATCHDOG) for p in replicas]
    assert [p.returncode for p in replicas] == [0] * 6, outputs
    applied = [out for out, _ in outputs if "Applied" in out]
    assert len(applied) == 1, outputs  # one replica did the work; the others found nothing
    assert sum("No migrations to apply." in out for out, _ in outputs) == 5

    ups = [e for e in log_entries(project) if e["direction"] == "up"]
    assert len(ups) == 7 and len({e["revision"] for e in ups}) == 7  # each exactly once
    assert pg.fetch(project.database_url, "SELECT count(*) FROM users") == [(1,)]
    assert {"users", "agents", "invoices"} <= pg.tables(project.database_url)


def test_replicas_on_a_behind_database(project: Project) -> None:
    assert project.migrate("up", "--branch", "users").code == 0
    replicas = [project.spawn("up") for _ in range(4)]
    for p in replicas:
        p.communicate(timeout=WATCHDOG)
    assert [p.returncode for p in replicas] == [0] * 4
    ups = [e["revision"] for e in log_entries(project) if e["direction"] == "up"]
    assert len(ups) == len(set(ups)) == 6


def hold_lock_in_background(
    project: Project, seconds: float, after: float = 0
) -> subprocess.Popen[str]:
    """Hold the migration lock as another deploy would, in a process of its own (connected
    `after` seconds before it takes the lock)."""
    return holders.start("advisory", project.database_url, seconds, "holder-test", after=after)


def test_a_held_lock_times_out_naming_the_holder(project: Project) -> None:
    holder = hold_lock_in_background(project, 30, after=6)
    try:
        [(pid, _)] = activity(project, "holder-test")
        result = project.migrate("up", "--lock-wait", "1")
        assert result.code == 3
        line = result.err.strip()
        assert line.startswith(
            f"error: another migration holds the lock (pid {pid}, application 'holder-test', "
        )
        # idle since it took the lock: the wait and a start-up (seconds on a loaded machine),
        # never the age of the connection, 6 s older than that
        idle = re.search(r", idle for (\d+)s\)", line)
        assert idle is not None and 1 <= int(idle.group(1)) <= 5, line
        assert "SELECT" not in line and holders.SECRET not in line  # its SQL is never quoted
        assert line.endswith(
            "waited 1s and changed nothing; let it finish, or wait longer with --lock-wait"
        )
        assert pg.tables(project.database_url) == set()
    finally:
        holder.kill()
        holder.wait(timeout=WATCHDOG)


def test_waiting_for_the_lock_is_not_cut_by_lock_timeout(project: Project) -> None:
    holder = hold_lock_in_background(project, 2)
    try:
        result = project.migrate("up", "--lock-wait", "30", "--lock-timeout", "100ms")
        assert result.code == 0, result.err
    finally:
        holder.wait(timeout=WATCHDOG)


def test_a_killed_holder_leaves_no_lock_behind(project: Project) -> None:
    project.write_revision("users", "51ee90000001", "op.execute('SELECT pg_sleep(2)')")
    victim = project.spawn("up")
    wait_for(lambda: any("pg_sleep" in q for _, q in activity(project, "migrate up")))
    victim.kill()
    victim.communicate(timeout=WATCHDOG)
    result = project.migrate("up", "--lock-wait", "20")
    assert result.code == 0, result.err
    assert "51ee90000001" in pg.version_rows(project.database_url)


def test_losing_the_session_loses_the_lock_and_the_revision(project: Project) -> None:
    project.write_revision("users", "51ee90000002", "op.execute('SELECT pg_sleep(2)')")
    run = project.spawn("up")
    wait_for(lambda: any("pg_sleep" in q for _, q in activity(project, "migrate up")))
    [(pid, _)] = activity(project, "migrate up")  # the lock and the work share one session
    pg.fetch(project.database_url, "SELECT pg_terminate_backend($1)", pid)
    out, err = run.communicate(timeout=WATCHDOG)
    assert run.returncode == 1, (out, err)
    assert "lost the connection (and with it the migration lock) while running module " in err
    assert "51ee90000002" in err
    assert "51ee90000002" not in pg.version_rows(project.database_url)
    assert "51ee90000002" not in {e["revision"] for e in log_entries(project)}
    assert project.migrate("up").code == 0
    assert "51ee90000002" in pg.version_rows(project.database_url)


def test_failure_after_a_non_transactional_step(project: Project) -> None:
    path = project.write_revision(
        "users",
        "c0cc0000001",
        "op.execute('CREATE TABLE before_the_block (id int)')\n"
        "with op.get_context().autocommit_block():\n"
        "    op.execute('CREATE INDEX CONCURRENTLY ix_users_display_name '\n"
        "               'ON users (display_name)')\n"
        "op.execute('SELECT 1/0')",
    )
    result = project.migrate("up")
    assert result.code == 1
    assert "revision c0cc0000001" in result.err and "division by zero" in result.err
    assert "autocommit_block() committed the statements before it and inside it" in result.err
    assert "IF NOT EXISTS" in result.err
    assert "before_the_block" in pg.tables(project.database_url)  # committed by the block
    assert "c0cc0000001" not in pg.version_rows(project.database_url)  # never claimed
    indexes = {
        r[0]
        for r in pg.fetch(
            project.database_url, "SELECT indexname FROM pg_indexes WHERE tablename='users'"
        )
    }
    assert "ix_users_display_name" in indexes  # the concurrent step stays, as the message says

    path.write_text(
        path.read_text()
        .replace("CREATE TABLE before_", "CREATE TABLE IF NOT EXISTS before_")
        .replace("CONCURRENTLY ix_", "CONCURRENTLY IF NOT EXISTS ix_")
        .replace("    op.execute('SELECT 1/0')\n", "")
    )
    again = project.migrate("up")
    assert again.code == 0, again.err
    assert "c0cc0000001" in pg.version_rows(project.database_url)


def test_timeouts_are_reported_and_a_revision_can_lift_its_own(project: Project) -> None:
    assert project.migrate("up").code == 0
    project.write_revision("users", "5a0e00000001", "op.execute('SELECT pg_sleep(1)')")
    slow = project.migrate("up", "--statement-timeout", "200ms")
    assert slow.code == 1
    assert "canceling statement due to statement timeout" in slow.err
    assert "--statement-timeout" in slow.err

    manifest = project.root / "migrations.yaml"
    manifest.write_text(
        manifest.read_text().replace(
            "  version_table: alembic_version\n",
            "  version_table: alembic_version\n  statement_timeout: 200ms\n",
        )
    )
    assert project.migrate("up").code == 1
    revision = project.head_file("users")
    revision.write_text(
        revision.read_text().replace(
            "    op.execute('SELECT pg_sleep(1)')",
            "    op.execute('SET LOCAL statement_timeout = 0')\n"
            "    op.execute('SELECT pg_sleep(1)')",
        )
    )
    lifted = project.migrate("up")
    assert lifted.code == 0, lifted.err


def test_a_timeout_postgresql_cannot_take_is_refused_before_connecting(project: Project) -> None:
    largest = "the largest is 2147483647ms (about 596h), or 0 for no limit"
    for flag in ("--statement-timeout", "--lock-timeout"):
        result = project.migrate("up", flag, "700h")
        assert result.code == 2, result.err
        assert result.err.splitlines() == [
            f"error: {flag} '700h' is longer than PostgreSQL takes; {largest}"
        ]
        # PostgreSQL reads less than a millisecond as 0, which means no limit at all
        too_short = project.migrate("up", flag, "0.4ms")
        assert (too_short.code, too_short.err) == (
            2,
            f"error: {flag} '0.4ms' is shorter than PostgreSQL takes (1ms, whole "
            "milliseconds); give at least 1ms, or 0 for no limit\n",
        )
    assert pg.version_rows(project.database_url) == set()

    manifest = project.root / "migrations.yaml"
    text = manifest.read_text()
    for key in ("statement_timeout", "lock_timeout"):
        manifest.write_text(text.replace("settings:\n", f"settings:\n  {key}: 2500000\n"))
        result = project.migrate("status")
        assert result.code == 2, result.err
        assert result.err.splitlines() == [
            f"error: migrations.yaml: settings.{key} '2500000' is longer than PostgreSQL "
            f"takes; {largest}"
        ]
    manifest.write_text(text)

    longest = project.migrate("up", "--statement-timeout", "596h", "--lock-timeout", "2147483647ms")
    assert longest.code == 0, longest.err
    assert "Applied 6 revisions" in longest.out


def test_lock_timeout_on_a_busy_table(project: Project) -> None:
    assert project.migrate("up").code == 0
    project.write_revision(
        "users", "10c400000001", "op.add_column('users', sa.Column('x', sa.Integer()))"
    )
    blocker = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import asyncio, asyncpg, sys\n"
            "from tests.pg import _connect_args\n"
            "async def main():\n"
            "    c = await asyncpg.connect(**_connect_args(sys.argv[1]), "
            "server_settings={'application_name': 'blocker-test'})\n"
            "    async with c.transaction():\n"
            "        await c.execute('LOCK TABLE users IN ACCESS SHARE MODE')\n"
            "        await asyncio.sleep(15)\n"
            "asyncio.run(main())\n",
            project.database_url,
        ],
        cwd=REPO,
    )
    try:
        wait_for(lambda: bool(activity(project, "blocker-test")))
        time.sleep(0.3)
        result = project.migrate("up", "--lock-timeout", "300ms")
        assert result.code == 1
        assert "canceling statement due to lock timeout" in result.err
        assert "x" not in pg.columns(project.database_url, "users")
    finally:
        blocker.kill()
        blocker.wait(timeout=WATCHDOG)


def test_an_applied_file_edited_afterwards_is_refused(project: Project) -> None:
    assert project.migrate("up").code == 0
    first = next(p for p in project.versions("users") if p != project.head_file("users"))
    original = first.read_text()
    first.write_text(original + "\n# an innocent comment\n")  # comments are not what runs
    assert project.migrate("up").code == 0
    edited = original.replace("    # ### end Alembic commands ###", "    op.execute('SELECT 1')", 1)
    first.write_text(edited)
    result = project.migrate("up")
    assert result.code == 1
    assert f"({first.relative_to(project.root)}) changed after it was applied" in result.err
    ran = project.migrate("check", "--json")
    assert ran.out, ran.err
    check = json.loads(ran.out)
    assert [(f["module"], f["kind"]) for f in check["findings"]] == [("users", "checksum")]
    # both name both checksums, as `migrate log` shows them
    [logged] = [
        str(e["checksum"]) for e in log_entries(project) if str(e["revision"]) in first.name
    ]
    now = checksum_of(first).removeprefix("v2:")
    both = f"(applied {logged.removeprefix('v2:')[:12]}, file now {now[:12]})"
    assert both in result.err and both in check["findings"][0]["detail"]
    first.write_text(original)
    assert project.migrate("up").code == 0


def test_a_database_ahead_of_the_code(project: Project) -> None:
    newer = project.write_revision("agents", "a4ead0000001", "op.execute('SELECT 1')")
    assert project.migrate("up").code == 0
    newer.unlink()  # the older build is deployed again
    refused = project.migrate("up")
    assert refused.code == 2
    assert "revision a4ead0000001, which no module's migrations contain" in refused.err
    assert "--allow-unknown" in refused.err
    before = pg.version_rows(project.database_url)
    allowed = project.migrate("up", "--allow-unknown")
    assert allowed.code == 0, allowed.err
    assert "nothing applied" in allowed.out
    assert pg.version_rows(project.database_url) == before
    states = {
        m["module"]: m["state"]
        for m in json.loads(project.migrate("status", "--json").out)["modules"]
    }
    assert states == {"users": "up to date", "agents": "unknown revision", "billing": "up to date"}


def test_a_revision_that_raises_on_import(project: Project) -> None:
    broken = project.write_revision("billing", "b40e00000001", "pass")
    text = broken.read_text()
    broken.write_text("import no_such_module\n" + text)
    for args in (("heads",), ("status",)):  # read without executing any revision file
        assert project.migrate(*args).code == 0, args
    result = project.migrate("up")
    assert result.code == 2
    assert result.err.strip().splitlines() == [
        f"error: {broken.relative_to(project.root)}: raised ModuleNotFoundError while "
        "loading (No module named 'no_such_module'); fix the revision file"
    ]
    # every revision before it is applied and recorded; the broken one is not
    assert "b40e00000001" not in pg.version_rows(project.database_url)
    assert {"users", "agents", "invoices"} <= pg.tables(project.database_url)
    broken.write_text(text)
    assert project.migrate("up").code == 0
    assert "b40e00000001" in pg.version_rows(project.database_url)


def test_log_records_up_and_down_with_who_and_checksum(project: Project) -> None:
    assert project.migrate("up").code == 0
    assert project.migrate("down", "--branch", "agents").code == 0
    entries = log_entries(project)
    assert len(entries) == 7
    newest = entries[0]
    assert newest["module"] == "agents" and newest["direction"] == "down"
    assert str(newest["checksum"]).startswith("v2:") and len(str(newest["checksum"])) == 67
    assert newest["db_user"] and newest["host"]
    only = json.loads(project.migrate("log", "--branch", "billing", "--json").out)["entries"]
    assert [e["module"] for e in only] == ["billing", "billing"]
    human = project.migrate("log")
    assert human.out.splitlines()[0].split() == [
        "WHEN",
        "MODULE",
        "REVISION",
        "DIR",
        "MS",
        "BY",
        "CHECKSUM",
        "NOTE",
    ]
