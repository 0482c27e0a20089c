"""Safe at deploy, under what a production PostgreSQL does: idle timeouts, replicas killed
half-way, commit-time failures, busy tables, libpq URLs, terminated CI jobs, and a way out after
a mistake. Concurrency and signals use real separate processes, each waited on with a timeout."""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy.engine import make_url

from shared.db.url import DatabaseURL
from tests import holders, pg
from tests.conftest import Project
from tests.holders import WATCHDOG, wait_for


def running(project: Project, application: str, text: str) -> bool:
    rows = pg.fetch(
        project.database_url,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND application_name = $1 AND query LIKE $2",
        application,
        f"%{text}%",
    )
    return rows[0][0] > 0


def log_entries(project: Project) -> list[dict[str, object]]:
    result = project.migrate("log", "--json")
    assert result.code == 0, result.err
    return json.loads(result.out)["entries"]


def heads(project: Project) -> dict[str, str]:
    data = json.loads(project.migrate("heads", "--json").out)
    return {m["module"]: m["heads"][0] for m in data["modules"] if m["heads"]}


# ---- the lock belongs to the work ------------------------------------------------------------


@pytest.mark.deploy
def test_idle_timeouts_never_break_a_healthy_run(project: Project) -> None:
    url = project.database_url
    name = make_url(url).database
    pg.execute(
        url,
        f"ALTER DATABASE \"{name}\" SET idle_session_timeout = '1s'; "
        f"ALTER DATABASE \"{name}\" SET idle_in_transaction_session_timeout = '1s'; "
        "CREATE TABLE steps (revision text)",
    )
    for number in (1, 2):
        revision = f"1d1e0000000{number}"
        project.write_revision(
            "users",
            revision,
            "import time\n"
            f"op.execute(\"INSERT INTO steps VALUES ('{revision}')\")\n"
            "time.sleep(1.5)  # idle in transaction, longer than the timeout\n"
            "op.execute('SELECT pg_sleep(1.5)')",
        )
    replicas = [project.spawn("up", "--lock-wait", "60") for _ in range(3)]
    outputs = [p.communicate(timeout=WATCHDOG) for p in replicas]
    assert [p.returncode for p in replicas] == [0, 0, 0], outputs
    counted = pg.fetch(url, "SELECT revision, count(*) FROM steps GROUP BY 1 ORDER BY 1")
    assert counted == [("1d1e00000001", 1), ("1d1e00000002", 1)]  # each step exactly once
    ups = [e["revision"] for e in log_entries(project) if e["direction"] == "up"]
    assert len(ups) == len(set(ups)) == 8


SESSION_SETTINGS = {  # what the migrating session runs with, as pg_settings shows it
    "idle_session_timeout": "0",  # PostgreSQL 14+
    "idle_in_transaction_session_timeout": "0",
    "transaction_timeout": "0",  # PostgreSQL 17+
    "client_connection_check_interval": "2000",  # PostgreSQL 14+
    "lock_timeout": "5000",
    "statement_timeout": "0",
}


@pytest.mark.deploy
def test_the_session_settings_this_server_has_override_the_databases(project: Project) -> None:
    url = project.database_url
    name = make_url(url).database
    known = {r[0] for r in pg.fetch(url, "SELECT name FROM pg_settings")}
    expected = {k: v for k, v in SESSION_SETTINGS.items() if k in known}
    idle = ("idle_session_timeout", "idle_in_transaction_session_timeout", "transaction_timeout")
    timeouts = [k for k in idle if k in known]
    pg.execute(url, "; ".join(f"ALTER DATABASE \"{name}\" SET {k} = '1s'" for k in timeouts))
    names = ", ".join(f"'{k}'" for k in SESSION_SETTINGS)
    project.write_revision(
        "users",
        "5e7100000001",
        f'op.execute("CREATE TABLE seen AS SELECT name, setting FROM pg_settings '
        f'WHERE name IN ({names})")\n'
        "op.execute('SELECT pg_sleep(1.5)')  # longer than the database's timeouts",
    )
    result = project.migrate("up")
    assert result.code == 0, result.err
    assert dict(pg.fetch(url, "SELECT name, setting FROM seen")) == expected


@pytest.mark.deploy
def test_a_setting_the_server_lacks_is_left_out(project: Project) -> None:
    """PostgreSQL 13 has neither idle_session_timeout nor client_connection_check_interval:
    a setting the server does not have is not sent, whatever its name."""
    from shared.db.connect import connect

    async def settings() -> tuple[str, str | None]:
        conn = await connect(
            DatabaseURL.parse(project.database_url),
            application_name="settings test",
            settings={"lock_timeout": "1234ms", "a_setting_no_server_has": "1"},
        )
        try:
            return (
                await conn.fetchval("SHOW lock_timeout"),
                await conn.fetchval("SELECT current_setting('a_setting_no_server_has', true)"),
            )
        finally:
            await conn.close()

    assert asyncio.run(settings()) == ("1234ms", None)


@pytest.mark.deploy
def test_a_replica_killed_mid_revision_does_not_block_the_next_one(project: Project) -> None:
    assert project.migrate("up").code == 0
    project.write_revision(
        "users",
        "511100000001",
        "op.add_column('users', sa.Column('nickname', sa.Text()))\n"
        "op.execute('SELECT pg_sleep(4)')",
        "op.drop_column('users', 'nickname')",
    )
    victim = project.spawn("up")
    wait_for(lambda: running(project, "migrate up", "pg_sleep"))
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=WATCHDOG)
    # its backend, which still holds users' lock, ends with its client: the next replica
    # waits for the migration lock instead of dying on lock_timeout
    again = project.migrate("up", "--lock-timeout", "1s", "--retries", "0")
    assert again.code == 0, again.err
    assert "nickname" in pg.columns(project.database_url, "users")
    assert "511100000001" in pg.version_rows(project.database_url)


