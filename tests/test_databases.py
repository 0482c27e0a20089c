"""A module in a database of its own: moved there from the shared database, migrated beside the
others under both databases' locks, checked on its own server; a foreign key across databases
refused. (A second database on the test server stands in for a second server.)"""

from __future__ import annotations

import json
import signal
from dataclasses import replace

import pytest

from shared.db.url import DatabaseURL
from tests import holders, pg
from tests.conftest import Project
from tests.holders import WATCHDOG, wait_for
from tests.pg import shown

OWN = "BILLING_DATABASE_URL"
INVOICES_DDL = """
CREATE TYPE invoice_status AS ENUM ('draft', 'issued', 'paid');
CREATE TABLE invoices (
    id bigserial PRIMARY KEY, user_id uuid NOT NULL, number varchar(32) NOT NULL UNIQUE,
    amount_cents bigint NOT NULL, status invoice_status NOT NULL DEFAULT 'draft',
    issued_at timestamptz NOT NULL DEFAULT now(), currency varchar(3) NOT NULL DEFAULT 'EUR',
    paid_at timestamptz);
CREATE INDEX ix_invoices_user_id ON invoices (user_id);
CREATE INDEX ix_invoices_paid_at ON invoices (paid_at);
"""
NO_FK = "b1110000d0fc"  # the revision that drops billing's foreign key into users


def own_database(project: Project) -> None:
    """billing gets `database_url_env` in the manifest."""
    project.edit(
        "migrations.yaml",
        "  - name: billing\n    depends_on: [users]\n",
        f"  - name: billing\n    depends_on: [users]\n    database_url_env: {OWN}\n",
    )


def drop_the_foreign_key(project: Project) -> None:
    """What a team does first: billing's reference into users becomes a plain column."""
    project.edit(
        "services/billing/models.py",
        'mapped_column(ForeignKey("users.id"), index=True)',
        "mapped_column(index=True)",
    )
    project.write_revision(
        "billing",
        NO_FK,
        'op.drop_constraint("fk_invoices_user_id_users", "invoices", type_="foreignkey")',
        'op.create_foreign_key("fk_invoices_user_id_users", "invoices", "users", '
        '["user_id"], ["id"])',
    )


def applied_and_moved(project: Project, own: str) -> None:
    """The whole path of the README: applied in the shared database with data, the foreign
    key dropped, the tables and data copied, the manifest changed, the records moved."""
    env = {OWN: own}
    assert project.migrate("up").code == 0
    pg.execute(
        project.database_url,
        "INSERT INTO users (email, display_name) VALUES ('ann@example.com', 'Ann');"
        "INSERT INTO invoices (user_id, number, amount_cents) "
        "SELECT id, 'INV-1', 1200 FROM users",
    )
    drop_the_foreign_key(project)
    assert project.migrate("up").code == 0
    pg.execute(own, INVOICES_DDL)  # the user's job: the tables, then their data
    [(user, number, cents)] = pg.fetch(
        project.database_url, "SELECT user_id, number, amount_cents FROM invoices"
    )
    pg.execute(
        own,
        f"INSERT INTO invoices (user_id, number, amount_cents) VALUES "
        f"('{user}', '{number}', {cents})",
    )
    own_database(project)
    moved = project.migrate("module", "move", "billing", env=env)
    assert moved.code == 0, moved.err
    assert moved.out.startswith("Module 'billing' moved from ")


def status(project: Project, own: str) -> dict[str, dict[str, object]]:
    result = project.migrate("status", "--json", env={OWN: own})
    assert result.code == 0, result.err
    return {m["module"]: m for m in json.loads(result.out)["modules"]}


def logged(url: str) -> list[tuple[str, str, str]]:
    return [
        (r[0], r[1], r[2])
        for r in pg.fetch(url, "SELECT module, revision, direction FROM migrate_log ORDER BY id")
    ]


