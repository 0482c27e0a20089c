"""Correct on real schemas: version tables Alembic can always move, revisions that apply and
leave no trace, every schema, and revisions named the way Alembic users name them."""

from __future__ import annotations

import ast
import json

from tests import pg
from tests.conftest import BIN, Project

AGENTS_MODEL = "services/agents/models.py"
NAME_LINE = "    name: Mapped[str] = mapped_column(String(100))\n"


def heads(project: Project) -> dict[str, str]:
    data = json.loads(project.migrate("heads", "--json").out)
    return {m["module"]: m["heads"][0] for m in data["modules"] if m["heads"]}


def status(project: Project) -> dict[str, object]:
    result = project.migrate("status", "--json")
    assert result.code == 0, result.err
    return json.loads(result.out)


def audit_module(project: Project) -> None:
    """A module whose table references both users and agents (agents depends on users)."""
    added = project.migrate(
        "module", "add", "audit", "--depends-on", "users", "--depends-on", "agents"
    )
    assert added.code == 0, added.err
    models = project.root / "services/audit/models.py"
    models.write_text(
        models.read_text() + "\nimport uuid\n\nfrom sqlalchemy import ForeignKey\n"
        "from sqlalchemy.orm import Mapped, mapped_column\n\n\n"
        "class AuditEntry(Base):\n"
        "    __tablename__ = 'audit_entries'\n"
        "    id: Mapped[int] = mapped_column(primary_key=True)\n"
        "    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey('users.id'))\n"
        "    agent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey('agents.id'))\n"
    )


# ---- the version table is never left where Alembic cannot move -------------------------------


def test_create_writes_the_minimal_depends_on(project: Project) -> None:
    # agents' newest revision needs users' head: the users head is then implied by agents'
    project.write_revision("agents", "a9e100000001", "pass", depends_on=heads(project)["users"])
    audit_module(project)
    result = project.migrate("create", "create audit", "--module", "audit")
    assert result.code == 0, result.err
    [path] = project.versions("audit")
    text = path.read_text()
    assert "depends_on: str | Sequence[str] | None = 'a9e100000001'\n" in text  # not users'
    # the change summary ends with the dependency; lint's findings follow it
    summary = result.out.split("  lint (migrate lint):")[0]
    assert summary.strip().endswith("depends on a9e100000001")

    assert project.migrate("up").code == 0
    down = project.migrate("down", "--branch", "audit")
    assert down.code == 0, down.err
    rows = pg.version_rows(project.database_url)
    assert heads(project)["users"] not in rows  # implied by agents' head: no row of its own
    for args in (("up", "--plan"), ("up", "--branch", "audit"), ("down", "--branch", "audit")):
        result = project.migrate(*args)
        assert result.code == 0, (args, result.err)
    plain = project.alembic("upgrade", "heads")
    assert plain.code == 0, plain.err
    assert "audit_entries" in pg.tables(project.database_url)


def implied_row_by_plain_alembic(project: Project) -> str:
    """The state the issue describes: a revision with a redundant depends_on, rolled back by
    plain Alembic, which leaves one version row implied by another."""
    users = heads(project)["users"]
    project.write_revision("agents", "a9e100000002", "pass", depends_on=users)
    project.migrate("module", "add", "audit", "--depends-on", "agents")
    project.write_revision(
        "audit",
        "aud100000002",
        "op.execute('CREATE TABLE audit_probe (id int)')",
        "op.execute('DROP TABLE audit_probe')",
        depends_on=(users, "a9e100000002"),
        parent=None,
    )
    assert project.alembic("upgrade", "heads").code == 0
    assert project.alembic("downgrade", "audit@-1").code == 0
    stuck = project.alembic("upgrade", "heads")
    assert stuck.code != 0 and "overlaps" in stuck.err + stuck.out  # plain Alembic is stuck
    return users


def test_a_version_table_plain_alembic_cannot_move_is_reported_and_tidied(
    project: Project,
) -> None:
    implied = implied_row_by_plain_alembic(project)
    data = status(project)
    assert data["version_table"] == {"ok": False, "implied_rows": [implied]}
    assert project.migrate("status", "--check").code == 1
    human = project.migrate("status").out
    assert f"version table: row(s) {implied} implied by other rows" in human
    found = json.loads(project.migrate("check", "--json").out)["findings"]
    [finding] = [f for f in found if f["kind"] == "version table"]
    assert implied in finding["detail"] and "run `migrate up` to tidy it" in finding["detail"]

    up = project.migrate("up")
    assert up.code == 0, up.err
    assert f"Tidied the version table (removed {implied}" in up.out
    assert implied not in pg.version_rows(project.database_url)
    assert status(project)["version_table"] == {"ok": True, "implied_rows": []}
    assert project.alembic("upgrade", "heads").code == 0  # plain Alembic moves again