@pytest.mark.deploy
def test_the_lock_holder_named_is_in_this_database(project: Project, other_database: str) -> None:
    elsewhere = holders.start("advisory", other_database, 30, "holder-elsewhere")
    here = holders.start("advisory", project.database_url, 30, "holder-here")
    try:
        [(pid,)] = pg.fetch(
            project.database_url,
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = 'holder-here'",
        )
        [(other_pid,)] = pg.fetch(
            other_database,
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = 'holder-elsewhere'",
        )
        result = project.migrate("up", "--lock-wait", "1")
        assert result.code == 3
        assert f"pid {pid}, application 'holder-here'" in result.err
        assert str(other_pid) not in result.err
    finally:
        for process in (elsewhere, here):
            process.kill()
            process.wait(timeout=WATCHDOG)


@pytest.mark.deploy
def test_waiting_for_the_lock_is_said_every_few_seconds(project: Project) -> None:
    holder = holders.start("advisory", project.database_url, 7, "holder-test")
    try:
        result = project.migrate("up", "--lock-wait", "60")
        assert result.code == 0, result.err
        assert "waiting for the migration lock (pid " in result.err
        assert "application 'holder-test'" in result.err
    finally:
        holder.wait(timeout=WATCHDOG)


def terminated_while(
    project: Project, text: str, number: signal.Signals = signal.SIGTERM, code: int = 143
) -> str:
    """Run `migrate up`, SIGTERM it (or `number`) once its session runs a statement holding
    `text`; the one-line error it printed (it must exit 143, or `code`)."""
    run = project.spawn("up")
    wait_for(lambda: running(project, "migrate up", text))
    run.send_signal(number)
    out, err = run.communicate(timeout=WATCHDOG)
    assert run.returncode == code, (out, err)
    return err


@pytest.mark.deploy
@pytest.mark.parametrize(
    ("number", "code", "said"),
    [(signal.SIGTERM, 143, "terminated (SIGTERM)"), (signal.SIGINT, 130, "interrupted (Ctrl-C)")],
    ids=["SIGTERM", "Ctrl-C"],
)
def test_a_signal_rolls_back_the_revision_and_frees_the_lock(
    project: Project, number: signal.Signals, code: int, said: str
) -> None:
    """SIGTERM (a cancelled CI job, a rollout) and Ctrl-C: what became of the revision."""
    assert project.migrate("up").code == 0
    project.write_revision(
        "users",
        "5197e0000001",
        "op.execute('CREATE TABLE half_done (id int)')\nop.execute('SELECT pg_sleep(10)')",
        "op.execute('DROP TABLE half_done')",
    )
    err = terminated_while(project, "pg_sleep", number, code)
    assert err.strip() == (
        f"error: {said}; revision 5197e0000001 of module 'users' was rolled back; "
        "no earlier revision of this run was committed"
    )
    assert "half_done" not in pg.tables(project.database_url)
    assert "5197e0000001" not in pg.version_rows(project.database_url)
    assert project.migrate("up", "--lock-wait", "10").code == 0


# ---- a revision is OK only once it is committed ----------------------------------------------


@pytest.mark.deploy
def test_a_commit_that_fails_is_reported_on_its_own_revision(project: Project) -> None:
    assert project.migrate("up").code == 0
    project.write_revision(
        "users",
        "def000000001",
        "op.execute('CREATE TABLE parents (id int PRIMARY KEY)')\n"
        "op.execute('CREATE TABLE children (parent_id int REFERENCES parents "
        "DEFERRABLE INITIALLY DEFERRED)')",
        "op.execute('DROP TABLE children')\nop.execute('DROP TABLE parents')",
    )
    project.write_revision(
        "users", "def000000002", "op.execute('INSERT INTO children VALUES (42)')"
    )
    third = project.write_revision("users", "def000000003", "pass")
    for last in (False, True):
        result = project.migrate("up")
        assert result.code == 1, result.out
        assert "def000000002 by hand... OK" not in result.out
        assert "revision def000000002" in result.err and "foreign key" in result.err
        assert "def000000003" not in result.err
        rows = pg.version_rows(project.database_url)
        assert "def000000001" in rows and "def000000002" not in rows
        logged = {e["revision"] for e in log_entries(project)}
        assert "def000000001" in logged and "def000000002" not in logged
        if not last:
            third.unlink()  # now the failing revision is the last one of the run


@pytest.mark.deploy
def test_a_long_revision_is_visible_while_it_runs(project: Project) -> None:
    assert project.migrate("up").code == 0
    project.write_revision("users", "10f600000001", "op.execute('SELECT pg_sleep(3)')")
    run = project.spawn("up")
    assert run.stdout is not None
    fd = run.stdout.fileno()
    seen = b""

    def started() -> bool:
        nonlocal seen
        if select.select([fd], [], [], 0.05)[0]:
            seen += os.read(fd, 4096)
        return b"Applying users 10f600000001 by hand..." in seen

    wait_for(started)
    # the line comes before the statement reaches the server: wait for it there, then check
    # that nothing said the revision was done meanwhile
    wait_for(lambda: running(project, "migrate up", "pg_sleep"))
    started()
    assert b" OK" not in seen.split(b"10f600000001", 1)[1]
    rest, _ = run.communicate(timeout=WATCHDOG)
    assert run.returncode == 0
    seen += rest.encode()
    assert b"Applying users 10f600000001 by hand... OK (" in seen


