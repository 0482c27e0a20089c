"""Module isolation, checked: ownership, scoped drops, dependencies, heads, module add, check."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests import pg
from tests.conftest import Project, add_a_core_table_to_billing

BILLING_MODEL = "services/billing/models.py"
AMOUNT_LINE = "    amount_cents: Mapped[int] = mapped_column(BigInteger)\n"


def delete_invoice_model(project: Project) -> None:
    path = project.root / BILLING_MODEL
    text = path.read_text()
    path.write_text(text[: text.index("class InvoiceStatus")])


def add_billing_reference_to_agents(project: Project) -> None:
    project.edit(
        BILLING_MODEL,
        AMOUNT_LINE,
        AMOUNT_LINE + "    agent_id: Mapped[uuid.UUID | None] = mapped_column("
        "ForeignKey('agents.id'))\n",
    )


def findings(project: Project) -> list[dict[str, str]]:
    result = project.migrate("check", "--json")
    data = json.loads(result.out)
    assert result.code == (0 if data["ok"] else 1), result.err
    return data["findings"]


def twin_head(project: Project, module: str, new_id: str) -> Path:
    """A second revision on the same parent: someone else's parallel work."""
    head = project.head_file(module)
    text = head.read_text()
    old_id = text.split("revision: str = '")[1].split("'")[0]
    twin = head.parent / f"{new_id}_parallel_work.py"
    body = text.replace(old_id, new_id)
    body = body.split("def upgrade() -> None:")[0]
    twin.write_text(
        body + "def upgrade() -> None:\n    pass\n\n\ndef downgrade() -> None:\n    pass\n"
    )
    return twin


def test_deleted_model_is_dropped_in_its_own_module_only(project: Project) -> None:
    assert project.migrate("up").code == 0
    delete_invoice_model(project)
    before = project.versions("billing")
    result = project.migrate("create", "drop invoices", "--module", "billing")
    assert result.code == 0, result.err
    [written] = [p for p in project.versions("billing") if p not in before]
    upgrade = written.read_text().split("def upgrade()")[1].split("def downgrade()")[0]
    assert "op.drop_table('invoices')" in upgrade
    assert 'DROP TYPE IF EXISTS "invoice_status"' in upgrade
    assert "'users'" not in upgrade and "'agents'" not in upgrade
    # nothing for the other modules either
    for module in ("users", "agents"):
        assert project.migrate("create", "x", "--module", module).out.startswith("No changes")

    assert project.migrate("up").code == 0
    assert pg.tables(project.database_url) == {"users", "agents", *pg.BOOKKEEPING}
    assert "invoice_status" not in pg.enum_types(project.database_url)


def test_owners_from_models_and_from_migrations(project: Project) -> None:
    delete_invoice_model(project)
    assert project.migrate("up").code == 0
    pg.execute(project.database_url, "CREATE TABLE legacy_reports (id int)")
    result = project.migrate("owners", "--json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert {(t["table"], t["module"], t["source"]) for t in data["tables"]} == {
        ("users", "users", "models, migrations"),
        ("agents", "agents", "models, migrations"),
        ("invoices", "billing", "migrations"),
    }
    assert data["unowned"] == ["legacy_reports"]
    assert "legacy_reports" in pg.tables(project.database_url)  # reported, never dropped
    one = project.migrate("owners", "--module", "agents")
    assert one.out.splitlines()[1:] == ["agents  agents  models, migrations"]


def test_undeclared_cross_module_reference_is_refused(project: Project) -> None:
    add_billing_reference_to_agents(project)
    before = project.versions("billing")
    result = project.migrate("create", "link agents", "--module", "billing")
    assert result.code == 2
    assert result.err.strip() == (
        "error: module 'billing' references table 'agents' of module 'agents', which is not in "
        "its depends_on; add 'agents' to depends_on of module 'billing' in migrations.yaml"
    )
    assert project.versions("billing") == before

    manifest = project.root / "migrations.yaml"
    manifest.write_text(
        manifest.read_text().replace(
            "  - name: billing\n    depends_on: [users]",
            "  - name: billing\n    depends_on: [users, agents]",
        )
    )
    declared = project.migrate("create", "link agents", "--module", "billing")
    assert declared.code == 0, declared.err
    [written] = [p for p in project.versions("billing") if p not in before]
    agents_head = project.head_file("agents").name.split("_")[0]
    assert f"depends_on: str | Sequence[str] | None = '{agents_head}'" in written.read_text()
    up = project.migrate("up", "--branch", "billing")
    assert up.code == 0, up.err
    assert pg.tables(project.database_url) == {"users", "agents", "invoices", *pg.BOOKKEEPING}
    assert "fk_invoices_agent_id_agents" in pg.constraints(project.database_url, "invoices")


