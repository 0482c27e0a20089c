"""The project the chaos soak (tests/soak.py) drives: ten modules with foreign keys and
`depends_on` across them, thirty revisions each, written with fixed readable ids.

Every revision leaves one mark in the catalog that exists exactly while it is applied (its
module's tables, or one column of them); every fourth is a data revision that also inserts a
row into its module's counter table (and its downgrade deletes one), so a revision applied
twice shows; every sixth sleeps 0.3 s each way, so a client can die in the middle of one.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import REPO

DEPENDS = {  # module -> the modules whose tables it references
    "m00": (),
    "m01": ("m00",),
    "m02": ("m00",),
    "m03": ("m01",),
    "m04": ("m02", "m03"),
    "m05": (),
    "m06": ("m05",),
    "m07": ("m05", "m01"),
    "m08": (),
    "m09": ("m08", "m04"),
}
PER_MODULE = 30
SLEEP = 0.3  # seconds a slow revision spends in each direction, on the soak's database
# (not on a shadow: check builds the whole history there, and need not be slow to be killed)
NAP = (
    f"SELECT pg_sleep(CASE WHEN current_database() LIKE 'migrate%shadow%' THEN 0 ELSE {SLEEP} END)"
)


@dataclass(frozen=True)
class Revision:
    id: str
    module: str
    index: int
    parent: str | None
    depends_on: tuple[str, ...]
    column: str | None  # the column it adds to the module's items table (None: the tables)
    data: bool  # it inserts a row into the module's counter table
    references: str | None = None  # the module its column points at (a foreign key)

    @property
    def table(self) -> str:
        return f"{self.module}_items"

    @property
    def counter(self) -> str:
        return f"{self.module}_counter"


def rev_id(module: str, index: int) -> str:
    return f"{module}r{index:03d}"


def revisions() -> dict[str, Revision]:
    """Every revision of the project, by id. A module's n-th dependency gets a foreign-key
    column at revision 3 + 5n (which needs that module up to revision 10 + 10n), and revision
    20 needs the first dependency's revision 25 without any reference."""
    found: dict[str, Revision] = {}
    for module, deps in DEPENDS.items():
        fk_at = {3 + 5 * n: dep for n, dep in enumerate(deps)}
        for i in range(PER_MODULE):
            needs: list[str] = []
            column: str | None = f"c{i:02d}"
            references = fk_at.get(i)
            if i == 0:
                column = None
            elif references:
                column = f"{references}_id"
                needs.append(rev_id(references, 10 + 10 * deps.index(references)))
            elif i == 20 and deps:
                needs.append(rev_id(deps[0], 25))
            found[rev_id(module, i)] = Revision(
                id=rev_id(module, i),
                module=module,
                index=i,
                parent=rev_id(module, i - 1) if i else None,
                depends_on=tuple(needs),
                column=column,
                data=i % 4 == 2,
                references=references,
            )
    return found


def slow(revision: Revision) -> bool:
    return revision.index % 6 == 5


# ---- the files ---------------------------------------------------------------------------

REVISION = '''"""{message}

Revision ID: {id}
Revises: {parent}
Create Date: 2026-12-01 00:00:00

"""
from alembic import op
import sqlalchemy as sa

revision = {id!r}
down_revision = {parent!r}
branch_labels = {labels!r}
depends_on = {depends!r}


def upgrade() -> None:
{upgrade}


def downgrade() -> None:
{downgrade}
'''


def _steps(revision: Revision) -> tuple[list[str], list[str]]:
    """The statements of a revision's upgrade and downgrade (Python lines)."""
    table, counter = revision.table, revision.counter
    if revision.column is None:
        up = [
            f"op.create_table({table!r}, sa.Column('id', sa.Integer(), nullable=False),",
            f"                sa.PrimaryKeyConstraint('id', name=op.f('pk_{table}')))",
            f"op.create_table({counter!r}, sa.Column('id', sa.Integer(), nullable=False),",
            "                sa.Column('revision', sa.String(length=32), nullable=False),",
            f"                sa.PrimaryKeyConstraint('id', name=op.f('pk_{counter}')))",
        ]
        down = [f"op.drop_table({counter!r})", f"op.drop_table({table!r})"]
    else:
        column = revision.column
        up = [f"op.add_column({table!r}, sa.Column({column!r}, sa.Integer(), nullable=True))"]
        if revision.references:
            target = f"{revision.references}_items"
            name = f"fk_{table}_{column}_{target}"
            up.append(
                f"op.create_foreign_key(op.f({name!r}), {table!r}, {target!r}, "
                f"[{column!r}], ['id'])"
            )
        down = [f"op.drop_column({table!r}, {column!r})"]
    if revision.data:
        up.append(f"op.execute(\"INSERT INTO {counter} (revision) VALUES ('{revision.id}')\")")
        one = f"SELECT ctid FROM {counter} WHERE revision = '{revision.id}' LIMIT 1"
        down.insert(0, f'op.execute("DELETE FROM {counter} WHERE ctid IN ({one})")')
    if slow(revision):
        up.append(f'op.execute("{NAP}")')
        down.append(f'op.execute("{NAP}")')
    return up, down