# ---- lock timeouts are retried, not fatal ----------------------------------------------------


@contextmanager
def users_blocked(project: Project, revision: str, column: str, seconds: float) -> Iterator[int]:
    """The database at head, a pending revision adding `column` to users, and another session
    holding a lock on users for `seconds`; yields that session's pid."""
    assert project.migrate("up").code == 0
    project.write_revision(
        "users", revision, f"op.add_column('users', sa.Column('{column}', sa.Integer()))"
    )
    blocker = holders.start("table", project.database_url, seconds, "blocker-test", "users")
    try:
        [(pid,)] = pg.fetch(
            project.database_url,
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = 'blocker-test'",
        )
        yield pid
    finally:
        blocker.kill()
        blocker.wait(timeout=WATCHDOG)


@pytest.mark.deploy
def test_a_short_lived_blocker_is_ridden_over(project: Project) -> None:
    with users_blocked(project, "10c500000001", "y", 2.5) as pid:
        result = project.migrate("up", "--lock-timeout", "300ms")
        assert result.code == 0, result.err
        assert f"waited on pid {pid}, application 'blocker-test'" in result.err
        # what it runs, by kind and the tables it holds, never its text
        assert "idle in transaction after LOCK for " in result.err
        assert "holding locks on users" in result.err
        assert holders.SECRET not in result.err and "ACCESS SHARE" not in result.err
        assert "retry 1 of 3" in result.err
        assert "y" in pg.columns(project.database_url, "users")


@pytest.mark.deploy
def test_a_long_blocker_fails_clearly(project: Project) -> None:
    with users_blocked(project, "10c500000002", "z", 30):
        result = project.migrate("up", "--lock-timeout", "300ms", "--retries", "1")
        assert result.code == 1
        [line] = result.err.strip().splitlines()[-1:]
        assert "revision 10c500000002" in line
        assert "a table lock was not free within lock_timeout (tried 2 times)" in line
        assert "application 'blocker-test'" in line and "holding locks on users" in line
        assert holders.SECRET not in result.err + result.out
        assert "fix the file" not in line
        assert "z" not in pg.columns(project.database_url, "users")
        # stdout: each attempt a line, ended by what became of it
        attempt = "Applying users 10c500000002 by hand..."
        assert result.out.splitlines()[-2:] == [f"{attempt} lock timeout", f"{attempt} FAILED"]


# ---- a way out after a mistake ---------------------------------------------------------------


@pytest.mark.deploy
def test_a_broken_downgrade_can_be_fixed(project: Project) -> None:
    assert project.migrate("up").code == 0
    head = project.head_file("agents")
    fixed = head.read_text()
    downgrade = "def downgrade() -> None:\n"
    broken = fixed.replace(downgrade, downgrade + "    op.execute('SELECT 1/0')\n")
    head.write_text(broken)
    failed = project.migrate("down", "--branch", "agents")
    assert failed.code == 1 and "division by zero" in failed.err  # it ran: no checksum refusal
    assert project.migrate("up", "--branch", "billing").code == 0
    head.write_text(fixed)
    done = project.migrate("down", "--branch", "agents")
    assert done.code == 0, done.err


@pytest.mark.deploy
def test_the_checksum_covers_what_runs_not_how_it_is_written(project: Project) -> None:
    assert project.migrate("up").code == 0
    path = project.head_file("agents")
    text = path.read_text()
    path.write_text(
        text.replace('"""add column X to agents', '"""Add column X to agents (reworded)')
        .replace(
            "op.add_column('agents',", "op.add_column(\n        'agents',  # a comment\n       "
        )
        .replace("# ### end Alembic commands ###", "# reformatted", 1)
    )
    assert project.migrate("up").code == 0
    assert json.loads(project.migrate("check", "--json").out)["findings"] == []


@pytest.mark.deploy
def test_resolve_accepts_an_edited_applied_revision(project: Project) -> None:
    assert project.migrate("up").code == 0
    path = project.head_file("agents")
    revision = heads(project)["agents"]
    path.write_text(
        path.read_text().replace("def upgrade() -> None:\n", "def upgrade() -> None:\n    pass\n")
    )
    refused = project.migrate("up")
    assert refused.code == 1
    assert f"migrate resolve --accept {revision} --reason" in refused.err
    accepted = project.migrate(
        "resolve", "--accept", revision, "--reason", "hotfix; same effect, reworded"
    )
    assert accepted.code == 0, accepted.err
    assert project.migrate("up").code == 0
    newest = log_entries(project)[0]
    assert newest["revision"] == revision and newest["action"] == "accept"
    assert newest["reason"] == "hotfix; same effect, reworded" and newest["os_user"]