def test_merge_resolves_two_heads(project: Project) -> None:
    twin_head(project, "agents", "0badc0ffee00")
    refused = project.migrate("up")
    assert refused.code == 1 and "migrate merge --module agents" in refused.err

    merged = project.migrate("merge", "--module", "agents")
    assert merged.code == 0, merged.err
    assert merged.out.startswith("Created services/agents/migrations/")
    written = project.root / merged.out.split()[1]
    revises = next(line for line in written.read_text().splitlines() if line.startswith("Revises:"))
    assert sorted(revises.removeprefix("Revises: ").split(", ")) == ["0badc0ffee00", "a9b40a91187e"]
    heads = json.loads(project.migrate("heads", "--json").out)["modules"]
    assert [len(m["heads"]) for m in heads] == [1, 1, 1]
    up = project.migrate("up")
    assert up.code == 0, up.err
    again = project.migrate("merge", "--module", "agents")
    assert again.out.strip() == "Module 'agents' has one head; nothing to merge."


def test_module_add_then_create_then_up(project: Project) -> None:
    added = project.migrate("module", "add", "audit", "--depends-on", "users")
    assert added.code == 0, added.err
    package = project.root / "services/audit"
    assert (package / "__init__.py").is_file() and (package / "migrations").is_dir()
    assert (
        "  - name: audit\n    depends_on: [users]\n"
        in (project.root / "migrations.yaml").read_text()
    )
    assert "%(here)s/services/audit/migrations" in (project.root / "alembic.ini").read_text()

    models = package / "models.py"
    models.write_text(
        models.read_text()
        + (
            "\nfrom sqlalchemy import ForeignKey\n"
            "from sqlalchemy.orm import Mapped, mapped_column\n\n\n"
            "class AuditEntry(Base):\n"
            "    __tablename__ = 'audit_entries'\n"
            "    id: Mapped[int] = mapped_column(primary_key=True)\n"
            "    user_id = mapped_column(ForeignKey('users.id'))\n"
        )
    )
    created = project.migrate("create", "create audit", "--module", "audit")
    assert created.code == 0, created.err
    up = project.migrate("up", "--branch", "audit")
    assert up.code == 0, up.err
    assert pg.tables(project.database_url) == {"users", "audit_entries", *pg.BOOKKEEPING}
    assert findings(project) == []

    for bad, message in (
        ("audit", "already in migrations.yaml"),
        ("Bad-Name", "must match"),
        ("x", "unknown module or branch 'nope'"),
    ):
        args = ["module", "add", bad] + (["--depends-on", "nope"] if bad == "x" else [])
        result = project.migrate(*args)
        assert result.code == 2 and message in result.err, result.err
    assert not (project.root / "services/x").exists()


def test_check_passes_on_the_repository(project: Project) -> None:
    assert findings(project) == []
    assert project.migrate("check").out.strip() == "All checks passed."


def test_check_reports_each_kind_of_problem_under_its_module(project: Project) -> None:
    # drift in agents (a model change without a revision)
    project.edit(
        "services/agents/models.py",
        "    name: Mapped[str] = mapped_column(String(100))\n",
        "    name: Mapped[str] = mapped_column(String(100))\n"
        "    rank: Mapped[int | None] = mapped_column()\n",
    )
    # an undeclared reference from billing into agents
    add_billing_reference_to_agents(project)
    # a table in the database no module owns
    pg.execute(project.database_url, "CREATE TABLE legacy_reports (id int)")
    # alembic.ini out of step
    project.edit("alembic.ini", "    %(here)s/services/billing/migrations\n", "")
    kinds = {(f["module"], f["kind"]) for f in findings(project)}
    assert kinds == {
        ("agents", "drift"),
        ("billing", "drift"),
        ("billing", "dependency"),
        ("-", "unowned"),
        ("-", "alembic.ini"),
    }
    drift = next(f for f in findings(project) if f["module"] == "agents")
    assert "+ column agents.rank" in drift["detail"]


def test_check_reports_two_heads_and_duplicate_ids(project: Project) -> None:
    twin_head(project, "users", "0badc0ffee01")
    assert [(f["module"], f["kind"]) for f in findings(project)] == [("users", "heads")]

    head = project.head_file("billing")
    shutil.copy(head, head.parent / "copy_of_head.py")
    result = project.migrate("check", "--json")
    assert result.code == 1
    [duplicate] = json.loads(result.out)["findings"]
    assert duplicate["module"] == "billing" and duplicate["kind"] == "duplicate revision"
    assert "copy_of_head.py" in duplicate["detail"] and head.name in duplicate["detail"]
    # every other command stops on it, naming both files
    status = project.migrate("status")
    assert status.code == 2 and "copy_of_head.py" in status.err and head.name in status.err