@pytest.mark.deploy
def test_a_module_moved_to_its_own_database(project: Project, other_databases: object) -> None:
    [own] = other_databases(1)  # type: ignore[operator]
    shared = project.database_url
    env = {OWN: own}
    assert project.migrate("up").code == 0
    billing_log = [e for e in logged(shared) if e[0] == "billing"]
    drop_the_foreign_key(project)
    assert project.migrate("up").code == 0
    billing_log.append(("billing", NO_FK, "up"))
    finished_at = pg.fetch(shared, "SELECT finished_at FROM migrate_log WHERE module = 'billing'")
    pg.execute(own, INVOICES_DDL)
    own_database(project)

    # the manifest says billing lives elsewhere, its records are still here: nothing moves it
    before = status(project, own)
    assert before["billing"]["state"] == "not moved"
    assert before["billing"]["database"] == shown(own)
    assert before["users"]["database"] == shown(shared)
    refused = project.migrate("up", env=env)
    assert refused.code == 2
    assert refused.err.strip().endswith(
        "which lives in $BILLING_DATABASE_URL; finish moving it: migrate module move billing"
    )

    moved = project.migrate("module", "move", "billing", env=env)
    assert moved.code == 0, moved.err
    assert moved.out == (
        f"Module 'billing' moved from {shown(shared)} to {shown(own)}: "
        f"wrote its version rows ({NO_FK}) and 3 log entries there, then removed them from "
        f"{shown(shared)}.\n"
    )
    assert pg.version_rows(own) == {NO_FK}
    assert pg.version_rows(shared) == {"fe95ecace8c3", "a9b40a91187e"}
    assert logged(own) == billing_log
    assert [e for e in logged(shared) if e[0] == "billing"] == []
    # the entries say when and by whom they were applied, not when they were moved
    assert pg.fetch(own, "SELECT finished_at FROM migrate_log ORDER BY id") == finished_at

    again = project.migrate("module", "move", "billing", env=env)
    assert again.code == 0 and "Nothing to move." in again.out
    after = status(project, own)
    assert {m: s["state"] for m, s in after.items()} == dict.fromkeys(after, "up to date")
    assert after["billing"]["current"] == NO_FK
    assert project.migrate("up", env=env).out == "No migrations to apply.\n"

    # new revisions go to their own module's database, in dependency order across them
    project.write_revision(
        "users",
        "a0de00000001",
        "op.add_column('users', sa.Column('nickname', sa.String(40)))",
        "op.drop_column('users', 'nickname')",
    )
    project.write_revision(
        "billing",
        "b0de00000001",
        "op.add_column('invoices', sa.Column('memo', sa.Text()))",
        "op.drop_column('invoices', 'memo')",
    )
    ran = project.migrate("up", env=env)
    assert ran.code == 0, ran.err
    assert [line.split()[1] for line in ran.out.splitlines()[:2]] == ["users", "billing"]
    assert "nickname" in pg.columns(shared, "users")
    assert "memo" in pg.columns(own, "invoices")
    assert pg.version_rows(own) == {"b0de00000001"}
    assert "b0de00000001" not in pg.version_rows(shared)
    table = project.migrate("status", env=env).out.splitlines()
    assert table[0].split() == ["MODULE", "CURRENT", "HEAD", "PENDING", "STATE", "DATABASE"]
    assert table[3].split()[-1] == shown(own)

    # rolled back where it lives; what depends on it across databases only ordered the runs
    down = project.migrate("down", "--branch", "billing", env=env)
    assert down.code == 0, down.err
    assert pg.version_rows(own) == {NO_FK} and "memo" not in pg.columns(own, "invoices")
    down_users = project.migrate("down", "--branch", "users", env=env)
    assert down_users.code == 0 and "Unapplying users a0de00000001" in down_users.out
    log = json.loads(project.migrate("log", "--json", env=env).out)["entries"]
    assert {e["database"] for e in log if e["module"] == "billing"} == {shown(own)}
    history = json.loads(project.migrate("history", "--json", env=env).out)["modules"]
    assert {m["module"]: m["database"] for m in history}["billing"] == shown(own)
    for rolled_back in ("users", "billing"):  # discarded: the models never had them
        project.head_file(rolled_back).unlink()
    checked = project.migrate("check", env=env)
    assert (checked.code, checked.out) == (0, "All checks passed.\n"), checked.out