@pytest.mark.deploy
def test_resolve_marks_applied_and_rolled_back(project: Project) -> None:
    assert project.migrate("up").code == 0
    users_head = heads(project)["users"]
    project.write_revision(
        "users",
        "4e501e000001",
        "op.execute('CREATE TABLE made_by_hand (id int)')",
        "op.execute('DROP TABLE made_by_hand')",
    )
    pg.execute(project.database_url, "CREATE TABLE made_by_hand (id int)")  # an incident fix
    tables = pg.tables(project.database_url)
    marked = project.migrate(
        "resolve", "--applied", "4e501e000001", "--reason", "created by hand in INC-42"
    )
    assert marked.code == 0, marked.err
    rows = pg.version_rows(project.database_url)
    assert "4e501e000001" in rows and users_head not in rows
    assert pg.tables(project.database_url) == tables  # nothing else touched
    assert "No migrations to apply." in project.migrate("up").out
    entry = log_entries(project)[0]
    assert (entry["revision"], entry["direction"], entry["action"]) == (
        "4e501e000001",
        "up",
        "resolve",
    )

    pg.execute(project.database_url, "DROP TABLE made_by_hand")
    back = project.migrate(
        "resolve", "--rolled-back", "4e501e000001", "--reason", "dropped by hand"
    )
    assert back.code == 0, back.err
    assert users_head in pg.version_rows(project.database_url)
    again = project.migrate("up")
    assert again.code == 0 and "made_by_hand" in pg.tables(project.database_url), again.err

    missing = project.migrate("resolve", "--applied", "4e501e000001")
    assert missing.code == 2 and "--reason" in missing.err
    holder = holders.start("advisory", project.database_url, 10, "holder-test")
    try:
        locked = project.migrate(
            "resolve", "--rolled-back", "4e501e000001", "--reason", "x", "--lock-wait", "1"
        )
        assert locked.code == 3
    finally:
        holder.kill()
        holder.wait(timeout=WATCHDOG)


# ---- the database URL ------------------------------------------------------------------------
# (not `deploy` tests, nor the roles' below: the test PgBouncer knows only the server's user)


def url_with(project: Project, **changes: object) -> str:
    parsed = DatabaseURL.parse(project.database_url)
    from dataclasses import replace

    return replace(parsed, **changes).secret_string()  # type: ignore[arg-type]


def test_every_url_a_libpq_user_writes(project: Project) -> None:
    parsed = DatabaseURL.parse(project.database_url)
    base = parsed.secret_string()
    join = "&" if "?" in base else "?"
    works = [
        base + join + "sslmode=prefer&connect_timeout=5",
        base + join + "sslmode=disable",
        base + join + "application_name=payments&options=-c%20search_path%3Dpublic",
        url_with(project, hosts=(("127.0.0.1", 9), *parsed.hosts)),  # several hosts: the next
    ]
    [(socket_dirs,)] = pg.fetch(project.database_url, "SHOW unix_socket_directories")
    [(port,)] = pg.fetch(project.database_url, "SHOW port")
    socket = socket_dirs.split(",")[0].strip()
    works.append(f"postgresql://postgres@/{parsed.database}?host={socket}&port={port}")
    for url in works:
        result = project.migrate("status", env={"DATABASE_URL": url})
        assert result.code == 0, (url, result.err)
    named = project.migrate("up", env={"DATABASE_URL": works[2]})
    assert named.code == 0, named.err

    over_socket = all(host.startswith("/") for host, _ in parsed.hosts)
    if over_socket:  # the embedded server: as in libpq, a Unix socket never uses SSL
        result = project.migrate("status", env={"DATABASE_URL": base + join + "sslmode=require"})
        assert result.code == 0, result.err
    clear = {
        **({} if over_socket else {base + join + "sslmode=require": "SSL"}),
        base + join + "colour=red": "unknown parameter 'colour'",
        base + join + "sslmode=sometimes": "sslmode must be one of",
        url_with(project, hosts=(("127.0.0.1", 9),)).replace(":9/", ":70000/"): "from 1 to 65535",
        base + join + "gssencmode=require": "not supported by the asyncpg driver",
    }
    for url, message in clear.items():
        result = project.migrate("status", env={"DATABASE_URL": url})
        assert result.code in (1, 2), (url, result.err)
        assert len(result.err.strip().splitlines()) == 1 and message in result.err, result.err
        assert "Traceback" not in result.err and "unexpected" not in result.err


def test_an_unencoded_password_never_reaches_output(project: Project) -> None:
    # '@' and ':' stay in the authority, which ends at the first '/', '?' or '#' as in libpq:
    # a password holding those is refused (exit 2), saying how to encode it
    for password, code in (
        ("Tr0ub@dor-s3cret", 1),
        ("pa:ss@w0rd:s3cret", 1),
        ("pa:ss/w0rd-s3cret", 2),
        ("a@b:c/d?e-s3cret", 2),
    ):
        url = f"postgresql://app:{password}@127.0.0.1:9/app"
        for args in (("status",), ("up",), ("--debug", "status")):
            result = project.migrate(*args, env={"DATABASE_URL": url})
            assert result.code == code, (password, result.err)
            assert "s3cret" not in result.out + result.err, result.err
            expected = "127.0.0.1:9/app" if code == 1 else "percent-encode them (@ as %40, / as %2F"
            assert expected in result.err, result.err


# ---- shadow databases never pile up ----------------------------------------------------------