def test_a_version_table_edited_by_hand_still_goes_up_and_down(project: Project) -> None:
    assert project.migrate("up").code == 0
    first_users = [
        r["revision"]
        for m in json.loads(project.migrate("history", "--json").out)["modules"]
        if m["module"] == "users"
        for r in m["revisions"]
    ][-1]
    pg.execute(project.database_url, f"INSERT INTO alembic_version VALUES ('{first_users}')")
    assert status(project)["version_table"]["implied_rows"] == [first_users]
    down = project.migrate("down", "--branch", "billing")
    assert down.code == 0, down.err
    assert first_users not in pg.version_rows(project.database_url)  # tidied with the step
    assert project.migrate("up").code == 0
    assert status(project)["version_table"]["ok"] is True


# ---- downgrades leave no trace; upgrades apply -----------------------------------------------


def test_a_domain_goes_down_with_its_table_and_comes_back(project: Project) -> None:
    assert project.migrate("up").code == 0
    project.edit(
        AGENTS_MODEL,
        "from shared.db import Base\n",
        "from sqlalchemy.dialects.postgresql import DOMAIN\n\nfrom shared.db import Base\n\n"
        "Slug = DOMAIN('slug', String(60), check=\"VALUE ~ '^[a-z0-9-]+$'\")\n",
    )
    path = project.root / AGENTS_MODEL
    path.write_text(
        path.read_text() + "\n\nclass AgentTag(Base):\n    __tablename__ = 'agent_tags'\n"
        "    id: Mapped[int] = mapped_column(primary_key=True)\n"
        "    slug: Mapped[str] = mapped_column(Slug)\n"
    )
    created = project.migrate("create", "agent tags", "--module", "agents")
    assert created.code == 0, created.err
    assert 'DROP DOMAIN IF EXISTS "slug"' in project.head_file("agents").read_text()
    assert project.migrate("up").code == 0
    down = project.migrate("down", "--branch", "users", "--revision", "base", "--cascade")
    assert down.code == 0, down.err
    assert "slug" not in {
        r[0] for r in pg.fetch(project.database_url, "SELECT typname FROM pg_type")
    }
    again = project.migrate("up")
    assert again.code == 0, again.err
    assert "agent_tags" in pg.tables(project.database_url)


def test_two_tables_that_reference_each_other(project: Project) -> None:
    path = project.root / AGENTS_MODEL
    path.write_text(
        path.read_text() + "\n\nclass Team(Base):\n    __tablename__ = 'teams'\n"
        "    id: Mapped[int] = mapped_column(primary_key=True)\n"
        "    lead_id: Mapped[int | None] = mapped_column(ForeignKey('team_members.id'))\n"
        "\n\nclass TeamMember(Base):\n    __tablename__ = 'team_members'\n"
        "    id: Mapped[int] = mapped_column(primary_key=True)\n"
        "    team_id: Mapped[int] = mapped_column(ForeignKey('teams.id'))\n"
    )
    created = project.migrate("create", "teams", "--module", "agents")
    assert created.code == 0, created.err
    assert "unresolvable cycles" not in created.err
    text = project.head_file("agents").read_text()
    upgrade, downgrade = text.split("def downgrade()")
    assert upgrade.count("op.create_foreign_key(") == 2
    assert downgrade.index("op.drop_constraint(") < downgrade.index("op.drop_table(")
    for step in (("up",), ("down", "--branch", "agents"), ("up",)):
        result = project.migrate(*step)
        assert result.code == 0, (step, result.err)
    kinds = pg.constraints(project.database_url, "teams")
    assert kinds["fk_teams_lead_id_team_members"] == "f"