@pytest.mark.deploy
@pytest.mark.console_script
def test_a_move_cut_short_between_its_steps_is_finished_by_running_it_again(
    project: Project, other_databases: object
) -> None:
    [own] = other_databases(1)  # type: ignore[operator]
    shared = project.database_url
    env = {OWN: own}
    assert project.migrate("up").code == 0
    drop_the_foreign_key(project)
    assert project.migrate("up").code == 0
    own_database(project)
    # writes to the shared version table wait (reads pass): the move stops after its first step
    holder = holders.start("exclusive", shared, 30, "move-blocker", table="alembic_version")
    try:
        mover = project.spawn("module", "move", "billing", env=env)
        wait_for(
            lambda: (
                pg.fetch(
                    shared,
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                    "'migrate module move' AND wait_event_type = 'Lock'",
                )
                == [(1,)]
            )
        )
        mover.send_signal(signal.SIGKILL)  # a crash between the two steps
        mover.communicate(timeout=WATCHDOG)
    finally:
        holder.kill()
        holder.wait(timeout=WATCHDOG)
    assert pg.version_rows(own) == {NO_FK}  # written to the new database first
    assert NO_FK in pg.version_rows(shared)  # and not yet removed from the old one
    assert status(project, own)["billing"]["state"] == "move unfinished"
    assert project.migrate("up", env=env).code == 2

    again = project.migrate("module", "move", "billing", env=env)
    assert again.code == 0, again.err
    assert "its records were already in" in again.out and "removed them from" in again.out
    assert pg.version_rows(shared) == {"fe95ecace8c3", "a9b40a91187e"}
    assert [e for e in logged(shared) if e[0] == "billing"] == []
    assert len(logged(own)) == 3  # copied once
    assert status(project, own)["billing"]["state"] == "up to date"


def test_a_database_inside_a_squash_is_moved_when_a_module_lives_elsewhere(
    project: Project, other_databases: object
) -> None:
    """Cutting the edges between databases keeps the edges as the files declare them: agents'
    depends_on into users' first revision does not mean the squash (both its revisions)."""
    [own] = other_databases(1)  # type: ignore[operator]
    shared = project.database_url
    env = {OWN: own}
    for args in (("-r", "a2aac9be69fc"), ("-b", "agents"), ("-b", "billing")):
        assert project.migrate("up", *args).code == 0
    squashed = project.migrate("squash", "-b", "users")
    assert squashed.code == 0, squashed.err
    own_database(project)
    moved = project.migrate("module", "move", "billing", env=env)
    assert moved.code == 0, moved.err
    assert pg.version_rows(shared) == {"a9b40a91187e"}  # users' first revision, through agents

    users = status(project, own)["users"]
    assert (users["state"], users["current"]) == ("behind, via old revisions", "a2aac9be69fc")
    assert "preferences" not in pg.columns(shared, "users")
    ran = project.migrate("up", env=env)
    assert ran.code == 0, ran.err
    assert ran.out.startswith("Applying users fe95ecace8c3 add preferences to users... OK")
    assert "Moving onto " in ran.out
    assert "preferences" in pg.columns(shared, "users")
    after = status(project, own)
    assert {m: s["state"] for m, s in after.items()} == dict.fromkeys(after, "up to date")


@pytest.mark.deploy
def test_replicas_race_on_both_databases(project: Project, other_databases: object) -> None:
    [own] = other_databases(1)  # type: ignore[operator]
    shared = project.database_url
    env = {OWN: own}
    applied_and_moved(project, own)
    # each database gets a slow revision: the replicas meet at both locks
    project.write_revision("users", "a1ce00000001", "op.execute('SELECT pg_sleep(0.5)')")
    project.write_revision("billing", "b1ce00000001", "op.execute('SELECT pg_sleep(0.5)')")
    project.write_revision("users", "a1ce00000002", "op.execute('SELECT 2')")
    replicas = [project.spawn("up", "--lock-wait", "60", env=env) for _ in range(4)]
    outputs = [p.communicate(timeout=WATCHDOG) for p in replicas]
    assert [p.returncode for p in replicas] == [0] * 4, outputs
    assert sum("Applied 3 revisions" in out for out, _ in outputs) == 1, outputs
    assert sum(out == "No migrations to apply.\n" for out, _ in outputs) == 3, outputs
    ups = [e for e in logged(shared) + logged(own) if e[2] == "up"]
    new = [e[1] for e in ups if e[1].startswith(("a1ce", "b1ce"))]
    assert sorted(new) == ["a1ce00000001", "a1ce00000002", "b1ce00000001"]  # each once
    assert ("billing", "b1ce00000001", "up") in logged(own)
    assert pg.version_rows(own) == {"b1ce00000001"}
    assert pg.version_rows(shared) == {"a1ce00000002", "a9b40a91187e"}