@pytest.mark.deploy
def test_a_terminated_create_drops_its_shadow(project: Project) -> None:
    project.write_revision("users", "5ad000000001", "op.execute('SELECT pg_sleep(10)')")
    project.edit(
        "services/agents/models.py",
        "    name: Mapped[str] = mapped_column(String(100))\n",
        "    name: Mapped[str] = mapped_column(String(100))\n    rank: Mapped[int | None]\n",
    )
    run = project.spawn("create", "rank", "--module", "agents")

    def building() -> bool:  # the shadow's owner session sits in this test's database
        rows = pg.fetch(
            project.database_url,
            "SELECT count(*) FROM pg_stat_activity s JOIN pg_stat_activity o "
            "ON o.application_name = 'migrate shadow ' || s.datname "
            "WHERE o.datname = current_database() AND s.query LIKE '%pg_sleep%' "
            "AND s.application_name = 'migrate create'",
        )
        return rows[0][0] > 0

    wait_for(building)
    assert pg.shadows(project.database_url, run.pid)
    run.send_signal(signal.SIGTERM)
    out, err = run.communicate(timeout=WATCHDOG)
    assert run.returncode == 143, (out, err)
    assert "terminated (SIGTERM)" in err
    assert pg.shadows(project.database_url, run.pid) == []


@pytest.mark.deploy
def test_shadows_left_by_a_crash_are_swept(project: Project) -> None:
    pg.execute(project.database_url, 'CREATE DATABASE "migrate_shadow_1_deadbeef"')
    result = project.migrate("check")
    assert result.code == 0, result.out + result.err
    assert "migrate_shadow_1_deadbeef" not in pg.shadows(project.database_url)


def test_a_shadow_is_kept_while_its_key_is_held_whatever_its_owner_is_named(
    project: Project,
) -> None:
    # (a `migrate` older than this one, sweeping the same server meanwhile, would drop it)
    name = f"migrate_shadow_1_{uuid.uuid4().hex[:8]}"
    owner = holders.start("shadow", project.database_url, 60, "renamed by a pooler", name)
    try:
        pg.execute(project.database_url, f'CREATE DATABASE "{name}"')
        assert project.migrate("check").code == 0
        assert name in pg.shadows(project.database_url)
    finally:
        owner.kill()
        owner.wait(timeout=WATCHDOG)
    assert project.migrate("check").code == 0
    assert name not in pg.shadows(project.database_url)


def sleeping_in_shadow(project: Project, run: subprocess.Popen[str]) -> None:
    """Wait until `migrate` process `run` runs a revision's pg_sleep on its shadow database."""

    def sleeping() -> bool:
        assert run.poll() is None, run.communicate()
        rows = pg.fetch(
            project.database_url,
            "SELECT count(*) FROM pg_stat_activity WHERE datname LIKE $1 "
            "AND query LIKE '%pg_sleep%'",
            f"migrate\\_shadow\\_{run.pid}\\_%",
        )
        return rows[0][0] > 0

    wait_for(sleeping)


def with_query(url: str, **params: str) -> str:
    """`url` with query parameters added (a socket URL has some already)."""
    return make_url(url).update_query_dict(params).render_as_string(hide_password=False)


def test_two_checks_at_once_keep_each_others_shadow(project: Project) -> None:
    """The URL's application_name prefixes every session's name: a second `check` must still
    tell the first one's shadow (in use) from one a killed run left behind."""
    project.write_revision("users", "5ad000000002", "op.execute('SELECT pg_sleep(3)')")
    env = {"DATABASE_URL": with_query(project.database_url, application_name="ci-runner")}
    first = project.spawn("check", env=env)
    sleeping_in_shadow(project, first)
    second = project.spawn("check", env=env)
    second_out, second_err = second.communicate(timeout=WATCHDOG)
    first_out, first_err = first.communicate(timeout=WATCHDOG)
    assert (first.returncode, first_err) == (0, ""), first_out
    assert (second.returncode, second_err) == (0, ""), second_out
    assert pg.shadows(project.database_url, first.pid) == []


def test_a_shadow_dropped_under_a_command_is_named_as_such(project: Project) -> None:
    project.write_revision("users", "5ad000000003", "op.execute('SELECT pg_sleep(3)')")
    env = {"DATABASE_URL": with_query(project.database_url, application_name="ci-runner")}
    run = project.spawn("check", env=env)
    sleeping_in_shadow(project, run)
    [shadow] = pg.shadows(project.database_url, run.pid)
    pg.execute(project.database_url, f'DROP DATABASE "{shadow}" WITH (FORCE)')
    out, err = run.communicate(timeout=WATCHDOG)
    assert run.returncode == 1, (out, err)
    [line] = err.strip().splitlines()
    assert f"the shadow database {shadow} " in line
    assert line.endswith(
        "was dropped by another process while `migrate check` was using it; "
        "run `migrate check` again"
    )
    assert "5ad000000003" not in line and "lock" not in line


def test_a_shadow_dropped_while_create_proves_its_file_names_the_file(project: Project) -> None:
    # a row in users, and a new column whose default sleeps for each row: the proof's upgrade
    project.write_revision(
        "users",
        "5ad000000004",
        "op.execute(\"INSERT INTO users (email, display_name) VALUES ('a@b.c', 'A')\")",
    )
    project.edit(
        "services/users/models.py",
        "    display_name: Mapped[str] = mapped_column(String(200))\n",
        "    display_name: Mapped[str] = mapped_column(String(200))\n"
        "    nap: Mapped[str | None] = mapped_column(server_default=text('pg_sleep(3)::text'))\n",
    )
    project.edit("services/users/models.py", "import DateTime,", "import DateTime, text,")
    before = project.versions("users")
    run = project.spawn("create", "nap", "--module", "users")
    sleeping_in_shadow(project, run)
    [shadow] = pg.shadows(project.database_url, run.pid)
    pg.execute(project.database_url, f'DROP DATABASE "{shadow}" WITH (FORCE)')
    out, err = run.communicate(timeout=WATCHDOG)
    [written] = [p.relative_to(project.root) for p in project.versions("users") if p not in before]
    assert run.returncode == 1, (out, err)
    server = DatabaseURL.parse(project.database_url).display()
    assert err.strip() == (
        f"error: the shadow database {shadow} on {server} "
        "was dropped by another process while `migrate create` was using it; "
        f"{written} was written but not proved: delete it, then run `migrate create` again"
    )