def test_create_proves_the_file_and_keeps_it_when_it_fails(project: Project) -> None:
    project.edit(
        AGENTS_MODEL,
        NAME_LINE,
        NAME_LINE + "    score: Mapped[int] = mapped_column(server_default=text('no_such_fn()'))\n",
    )
    project.edit(AGENTS_MODEL, "from sqlalchemy import ", "from sqlalchemy import text, ")
    before = project.versions("agents")
    result, pid = project.migrate_with_pid("create", "add score", "--module", "agents")
    assert result.code == 1
    [kept] = [p for p in project.versions("agents") if p not in before]
    line = result.err.strip()
    assert line.startswith(f"error: {kept.relative_to(project.root)} was written, but its upgrade")
    assert "function no_such_fn() does not exist" in line and "edit the file" in line
    assert len(result.err.strip().splitlines()) == 1
    assert pg.shadows(project.database_url, pid) == []


def test_a_shadow_build_names_the_revision_that_fails(project: Project) -> None:
    broken = project.write_revision("users", "b40e00000002", "op.execute('SELECT 1/0')")
    project.edit(AGENTS_MODEL, NAME_LINE, NAME_LINE + "    rank: Mapped[int | None]\n")
    for args in (("create", "rank", "--module", "agents"), ("check",), ("owners",)):
        result = project.migrate(*args)
        assert result.code == 1, (args, result.err)
        assert f"module 'users' revision b40e00000002 ({broken.relative_to(project.root)})" in (
            result.err
        ), args
        assert "division by zero" in result.err


def test_autocommit_block_revisions_in_shadow_builds(project: Project) -> None:
    project.write_revision(
        "users",
        "c0cc00000002",
        "with op.get_context().autocommit_block():\n"
        "    op.execute('CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_users_display_name '\n"
        "               'ON users (display_name)')",
        "with op.get_context().autocommit_block():\n"
        "    op.execute('DROP INDEX CONCURRENTLY IF EXISTS ix_users_display_name')",
    )
    project.edit(
        "services/users/models.py",
        "    display_name: Mapped[str] = mapped_column(String(200))",
        "    display_name: Mapped[str] = mapped_column(String(200), index=True)",
    )
    for args in (("check",), ("owners",)):
        result = project.migrate(*args)
        assert result.code == 0, (args, result.out, result.err)
    project.edit(AGENTS_MODEL, NAME_LINE, NAME_LINE + "    rank: Mapped[int | None]\n")
    created = project.migrate("create", "rank", "--module", "agents")
    assert created.code == 0, created.err


def test_a_kept_shadow_build_follows_the_helpers_its_revisions_import(project: Project) -> None:
    """A revision builds its table from a helper of the repository, which takes the columns
    from another module (relatively): changing that one changes what the revision builds."""
    agents = project.root / "services/agents"
    (agents / "migrations_helpers.py").write_text(
        "import sqlalchemy as sa\n\nfrom .note_columns import COLUMNS\n\n\n"
        "def note_columns():\n    return [sa.Column(name, kind) for name, kind in COLUMNS]\n"
    )
    columns = agents / "note_columns.py"
    columns.write_text("import sqlalchemy as sa\n\nCOLUMNS = [('body', sa.Text())]\n")
    project.write_revision(
        "agents",
        "4e1700000001",
        "from services.agents.migrations_helpers import note_columns\n"
        "op.create_table('agent_notes', sa.Column('id', sa.Integer(), primary_key=True),\n"
        "                *note_columns())",
        "op.drop_table('agent_notes')",
    )
    model = agents / "models.py"
    model.write_text(
        model.read_text() + "\n\nclass AgentNote(Base):\n    __tablename__ = 'agent_notes'\n"
        "    id: Mapped[int] = mapped_column(primary_key=True)\n"
        "    body: Mapped[str | None] = mapped_column(Text)\n"
    )
    # all applied, so check keeps its whole build; `up` imports the helper from the copy, as
    # from a repository installed in its environment
    up = project.run([str(BIN / "migrate"), "up"], env={"PYTHONPATH": str(project.root)})
    assert up.code == 0, up.err
    assert project.migrate("check").out.strip() == "All checks passed."
    columns.write_text(columns.read_text().replace("]", ", ('pinned', sa.Boolean())]"))
    body = "    body: Mapped[str | None] = mapped_column(Text)\n"
    project.edit(AGENTS_MODEL, body, body + "    pinned: Mapped[bool | None]\n")
    again = project.migrate("check")
    assert (again.code, again.out.strip()) == (0, "All checks passed."), again.out + again.err


# ---- every schema, not only public -----------------------------------------------------------


