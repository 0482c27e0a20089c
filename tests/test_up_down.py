"""`up`, `down`, `status`, `current` through the real console script, read back from the catalog."""

from __future__ import annotations

import json

import pytest

from tests import pg
from tests.conftest import Project
from tests.pg import shown

# up and down, the main path: the script itself
pytestmark = [pytest.mark.console_script, pytest.mark.deploy]

ALL_TABLES = {"users", "agents", "invoices", *pg.BOOKKEEPING}


def heads(project: Project) -> dict[str, str]:
    data = json.loads(project.migrate("heads", "--json").out)
    return {m["module"]: m["heads"][0] for m in data["modules"]}


def status(project: Project) -> dict[str, dict[str, object]]:
    result = project.migrate("status", "--json")
    assert result.code == 0, result.err
    return {m["module"]: m for m in json.loads(result.out)["modules"]}


def test_up_builds_every_module_and_status_reads_up_to_date(project: Project) -> None:
    before = status(project)
    assert {m["state"] for m in before.values()} == {"not started"}
    assert all(m["current"] is None and m["pending"] == 2 for m in before.values())

    result = project.migrate("up")
    assert result.code == 0, result.err
    assert "Applying users" in result.out and "Applied 6 revisions in " in result.out

    url = project.database_url
    assert pg.tables(url) == ALL_TABLES
    assert {"id", "email", "display_name", "status", "created_at", "preferences"} <= pg.columns(
        url, "users"
    )
    assert "description" in pg.columns(url, "agents")
    assert pg.constraints(url, "agents")["fk_agents_owner_id_users"] == "f"
    assert pg.constraints(url, "users")["uq_users_email"] == "u"
    assert {"user_status", "agent_kind", "invoice_status"} <= pg.enum_types(url)

    after = status(project)
    expected = heads(project)
    for name, row in after.items():
        # users is a dependency of agents and billing; plain Alembic reports it "not on head"
        assert row == {
            "module": name,
            "branch": name,
            "current": expected[name],
            "head": expected[name],
            "pending": 0,
            "state": "up to date",
            "models": "found",
            "database": shown(project.database_url),  # host:port/name
        }
    again = project.migrate("up")
    assert again.code == 0 and "No migrations to apply." in again.out


def test_down_and_up_move_one_branch_only(project: Project) -> None:
    assert project.migrate("up").code == 0
    url = project.database_url
    before_users = pg.columns(url, "users")

    down = project.migrate("down", "--branch", "agents")
    assert down.code == 0, down.err
    assert "Unapplying agents" in down.out
    assert "description" not in pg.columns(url, "agents")
    assert pg.columns(url, "users") == before_users
    rows = status(project)
    assert rows["agents"]["state"] == "behind" and rows["agents"]["pending"] == 1
    assert rows["users"]["state"] == rows["billing"]["state"] == "up to date"

    up = project.migrate("up", "--branch", "agents")
    assert up.code == 0, up.err
    assert "description" in pg.columns(url, "agents")
    assert status(project)["agents"]["state"] == "up to date"


def test_up_one_branch_on_empty_database_brings_only_what_it_needs(project: Project) -> None:
    result = project.migrate("up", "--module", "agents")
    assert result.code == 0, result.err
    assert pg.tables(project.database_url) == {"users", "agents", *pg.BOOKKEEPING}
    rows = status(project)
    assert rows["agents"]["state"] == "up to date"
    assert rows["billing"]["state"] == "not started"


def test_up_to_a_revision_and_down_to_base(project: Project) -> None:
    first = project.versions("billing")
    history = json.loads(project.migrate("history", "--branch", "billing", "--json").out)
    oldest = history["modules"][0]["revisions"][-1]["revision"]
    assert any(oldest in p.name for p in first)

    result = project.migrate("up", "--revision", oldest[:6])
    assert result.code == 0, result.err
    assert "invoices" in pg.tables(project.database_url)
    assert "currency" not in pg.columns(project.database_url, "invoices")
    assert status(project)["billing"]["current"] == oldest

    assert project.migrate("up").code == 0
    down = project.migrate("down", "--branch", "billing", "--revision", "base")
    assert down.code == 0, down.err
    assert "invoices" not in pg.tables(project.database_url)
    assert "invoice_status" not in pg.enum_types(project.database_url)
    assert status(project)["billing"]["state"] == "not started"


def test_down_without_branch_needs_one_started_module(project: Project) -> None:
    assert project.migrate("up", "--branch", "users").code == 0
    only = project.migrate("down")
    assert only.code == 0, only.err
    assert "Unapplying users" in only.out

    assert project.migrate("up").code == 0
    several = project.migrate("down")
    assert several.code == 2
    assert "name one with --branch" in several.err and "agents" in several.err
    assert pg.tables(project.database_url) == ALL_TABLES

    # a revision id names its module: `down -r <id>` as in the single-application days
    to_first = project.migrate("down", "-r", "6d1a8")
    assert to_first.code == 0, to_first.err
    assert "Unapplying agents a9b40a91187e" in to_first.out and "users" not in to_first.out
    assert json.loads(project.migrate("current", "--json").out)["modules"][1]["current"] == (
        "6d1a84599872"
    )
    unknown = project.migrate("down", "-r", "0ddba11")
    assert unknown.code == 2 and "unknown revision '0ddba11'" in unknown.err