@pytest.fixture
def plain_role(project: Project) -> Iterator[str]:
    role = f"app_{uuid.uuid4().hex[:8]}"
    pg.execute(project.database_url, f"CREATE ROLE {role} LOGIN PASSWORD 'Sup3r-s3cret'")
    try:
        yield (
            make_url(project.database_url)
            .set(username=role, password="Sup3r-s3cret")
            .render_as_string(hide_password=False)
        )
    finally:
        pg.execute(project.database_url, f"DROP OWNED BY {role}; DROP ROLE {role}")


def test_a_role_without_createdb_is_told_about_shadow_url(
    project: Project, plain_role: str
) -> None:
    project.edit(
        "services/agents/models.py",
        "    name: Mapped[str] = mapped_column(String(100))\n",
        "    name: Mapped[str] = mapped_column(String(100))\n    rank: Mapped[int | None]\n",
    )
    result = project.migrate(
        "create", "rank", "--module", "agents", env={"DATABASE_URL": plain_role}
    )
    assert result.code == 1
    [line] = result.err.strip().splitlines()
    assert "CREATEDB" in line and "--shadow-url" in line and "SHADOW_DATABASE_URL" in line
    assert "s3cret" not in result.err


def test_a_role_without_ddl_rights_is_told_what_to_change_and_nothing_moves(
    project: Project, plain_role: str
) -> None:
    # PostgreSQL 15: a role that does not own the public schema may not create tables in it
    no_tables = project.migrate("up", env={"DATABASE_URL": plain_role})
    assert no_tables.code == 1
    [line] = no_tables.err.strip().splitlines()
    assert "cannot create the tables alembic_version and migrate_log" in line
    assert "version_table_schema" in line and "nothing was applied" in line
    assert "s3cret" not in no_tables.err + no_tables.out
    assert pg.tables(project.database_url) == set()

    # the bookkeeping tables exist and the role may write them, but may not change the schema
    assert project.migrate("up", "--branch", "users").code == 0
    role = make_url(plain_role).username
    pg.execute(
        project.database_url,
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON alembic_version, migrate_log TO {role}; "
        f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}; "
        f"GRANT SELECT, REFERENCES ON users TO {role}",
    )
    before = pg.fetch(project.database_url, "SELECT version_num FROM alembic_version")
    denied = project.migrate("up", env={"DATABASE_URL": plain_role})
    assert denied.code == 1
    assert "... FAILED" in denied.out
    [line] = denied.err.strip().splitlines()
    assert "revision 6d1a84599872" in line and "permission denied for schema public" in line
    assert "lacks this privilege" in line and "fix the file" not in line
    assert pg.tables(project.database_url) == {"users", *pg.BOOKKEEPING}
    assert pg.fetch(project.database_url, "SELECT version_num FROM alembic_version") == before


def test_login_and_read_errors_say_what_to_change(project: Project, plain_role: str) -> None:
    assert project.migrate("up").code == 0
    unread = project.migrate("status", env={"DATABASE_URL": plain_role})
    assert unread.code == 1
    [line] = unread.err.strip().splitlines()
    assert "permission denied for table" in line and "needs SELECT on the version and log" in line
    assert "s3cret" not in unread.err
    nobody = make_url(plain_role).set(username="nobody_at_all").render_as_string(False)
    missing = project.migrate("status", env={"DATABASE_URL": nobody})
    assert missing.code == 1
    assert 'role "nobody_at_all" does not exist' in missing.err
    assert "the user name and password come from $DATABASE_URL" in missing.err
    assert "s3cret" not in missing.err
    certless = (
        "postgresql://app@127.0.0.1:9/app?sslmode=verify-full&sslrootcert=/nonexistent/ca.crt"
    )
    cert = project.migrate("status", env={"DATABASE_URL": certless})
    assert cert.code == 1
    assert "cannot read sslrootcert=/nonexistent/ca.crt (No such file or directory)" in cert.err


@pytest.mark.deploy
def test_templates_are_trimmed_even_while_another_session_drops_one(project: Project) -> None:
    """Two commands trimming templates at once: PostgreSQL ends the session (FATAL) that
    alters a database whose DROP another session has begun; the command must not die of it."""
    project.edit(
        "migrations.yaml",
        "  database_url_env: DATABASE_URL\n",
        "  database_url_env: DATABASE_URL\n  shadow_templates: 1\n",
    )
    # a history of this test's own, so this check makes (and keeps) a template of its own
    project.write_revision("users", f"7e{uuid.uuid4().hex[:10]}", "pass")
    assert project.migrate("up").code == 0
    tag = uuid.uuid4().hex[:8]
    stale, dropping = f"migrate_template_stale_{tag}", f"migrate_template_dropping_{tag}"
    for name in (stale, dropping):
        pg.execute(project.database_url, f'CREATE DATABASE "{name}"')
        pg.execute(project.database_url, f'COMMENT ON DATABASE "{name}" IS \'{{"at": 0}}\'')
    pg.execute(project.database_url, f'ALTER DATABASE "{stale}" IS_TEMPLATE true')
    # how PostgreSQL marks a database whose DROP DATABASE is under way (or was cut short)
    pg.execute(
        project.database_url,
        f"UPDATE pg_database SET datconnlimit = -2 WHERE datname = '{dropping}'",
    )
    result = project.migrate("check")
    assert result.code == 0, result.err
    left = pg.fetch(
        project.database_url,
        "SELECT datname FROM pg_database WHERE datname = ANY($1::text[])",
        [stale, dropping],
    )
    assert left == []


