"""A module with a long history, and one that depends on it in the middle: what `squash` is
for (tests/test_squash.py proves it; tests/bench.py times a build from empty before and
after).

`ledger` has `count` revisions: its first creates ledger_entries; on the way, columns come
and are renamed, an enum type grows, an index comes, a table of accounts with seed rows (a
data migration, updated later by another) arrives at the middle revision, which `reports`
depends on (a foreign key into ledger_accounts); the rest comment the table.
"""

from __future__ import annotations

from pathlib import Path

TEMPLATE = '''"""{message}"""
from alembic import op
import sqlalchemy as sa

revision = {revision!r}
down_revision = {parent!r}
branch_labels = {labels!r}
depends_on = {depends!r}


def upgrade() -> None:
{upgrade}


def downgrade() -> None:
{downgrade}
'''


def ledger_id(i: int) -> str:
    return f"1ed9e5{i:06d}"


REPORTS_ID = "4e9047000001"


def _step(i: int, count: int) -> tuple[str, list[str], list[str]]:
    """(message, upgrade lines, downgrade lines) of ledger's revision i (1-based)."""
    middle = count // 2
    if i == 1:
        return (
            "create ledger entries",
            [
                "op.create_table('ledger_entries',",
                "    sa.Column('id', sa.Integer(), primary_key=True),",
                "    sa.Column('amount', sa.Numeric(12, 2), nullable=False),",
                "    sa.Column('note', sa.Text()))",
            ],
            ["op.drop_table('ledger_entries')"],
        )
    if i == 3:
        return (
            "entry kinds",
            [
                "op.execute(\"CREATE TYPE entry_kind AS ENUM ('debit', 'credit')\")",
                "op.add_column('ledger_entries', sa.Column('kind', sa.Enum('debit', 'credit',"
                " name='entry_kind', create_type=False), server_default='debit', nullable=False))",
            ],
            ["op.drop_column('ledger_entries', 'kind')", 'op.execute("DROP TYPE entry_kind")'],
        )
    if i == middle:
        return (
            "ledger accounts, with the chart of accounts",
            [
                "op.create_table('ledger_accounts',",
                "    sa.Column('code', sa.String(10), primary_key=True),",
                "    sa.Column('name', sa.Text(), nullable=False))",
                "op.execute(\"INSERT INTO ledger_accounts VALUES ('1000', 'cash'), "
                "('2000', 'payables'), ('4000', 'sales')\")",
            ],
            ["op.drop_table('ledger_accounts')"],
        )
    if i == middle + 40:
        return (
            "accounts named as the auditors want",
            ['op.execute("UPDATE ledger_accounts SET name = upper(name)")'],
            ['op.execute("UPDATE ledger_accounts SET name = lower(name)")'],
        )
    if i == count - 20:
        return (
            "entries can be adjustments",
            ["op.execute(\"ALTER TYPE entry_kind ADD VALUE 'adjustment'\")"],
            ["pass"],
        )
    if i == 100:
        return (
            "index entries by amount",
            ["op.create_index('ix_ledger_entries_amount', 'ledger_entries', ['amount'])"],
            ["op.drop_index('ix_ledger_entries_amount', table_name='ledger_entries')"],
        )
    if i % 50 == 10:
        column = f"extra_{i}"
        return (
            f"column {column}",
            [f"op.add_column('ledger_entries', sa.Column('{column}', sa.Integer()))"],
            [f"op.drop_column('ledger_entries', '{column}')"],
        )
    if i % 50 == 20 and i - 10 > 1:
        old, new = f"extra_{i - 10}", f"renamed_{i - 10}"
        return (
            f"rename {old}",
            [f"op.alter_column('ledger_entries', '{old}', new_column_name='{new}')"],
            [f"op.alter_column('ledger_entries', '{new}', new_column_name='{old}')"],
        )
    return (
        f"step {i} of the ledger",
        [f"op.execute(\"COMMENT ON TABLE ledger_entries IS 'step {i}'\")"],
        [f"op.execute(\"COMMENT ON TABLE ledger_entries IS 'step {i - 1}'\")"],
    )


def write(root: Path, count: int = 300) -> None:
    """The two modules, in the repository at `root` (its manifest extended)."""
    for name in ("ledger", "reports"):
        package = root / "services" / name
        (package / "migrations").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "models.py").write_text("from shared.db import Base  # noqa: F401\n")
    versions = root / "services" / "ledger" / "migrations"
    for i in range(1, count + 1):
        message, up, down = _step(i, count)
        revision = ledger_id(i)
        parent = ledger_id(i - 1) if i > 1 else None
        (versions / f"{revision}_step.py").write_text(
            TEMPLATE.format(
                message=message,
                revision=revision,
                parent=parent,
                labels=None if parent else ("ledger",),
                depends=None,
                upgrade=_body(up),
                downgrade=_body(down),
            )
        )
    reports = root / "services" / "reports" / "migrations" / f"{REPORTS_ID}_reports.py"
    reports.write_text(
        TEMPLATE.format(
            message="reports per ledger account",
            revision=REPORTS_ID,
            parent=None,
            labels=("reports",),
            depends=ledger_id(count // 2),
            upgrade=_body(
                [
                    "op.create_table('account_reports',",
                    "    sa.Column('id', sa.Integer(), primary_key=True),",
                    "    sa.Column('account', sa.String(10),"
                    " sa.ForeignKey('ledger_accounts.code'), nullable=False))",
                ]
            ),
            downgrade=_body(["op.drop_table('account_reports')"]),
        )
    )
    manifest = root / "migrations.yaml"
    manifest.write_text(
        manifest.read_text().rstrip("\n")
        + "\n  - name: ledger\n  - name: reports\n    depends_on: [ledger]\n"
    )


def _body(lines: list[str]) -> str:
    return "\n".join(f"    {line}" for line in lines)