def test_version_and_log_tables_in_a_schema_of_their_own(project: Project) -> None:
    manifest = project.root / "migrations.yaml"
    manifest.write_text(
        manifest.read_text().replace(
            "settings:\n", "settings:\n  version_table_schema: migrations\n"
        )
    )
    assert project.migrate("up").code == 0
    bookkeeping = pg.fetch(
        project.database_url,
        "SELECT tablename FROM pg_tables WHERE schemaname = 'migrations' ORDER BY 1",
    )
    assert bookkeeping == [("alembic_version",), ("migrate_log",)]
    assert {m["state"] for m in status(project)["modules"]} == {"up to date"}
    assert project.alembic("current").code == 0
    assert project.alembic("check").code == 0
    assert project.migrate("check").out.strip() == "All checks passed."


# ---- good citizen for plain Alembic ----------------------------------------------------------


def test_plain_autogenerate_never_drops_the_bookkeeping_tables(project: Project) -> None:
    assert project.migrate("up").code == 0
    check = project.alembic("check")
    assert check.code == 0 and "No new upgrade operations detected." in check.out, check.err
    written = project.alembic("revision", "--autogenerate", "-m", "raw", "--head", "agents@head")
    assert written.code == 0, written.err
    [raw] = [p for p in project.versions("agents") if p.name.endswith("_raw.py")]
    assert "migrate_log" not in raw.read_text() and "alembic_version" not in raw.read_text()


# ---- revisions, as users name them -----------------------------------------------------------


def test_revision_expressions(project: Project) -> None:
    top = heads(project)
    for expression in ("billing@head", "head", "heads"):
        up = project.migrate("up", "--revision", expression, "--plan")
        assert up.code == 0, (expression, up.err)
    assert project.migrate("up", "-r", "billing@head").code == 0
    assert status(project)["modules"][2]["current"] == top["billing"]
    assert project.migrate("up", "-r", "agents@+1").code == 0
    agents = json.loads(project.migrate("current", "--json").out)["modules"][1]["current"]
    assert agents != top["agents"] and agents is not None
    assert project.migrate("up", "-r", "+1", "--branch", "agents").code == 0
    assert project.migrate("current", "--branch", "agents").out.split()[-1] == top["agents"]
    down = project.migrate("down", "-r", "agents@-2")
    assert down.code == 0 and down.out.count("Unapplying agents") == 2, down.err
    assert project.migrate("up").code == 0
    base = project.migrate("down", "-r", "billing@base")
    assert base.code == 0 and "invoices" not in pg.tables(project.database_url), base.err
    prefix = project.migrate("up", "-r", top["billing"][:5])
    assert prefix.code == 0 and "invoices" in pg.tables(project.database_url), prefix.err
    for bad, message in (
        ("nope@head", "unknown module or branch 'nope'"),
        ("zzzz", "unknown revision 'zzzz'"),
        ("-1", "goes down; use `migrate down --revision -1`"),
        ("users@-1", "goes down; use `migrate down --revision users@-1`"),  # keeps the module
        ("a; DROP TABLE users", "is not a revision"),
        ("", "error: --revision is empty; give a revision"),  # an unset $REV
        (" ", "error: --revision is empty; give a revision"),
    ):
        result = project.migrate("up", "-r", bad)
        assert result.code == 2 and message in result.err, (bad, result.err)


def test_down_at_a_merge_rolls_back_the_merge_then_one_head(project: Project) -> None:
    top = heads(project)["agents"]
    project.write_revision(
        "agents",
        "a9e1f0000001",
        "op.execute('CREATE TABLE side_a (id int)')",
        "op.execute('DROP TABLE side_a')",
        parent=top,
    )
    project.write_revision(
        "agents",
        "a9e1f0000002",
        "op.execute('CREATE TABLE side_b (id int)')",
        "op.execute('DROP TABLE side_b')",
        parent=top,
    )
    merged = project.migrate("merge", "--module", "agents")
    assert merged.code == 0, merged.err
    merge = heads(project)["agents"]
    up = project.migrate("up")
    assert up.code == 0, up.err
    applied_last = max(("a9e1f0000001", "a9e1f0000002"), key=up.out.index)
    first = project.migrate("down", "--branch", "agents")
    assert first.code == 0, first.err
    assert first.out.count("Unapplying") == 1 and merge in first.out
    assert {"side_a", "side_b"} <= pg.tables(project.database_url)
    second = project.migrate("down", "--branch", "agents")
    assert second.code == 0 and second.out.count("Unapplying") == 1, second.err
    assert applied_last in second.out  # of two applied heads, the one applied last goes
    kept = "side_a" if applied_last == "a9e1f0000002" else "side_b"
    assert kept in pg.tables(project.database_url)
    assert len({"side_a", "side_b"} & pg.tables(project.database_url)) == 1