# ---- interrupted: what is said is what happened ----------------------------------------------


@pytest.mark.deploy
def test_a_backend_terminated_while_waiting_for_the_lock_is_a_lost_connection(
    project: Project,
) -> None:
    holder = holders.start("advisory", project.database_url, 30, "holder-test")
    try:
        run = project.spawn("up", "--lock-wait", "60")
        wait_for(lambda: running(project, "migrate up", "pg_try_advisory_lock"))
        pg.execute(
            project.database_url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = 'migrate up'",
        )
        out, err = run.communicate(timeout=WATCHDOG)
        assert run.returncode == 1, (out, err)
        line = err.strip().splitlines()[-1]
        assert line.startswith("error: lost the connection to the database at ")
        assert "while waiting for the migration lock" in line
        assert line.endswith("nothing was changed; run the command again")
        assert "cannot reach" not in err and "server is running" not in err
    finally:
        holder.kill()
        holder.wait(timeout=WATCHDOG)


@pytest.mark.deploy
def test_sigterm_during_the_lock_timeout_backoff_ends_the_wait(project: Project) -> None:
    with users_blocked(project, "b0ff00000001", "w", 60):
        run = project.spawn("up", "--lock-timeout", "100ms", "--retries", "6")
        assert run.stderr is not None
        seen = ""
        while "retry 4 of 6" not in seen:  # the fourth wait is about 4 s long
            line = run.stderr.readline()
            assert line, seen
            seen += line
        signalled = time.monotonic()
        run.send_signal(signal.SIGTERM)
        out, err = run.communicate(timeout=WATCHDOG)
        took = time.monotonic() - signalled
        assert run.returncode == 143, (out, seen + err)
        # before the back-off (4 s, give or take 20%) would have ended: the wait was cut
        assert took < 3.0, f"exited {took:.1f}s after SIGTERM"
        assert "error: terminated (SIGTERM); no revision was in progress" in err
        assert "w" not in pg.columns(project.database_url, "users")


@pytest.mark.deploy
def test_sigterm_after_an_autocommit_block_says_what_stays_committed(project: Project) -> None:
    assert project.migrate("up").code == 0
    project.write_revision(
        "users",
        "b10c00000001",
        "op.execute('CREATE TABLE before_block (id int)')\n"
        "with op.get_context().autocommit_block():\n"
        "    op.execute('CREATE TABLE in_block (id int)')\n"
        "op.execute('SELECT pg_sleep(30)')",
    )
    err = terminated_while(project, "pg_sleep")
    assert "rolled back" not in err
    assert (
        "revision b10c00000001 of module 'users' had entered its autocommit_block(): the "
        "statements before it and in it are committed, while the version table does not "
        "claim the revision"
    ) in err
    assert err.strip().endswith("no earlier revision of this run was committed")
    assert {"before_block", "in_block"} <= pg.tables(project.database_url)
    assert "b10c00000001" not in pg.version_rows(project.database_url)


@pytest.mark.deploy
def test_sigterm_during_commit_says_what_the_database_did(project: Project) -> None:
    assert project.migrate("up").code == 0
    slow_commit = (
        "op.execute('CREATE TABLE committed_slowly (id int)')\n"
        'op.execute("CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS '
        '$$ BEGIN PERFORM pg_sleep(30); RETURN NULL; END $$")\n'
        "op.execute('CREATE CONSTRAINT TRIGGER slow AFTER INSERT ON committed_slowly "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit()')\n"
        "op.execute('INSERT INTO committed_slowly VALUES (1)')"
    )
    project.write_revision("users", "c0aa17000001", "op.execute('CREATE TABLE first (id int)')")
    project.write_revision("users", "c0aa17000002", slow_commit)
    err = terminated_while(project, "COMMIT")  # the deferred trigger runs at COMMIT
    # the database is asked, once the session has ended, whether the COMMIT went through
    assert (
        "terminated (SIGTERM); revision c0aa17000002 of module 'users' was rolled back; "
        "1 earlier revision(s) of this run are committed"
    ) in err
    assert "committed_slowly" not in pg.tables(project.database_url)
    assert "first" in pg.tables(project.database_url)
    rows = pg.version_rows(project.database_url)
    assert "c0aa17000001" in rows and "c0aa17000002" not in rows