def test_a_branch_label_declared_twice_is_refused_as_alembic_refuses_it(
    project: Project,
) -> None:
    labelled = project.write_revision("billing", "1abe10000001", "pass")
    project.write_revision("agents", "1abe10000002", "pass", depends_on="users")  # by label
    assert project.migrate("heads").code == 0
    project.edit(
        str(labelled.relative_to(project.root)),
        "branch_labels = None",
        "branch_labels = ('users',)",
    )
    users_base = project.root / "services/users/migrations/a2aac9be69fc_create_users.py"
    both = (str(users_base.relative_to(project.root)), str(labelled.relative_to(project.root)))

    alembic = project.alembic("heads")  # plain Alembic refuses the history
    assert alembic.code != 0 and "Branch name 'users'" in alembic.err
    for args in (("heads",), ("up",), ("history",)):
        result = project.migrate(*args)
        assert result.code == 2, (args, result.err)
        [line] = result.err.splitlines()
        assert "branch label 'users'" in line and all(path in line for path in both), line
    result = project.migrate("check", "--json")
    assert result.code == 1, result.err
    [finding] = json.loads(result.out)["findings"]
    assert finding["kind"] == "duplicate label" and finding["module"] == "billing"
    assert "branch label 'users'" in finding["detail"]
    assert all(path in finding["detail"] for path in both)


def test_check_reports_a_table_claimed_by_two_modules(project: Project) -> None:
    # users' migrations create a table whose model lives in agents
    project.edit(
        "services/agents/models.py",
        "class Agent(Base):",
        "class Shared(Base):\n    __tablename__ = 'shared_things'\n"
        "    id: Mapped[int] = mapped_column(primary_key=True)\n\n\nclass Agent(Base):",
    )
    head = project.head_file("users")
    text = head.read_text()
    head.write_text(
        text.replace(
            "def upgrade() -> None:\n",
            "def upgrade() -> None:\n    op.create_table('shared_things', "
            "sa.Column('id', sa.Integer(), primary_key=True))\n",
        ).replace(
            "def downgrade() -> None:\n",
            "def downgrade() -> None:\n    op.drop_table('shared_things')\n",
        )
    )
    found = [f for f in findings(project) if f["kind"] == "ownership"]
    assert len(found) == 1
    assert found[0]["module"] == "agents"
    assert "'shared_things'" in found[0]["detail"] and "'users'" in found[0]["detail"]


def test_files_the_manifest_does_not_explain(project: Project) -> None:
    legacy = project.root / "alembic/versions"
    legacy.mkdir()
    shutil.copy(project.head_file("agents"), legacy / "old_revision.py")
    helper = project.root / "services/users/migrations/helper.py"
    helper.write_text("x = 1\n")
    found = findings(project)
    assert [(f["module"], f["kind"]) for f in found] == [
        ("users", "stray file"),
        ("-", "stray file"),
    ]
    assert "services/users/migrations/helper.py" in found[0]["detail"]
    assert "alembic/versions/old_revision.py" in found[1]["detail"]
    result = project.migrate("heads")
    assert result.code == 2 and "helper.py" in result.err and "move it out" in result.err


def test_one_table_defined_by_two_modules_models(project: Project) -> None:
    project.edit(
        BILLING_MODEL,
        "class Invoice(Base):",
        "class Agent(Base):\n    __tablename__ = 'agents'\n"
        "    id: Mapped[int] = mapped_column(primary_key=True)\n\n\nclass Invoice(Base):",
    )
    for args in (("check",), ("owners",), ("create", "x", "--module", "billing")):
        result = project.migrate(*args)
        assert result.code == 2, (args, result.err)
        assert result.err.strip() == (
            "error: table 'agents' is defined by the models of both 'agents' and 'billing'; "
            "one module must own it: remove or rename one of them"
        )


def test_models_that_import_another_modules_models_do_not_claim_its_tables(
    project: Project,
) -> None:
    add_a_core_table_to_billing(project)  # agents' models, imported first, import it too
    project.edit(
        "services/agents/models.py",
        "from shared.db import Base\n",
        "from services.billing.models import Invoice, invoice_notes  # noqa: F401\n"
        "from shared.db import Base\n",
    )
    owners = project.migrate("owners", "--json")
    assert owners.code == 0, owners.err
    data = json.loads(owners.out)
    assert {t["table"]: t["module"] for t in data["tables"]} == {
        "users": "users",
        "agents": "agents",
        "invoices": "billing",
        "invoice_notes": "billing",
    }
    assert data["conflicts"] == []
    assert findings(project) == []  # (lint's warnings on the serial column do not fail it)
    before = project.versions("agents")
    created = project.migrate("create", "nothing new", "--module", "agents")
    assert created.code == 0 and created.out.startswith("No changes"), created.out + created.err
    assert project.versions("agents") == before