def test_a_foreign_key_across_databases_is_refused(
    project: Project, other_databases: object
) -> None:
    [own] = other_databases(1)  # type: ignore[operator]
    env = {OWN: own}
    own_database(project)
    fix = (
        "table 'invoices' of module 'billing' (database $BILLING_DATABASE_URL) has a foreign "
        "key (user_id) to table 'users' of module 'users' (database $DATABASE_URL), and no "
        "foreign key crosses databases; drop it from billing's models (keep the column) and "
        "create a revision, or keep both modules in one database"
    )
    checked = project.migrate("check", "--json", env=env)
    assert checked.code == 1
    findings = json.loads(checked.out)["findings"]
    assert {"module": "billing", "kind": "cross-database", "detail": fix} in findings
    created = project.migrate("create", "more", "--module", "billing", env=env)
    assert (created.code, created.err) == (2, f"error: {fix}\n")
    assert len(project.versions("billing")) == 2  # nothing written


def test_plain_alembic_refuses_a_manifest_of_several_databases(project: Project) -> None:
    own_database(project)
    result = project.alembic("upgrade", "heads")
    assert result.code == 255  # Alembic's own for a failed command
    assert result.out == (
        "FAILED: migrations.yaml puts modules in databases of their own (database_url_env); "
        "plain alembic drives one database: run migrate up\n"
    )
    assert pg.tables(project.database_url) == set()


def test_a_module_whose_database_is_not_set_is_named(project: Project) -> None:
    own_database(project)
    result = project.migrate("status")
    assert result.code == 2
    assert result.err == (
        "error: module 'billing' lives in a database of its own, named by "
        "$BILLING_DATABASE_URL (database_url_env in migrations.yaml), which is not set; "
        "export BILLING_DATABASE_URL=postgresql://USER@HOST:PORT/DATABASE\n"
    )
    assert project.migrate("up", "--branch", "agents").code == 0  # not needed: not asked for


def test_one_database_spelled_two_ways_is_named_not_waited_for(project: Project) -> None:
    own_database(project)
    url = DatabaseURL.parse(project.database_url)
    [(host, port)] = url.hosts
    # the same server by another name: its socket directory with a slash more, or localhost
    other = f"{host}/" if host.startswith("/") else host.replace("127.0.0.1", "localhost")
    spelled = replace(url, hosts=((other, port),))
    assert spelled.display() != url.display()
    result = project.migrate("up", "--lock-wait", "20", env={OWN: spelled.secret_string()})
    assert result.code == 2
    first, second = sorted([url, spelled], key=DatabaseURL.display)
    named = {url.display(): "$DATABASE_URL", spelled.display(): "$BILLING_DATABASE_URL"}
    assert result.err.startswith(
        f"error: {named[first.display()]} ({first.display()}) and {named[second.display()]} "
        f"({second.display()}) are one database spelled two ways"
    )
    assert result.err.endswith(
        "are one database spelled two ways; give them the same URL, or give the module a "
        "database of its own\n"
    )


def test_database_url_env_must_name_a_variable(project: Project) -> None:
    project.edit(
        "migrations.yaml",
        "  - name: billing\n    depends_on: [users]\n",
        "  - name: billing\n    depends_on: [users]\n    database_url_env: billing-url\n",
    )
    result = project.migrate("heads")
    assert (result.code, result.err) == (
        2,
        "error: migrations.yaml: module 'billing': database_url_env 'billing-url' must be the "
        "name of an environment variable ([A-Z_][A-Z0-9_]*), e.g. BILLING_DATABASE_URL\n",
    )