def _message(revision: Revision) -> str:
    if revision.column is None:
        return f"create {revision.module} tables"
    what = f"add {revision.column} to {revision.table}"
    return what + (" and count it" if revision.data else "")


def revision_file(revision: Revision) -> str:
    up, down = _steps(revision)
    return REVISION.format(
        message=_message(revision),
        id=revision.id,
        parent=revision.parent,
        labels=None if revision.parent else (revision.module,),
        depends=revision.depends_on or None,
        upgrade="\n".join(f"    {line}" for line in up),
        downgrade="\n".join(f"    {line}" for line in down),
    )


def models_file(module: str, columns: list[Revision]) -> str:
    """The module's models at its head: what its thirty revisions build."""
    lines = [
        f'"""The {module} module of the chaos soak (generated)."""',
        "",
        "from sqlalchemy import ForeignKey, String",
        "from sqlalchemy.orm import Mapped, mapped_column",
        "",
        "from shared.db import Base",
        "",
        "",
        "class Item(Base):",
        f'    __tablename__ = "{module}_items"',
        "    id: Mapped[int] = mapped_column(primary_key=True)",
    ]
    for revision in columns:
        target = f'ForeignKey("{revision.references}_items.id")' if revision.references else ""
        lines.append(f"    {revision.column}: Mapped[int | None] = mapped_column({target})")
    lines += [
        "",
        "",
        "class Counter(Base):",
        f'    __tablename__ = "{module}_counter"',
        "    id: Mapped[int] = mapped_column(primary_key=True)",
        "    revision: Mapped[str] = mapped_column(String(32))",
        "",
    ]
    return "\n".join(lines)


SHADOW_TEMPLATES = 3
SETTINGS = {
    "lock_timeout": "1s",  # short, so a held table costs a client seconds, not minutes
    "lock_retries": 3,
    "lock_wait": 60,
    "shadow_templates": SHADOW_TEMPLATES,
}


# the soak is about deploys that die half-way, not about safe DDL on hot tables: its revisions
# add foreign keys and integer columns, which `migrate lint` (part of check) would flag
LINT_OFF = (
    "adding-foreign-key-constraint",
    "prefer-bigint-over-int",
    "prefer-identity",
    "prefer-text-field",
)


def manifest_file() -> str:
    settings = "".join(f"  {k}: {v}\n" for k, v in SETTINGS.items())
    modules = "".join(
        f"  - name: {m}\n" + (f"    depends_on: [{', '.join(d)}]\n" if d else "")
        for m, d in DEPENDS.items()
    )
    header = "# the chaos soak's project (tests/soak_project.py)"
    lint = "".join(f"  {rule}: 'off'\n" for rule in LINT_OFF)
    return f"{header}\nsettings:\n{settings}lint:\n{lint}modules:\n{modules}"


def write_project(root: Path) -> dict[str, Revision]:
    """The manifest, alembic.ini, the env and every module's models and revisions in `root`."""
    shutil.copytree(
        REPO / "alembic", root / "alembic", ignore=shutil.ignore_patterns("__pycache__")
    )
    ini = (REPO / "alembic.ini").read_text()
    head, _, rest = ini.partition("version_locations =\n")
    tail = rest[rest.index("\n\n") :]
    locations = "".join(f"    %(here)s/services/{m}/migrations\n" for m in DEPENDS)
    (root / "alembic.ini").write_text(f"{head}version_locations =\n{locations.rstrip()}{tail}")
    (root / "migrations.yaml").write_text(manifest_file())
    (root / "services").mkdir()
    (root / "services" / "__init__.py").write_text("")
    everything = revisions()
    for module in DEPENDS:
        package = root / "services" / module
        (package / "migrations").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        mine = [r for r in everything.values() if r.module == module]
        (package / "models.py").write_text(models_file(module, [r for r in mine if r.column]))
        for revision in mine:
            path = package / "migrations" / f"{revision.id}_soak.py"
            path.write_text(revision_file(revision))
    return everything