def test_down_two_steps_takes_back_what_was_applied_last(project: Project) -> None:
    top = heads(project)["agents"]
    for rev, table in (("a9e1f0000001", "side_a"), ("a9e1f0000002", "side_b")):
        project.write_revision(
            "agents",
            rev,
            f"op.execute('CREATE TABLE {table} (id int)')",
            f"op.execute('DROP TABLE {table}')",
            parent=top,
        )
    assert project.migrate("merge", "--module", "agents").code == 0
    merge = heads(project)["agents"]
    plan = project.migrate("up", "--plan").out
    later = max(("a9e1f0000001", "a9e1f0000002"), key=plan.index)  # the one up would run last
    earlier = ({"a9e1f0000001", "a9e1f0000002"} - {later}).pop()
    assert project.migrate("up", "-r", later).code == 0  # ...applied first here
    assert project.migrate("up").code == 0  # then the other one and the merge
    two = project.migrate("down", "-b", "agents", "-r", "-2")
    assert two.code == 0, two.err
    unapplied = [line.split()[2] for line in two.out.splitlines() if "Unapplying" in line]
    assert unapplied == [merge, earlier]  # the same as two `down` runs: the last applied first


def test_down_to_a_revision_keeps_what_depends_only_on_it(project: Project) -> None:
    assert project.migrate("up").code == 0
    users_first = "a2aac9be69fc"  # agents and billing depend on it, not on what follows
    back = project.migrate("down", "-r", users_first)
    assert back.code == 0, back.err
    assert [line.split()[2] for line in back.out.splitlines() if "Unapplying" in line] == [
        "fe95ecace8c3"
    ]
    current = {m["module"]: m["current"] for m in status(project)["modules"]}
    assert current == {
        "users": users_first,
        "agents": heads(project)["agents"],
        "billing": heads(project)["billing"],
    }


def test_sql_from_where_a_database_is(project: Project) -> None:
    users = heads(project)["users"]
    unreachable = ("--database-url", "postgresql://u:pw@127.0.0.1:9/none")
    behind = project.migrate(*unreachable, "up", "--sql", "--from", users)
    assert behind.code == 0, behind.err
    assert "CREATE TABLE users" not in behind.out and "CREATE TABLE agents" in behind.out
    assert "CREATE TABLE IF NOT EXISTS" not in behind.out  # the version table exists there
    alembic_form = project.migrate(*unreachable, "up", "--sql", "-r", f"{users}:heads")
    assert alembic_form.code == 0 and alembic_form.out == behind.out


def test_a_revision_file_that_does_not_parse_stops_every_command(project: Project) -> None:
    path = project.head_file("billing")
    path.write_text(path.read_text().replace("def upgrade", "<<<<<<< HEAD\ndef upgrade", 1))
    where = path.relative_to(project.root)
    for args in (("heads",), ("history",), ("status",), ("up",), ("create", "x", "-b", "users")):
        result = project.migrate(*args)
        assert result.code == 2, (args, result.err)
        assert result.err.startswith(f"error: {where} line "), (args, result.err)
        assert "not valid Python" in result.err and "Traceback" not in result.err
    ran = project.migrate("check", "--json")
    assert ran.out, ran.err
    check = json.loads(ran.out)
    assert [(f["module"], f["kind"]) for f in check["findings"]] == [("billing", "revision file")]


def test_a_message_is_data_never_code(project: Project) -> None:
    marker = project.root / "pwned"
    messages = [
        "say \"hi\" and 'bye'",
        'end """\nimport os; os.system("touch pwned")\n"""',
        "path C:\\Users\\new\\x00 and \\N{bell}",
        "two\nlines\r\n\ttabbed \x07 bell",
        '"',
        "\\",
    ]
    for message in messages:
        before = project.versions("users")
        result = project.migrate("create", message, "--module", "users", "--no-autogenerate")
        assert result.code == 0, (message, result.err)
        [path] = [p for p in project.versions("users") if p not in before]
        tree = ast.parse(path.read_text())
        assert ast.get_docstring(tree, clean=False).startswith(message), message
        assert "/" not in path.name[13:] and ".." not in path.name
    assert project.migrate("heads").code == 0
    assert project.migrate("up").code == 0
    assert not marker.exists()