def test_down_refuses_to_drag_dependents_unless_cascade(project: Project) -> None:
    assert project.migrate("up").code == 0
    refused = project.migrate("down", "--branch", "users", "--revision", "base")
    assert refused.code == 2
    assert "would also roll back" in refused.err and "--cascade" in refused.err
    assert pg.tables(project.database_url) == ALL_TABLES

    plan = project.migrate("down", "--branch", "users", "--revision", "base", "--plan", "--cascade")
    assert plan.code == 0 and "Would unapply:" in plan.out
    assert pg.tables(project.database_url) == ALL_TABLES

    cascade = project.migrate("down", "--branch", "users", "--revision", "base", "--cascade")
    assert cascade.code == 0, cascade.err
    assert "Unapplying agents" in cascade.out and "Unapplying billing" in cascade.out
    assert pg.tables(project.database_url) == pg.BOOKKEEPING


def test_current_names_each_module(project: Project) -> None:
    assert project.migrate("up", "--branch", "billing").code == 0
    expected = heads(project)
    result = project.migrate("current", "--json")
    where = shown(project.database_url)  # host:port/name, never a password
    assert json.loads(result.out) == {
        "version": 1,
        "modules": [
            {
                "module": "users",
                "branch": "users",
                "current": pg_current(project, "users"),
                "database": where,
            },
            {"module": "agents", "branch": "agents", "current": None, "database": where},
            {
                "module": "billing",
                "branch": "billing",
                "current": expected["billing"],
                "database": where,
            },
        ],
    }
    one = project.migrate("current", "--branch", "billing")
    assert one.out.split() == ["MODULE", "CURRENT", "billing", expected["billing"]]


def pg_current(project: Project, module: str) -> str:
    """The users revision billing's first revision depends on (the one `up --branch` needed)."""
    history = json.loads(project.migrate("history", "--json").out)
    billing = {
        r["revision"]: r
        for m in history["modules"]
        if m["module"] == "billing"
        for r in m["revisions"]
    }
    deps = {d for r in billing.values() for d in r["depends_on"]}
    assert len(deps) == 1
    return deps.pop()


def test_plan_changes_nothing(project: Project) -> None:
    result = project.migrate("up", "--plan")
    assert result.code == 0
    assert result.out.startswith("Would apply:") and len(result.out.splitlines()) == 7
    assert pg.tables(project.database_url) == set()


def test_status_check_exits_1_until_everything_is_applied(project: Project) -> None:
    behind = project.migrate("status", "--check")
    assert behind.code == 1 and "not started" in behind.out
    assert project.migrate("up").code == 0
    done = project.migrate("status", "--check")
    assert done.code == 0 and "behind" not in done.out


def test_up_one_module_needs_one_head_of_its_own_only(project: Project) -> None:
    from tests.test_isolation import twin_head

    twin_head(project, "users", "0badc0ffee01")  # users has two heads; agents needs neither
    result = project.migrate("up", "--branch", "agents")
    assert result.code == 0, result.err
    applied = [line.split()[1:3] for line in result.out.splitlines() if line.startswith("Applying")]
    assert applied == [
        ["users", "a2aac9be69fc"],
        ["agents", "6d1a84599872"],
        ["agents", "a9b40a91187e"],
    ]
    rows = status(project)
    assert rows["agents"]["state"] == "up to date"
    assert rows["users"]["current"] == "a2aac9be69fc"
    sql = project.migrate("up", "--branch", "agents", "--sql", url=False)
    assert sql.code == 0, sql.err
    assert "0badc0ffee01" not in sql.out and "a9b40a91187e" in sql.out

    refused = project.migrate("up", "--branch", "users")
    assert refused.code == 1
    assert (
        "module 'users' has 2 heads" in refused.err
        and "migrate merge --module users" in refused.err
    )


def test_a_step_past_the_head_or_the_base_is_refused_as_alembic_refuses_it(
    project: Project,
) -> None:
    past = project.migrate("up", "-r", "agents@+3")
    assert past.code == 2, past.out + past.err
    assert past.err.splitlines() == [
        "error: module 'agents' has 2 pending revision(s); +3 goes past its head: give agents@head"
    ]
    assert pg.tables(project.database_url) == set()
    assert project.migrate("up", "-r", "agents@+2").code == 0
    below = project.migrate("down", "-r", "agents@-3")
    assert below.code == 2, below.out + below.err
    assert below.err.splitlines() == [
        "error: module 'agents' has 2 applied revision(s); -3 goes past its base: give base"
    ]
    assert "agents" in pg.tables(project.database_url)