@pytest.mark.deploy
def test_a_holder_of_another_role_is_named_with_what_the_role_may_see(
    project: Project, plain_role: str
) -> None:
    """pg_stat_activity hides another role's state, query and times (unless the role has
    pg_read_all_stats): the lock holder is still named, and nothing crashes on the gaps."""
    role = make_url(plain_role).username
    database = make_url(project.database_url).database
    pg.execute(project.database_url, f'ALTER DATABASE "{database}" OWNER TO {role}')
    pg.execute(project.database_url, f"ALTER SCHEMA public OWNER TO {role}")
    try:
        assert project.migrate("up", env={"DATABASE_URL": plain_role}).code == 0
        holder = holders.start("advisory", project.database_url, 30, "holder-superuser")
        try:
            waited = project.migrate("up", "--lock-wait", "1", env={"DATABASE_URL": plain_role})
            assert waited.code == 3, waited.err
            [line] = waited.err.strip().splitlines()[-1:]
            assert "another migration holds the lock (pid " in line
            assert "of another role (what it runs is hidden from this one)" in line
            assert "unexpected" not in waited.err
        finally:
            holder.kill()
            holder.wait(timeout=WATCHDOG)
        project.write_revision(
            "users", "0e0000000001", "op.add_column('users', sa.Column('q', sa.Integer()))"
        )
        blocker = holders.start("table", project.database_url, 3, "blocker-superuser", "users")
        try:
            ridden = project.migrate(
                "up", "--lock-timeout", "300ms", env={"DATABASE_URL": plain_role}
            )
            assert ridden.code == 0, ridden.err
            assert "retry 1 of 3" in ridden.err and "of another role" in ridden.err
        finally:
            blocker.wait(timeout=WATCHDOG)
    finally:
        pg.execute(project.database_url, f'ALTER DATABASE "{database}" OWNER TO postgres')


def test_another_roles_shadow_template_is_never_cloned(
    project: Project, other_database: str, server_url: str
) -> None:
    """Templates are keyed by what they build and by the role that builds them: a second role
    with the same history builds its own instead of cloning objects it may not own."""
    roles = [f"tpl_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    urls = []
    for role, database in zip(roles, (project.database_url, other_database), strict=True):
        name = make_url(database).database
        pg.execute(server_url, f"CREATE ROLE {role} LOGIN CREATEDB")
        pg.execute(server_url, f'ALTER DATABASE "{name}" OWNER TO {role}')
        pg.execute(database, f"ALTER SCHEMA public OWNER TO {role}")
        urls.append(make_url(database).set(username=role).render_as_string(False))
    try:
        for url in urls:
            assert project.migrate("up", "-r", "a2aac9be69fc", env={"DATABASE_URL": url}).code == 0
            result = project.migrate("check", env={"DATABASE_URL": url})
            assert result.code == 0, result.out + result.err
    finally:
        drop_roles(server_url, roles)


def drop_roles(server_url: str, roles: list[str]) -> None:
    """Drop test roles, with the shadow templates they made and what they own elsewhere."""
    for role in roles:
        owning = pg.fetch(
            server_url,
            "SELECT DISTINCT d.datname FROM pg_shdepend s "
            "JOIN pg_database d ON d.oid = s.dbid OR (s.dbid = 0 AND s.objid = d.oid) "
            "WHERE s.refobjid = (SELECT oid FROM pg_roles WHERE rolname = $1)",
            role,
        )
        for (name,) in owning:
            if name.startswith("migrate_template_"):
                pg.execute(server_url, f'ALTER DATABASE "{name}" IS_TEMPLATE false')
                pg.execute(server_url, f'DROP DATABASE "{name}" WITH (FORCE)')
            else:
                pg.execute(server_url, f'ALTER DATABASE "{name}" OWNER TO postgres')
                url = make_url(server_url).set(database=name).render_as_string(False)
                pg.execute(url, f"REASSIGN OWNED BY {role} TO postgres")
        pg.execute(server_url, f"DROP ROLE {role}")


def test_check_runs_the_shadow_under_the_manifests_statement_timeout(
    project: Project, server_url: str
) -> None:
    """A role with a statement_timeout of its own (as managed servers set) migrates with the
    manifest's (none here), and its shadow builds must too: check passes where up passes."""
    role = f"stt_{uuid.uuid4().hex[:8]}"
    name = make_url(project.database_url).database
    pg.execute(server_url, f"CREATE ROLE {role} LOGIN CREATEDB")
    pg.execute(server_url, f"ALTER ROLE {role} SET statement_timeout = '1s'")
    pg.execute(server_url, f'ALTER DATABASE "{name}" OWNER TO {role}')
    pg.execute(project.database_url, f"ALTER SCHEMA public OWNER TO {role}")
    url = make_url(project.database_url).set(username=role).render_as_string(False)
    project.write_revision("agents", "5700e0000001", "op.execute('SELECT pg_sleep(1.2)')")
    try:
        up = project.migrate("up", env={"DATABASE_URL": url})
        assert up.code == 0, up.err
        checked = project.migrate("check", env={"DATABASE_URL": url})
        assert (checked.code, checked.out) == (0, "All checks passed.\n"), checked.err
    finally:
        drop_roles(server_url, [role])


def test_a_revision_that_fails_only_on_the_shadow_is_said_to(project: Project) -> None:
    """check builds what the database applied on a shadow: a failure there changed nothing in
    the database being migrated, and its message must not read like a deploy's."""
    project.write_revision(
        "users",
        "5ad0e0000001",
        "op.execute(\"DO $$ BEGIN IF current_database() LIKE 'migrate_%' THEN "
        "RAISE EXCEPTION 'only on a shadow'; END IF; END $$\")",
    )
    assert project.migrate("up").code == 0
    checked = project.migrate("check")
    assert checked.code == 1
    assert checked.err.strip() == (
        "error: module 'users' revision 5ad0e0000001 (services/users/migrations/"
        "5ad0e0000001_by_hand.py) fails on a shadow database: only on a shadow; nothing was "
        "changed in the database being migrated; fix the file"
    )