# ---- status tells the truth ------------------------------------------------------------------


def test_a_module_no_longer_in_the_manifest(project: Project) -> None:
    assert project.migrate("up").code == 0
    manifest = project.root / "migrations.yaml"
    manifest.write_text(
        manifest.read_text().replace("  - name: billing\n    depends_on: [users]\n", "")
    )
    project.edit("alembic.ini", "    %(here)s/services/billing/migrations\n", "")
    rows = {m["module"]: m for m in status(project)["modules"]}
    assert rows["users"]["state"] == rows["agents"]["state"] == "up to date"
    assert rows["billing"]["state"] == "unknown revision"
    assert rows["billing"]["pending"] is None
    assert rows["billing"]["branch"] is None and rows["billing"]["models"] is None
    down = project.migrate("down", "-b", "users")
    assert down.code == 2 and "run `migrate down` from the code that has it" in down.err
    assert "--allow-unknown" not in down.err


def test_modules_with_no_revisions_or_no_models(project: Project) -> None:
    assert project.migrate("module", "add", "audit").code == 0
    (project.root / "services/audit/models.py").unlink()
    rows = {m["module"]: m for m in status(project)["modules"]}
    assert rows["audit"]["state"] == "no revisions"
    assert rows["audit"]["models"] == "missing"
    assert rows["users"]["models"] == "found"
    assert "no revisions (models missing)" in project.migrate("status").out


# ---- smaller ---------------------------------------------------------------------------------


def test_names_and_manifests_of_any_size(project: Project) -> None:
    long = "a" * 300
    for args in (("module", "add", long), ("up", "--branch", long)):
        result = project.migrate(*args)
        assert result.code == 2, (args, result.err)
        assert len(result.err.strip().splitlines()) == 1 and len(result.err) < 400
    manifest = project.root / "migrations.yaml"
    levels = ["&a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    levels += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    manifest.write_text("modules:\n  - name: [" + ", ".join(levels) + "]\n")  # 9**9 leaves
    assert len(manifest.read_bytes()) < 600
    result = project.migrate("heads")
    assert result.code == 2
    assert len(result.err) < 400 and "lol" not in result.err


def test_module_add_takes_a_branch_label_and_leaves_nothing_on_failure(project: Project) -> None:
    manifest = project.root / "migrations.yaml"
    manifest.write_text(
        manifest.read_text().replace("  - name: users\n", "  - name: users\n    branch: people\n")
    )
    added = project.migrate("module", "add", "audit", "--depends-on", "people")
    assert added.code == 0, added.err
    assert "  - name: audit\n    depends_on: [users]\n" in manifest.read_text()

    flow = "modules: [users, agents]\n"
    manifest.write_text(flow)
    before = manifest.read_text(), (project.root / "alembic.ini").read_text()
    failed = project.migrate("module", "add", "notes")
    assert failed.code == 2, failed.err
    assert not (project.root / "services/notes").exists()
    assert (manifest.read_text(), (project.root / "alembic.ini").read_text()) == before
    assert project.migrate("module", "add", "notes").code == 2  # same answer, nothing half-made


def test_a_bare_number_is_seconds_for_every_duration(project: Project) -> None:
    manifest = project.root / "migrations.yaml"
    manifest.write_text(
        manifest.read_text().replace(
            "settings:\n", "settings:\n  lock_timeout: 2\n  statement_timeout: 30\n  lock_wait: 5\n"
        )
    )
    project.write_revision(
        "users",
        "5e77100000001",
        "op.execute(\"CREATE TABLE probe AS SELECT current_setting('lock_timeout') AS l, "
        "current_setting('statement_timeout') AS s\")",
    )
    assert project.migrate("up").code == 0
    assert pg.fetch(project.database_url, "SELECT l, s FROM probe") == [("2s", "30s")]
    bad = manifest.read_text().replace("lock_timeout: 2", "lock_timeout: 5 minutes")
    manifest.write_text(bad)
    refused = project.migrate("heads")
    assert refused.code == 2 and "a bare number means seconds" in refused.err
