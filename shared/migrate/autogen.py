"""Scoped autogenerate: a revision for one module's tables only, diffed on a shadow database.

The shadow database is built from the migrations of the module and what it depends on, so the
result is the same whatever state the developer's own database is in.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic.autogenerate import RevisionContext, produce_migrations
from alembic.operations import ops
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Enum, Table, text
from sqlalchemy.engine import URL, Connection

from shared.migrate.database import public_tables
from shared.migrate.discovery import Discovery, discover
from shared.migrate.errors import ConfigError
from shared.migrate.graph import ScriptGraph
from shared.migrate.manifest import Module
from shared.migrate.runner import run_with_connection
from shared.migrate.shadow import shadow_database
from shared.migrate.translate import alembic_errors

RENDER_OPTS: dict[str, Any] = {
    "upgrade_token": "upgrades",
    "downgrade_token": "downgrades",
    "process_revision_directives": None,
    "sqlalchemy_module_prefix": "sa.",
    "alembic_module_prefix": "op.",
    "user_module_prefix": None,
    "render_as_batch": False,
    "render_item": None,
    "compare_type": True,
    "compare_server_default": True,
}


@dataclass(frozen=True)
class Diff:
    """What one module's models need beyond what its migrations build."""

    script: ops.MigrationScript
    context: MigrationContext  # the comparison's context; rendering the file needs it

    @property
    def upgrade_ops(self) -> ops.UpgradeOps:
        assert self.script.upgrade_ops is not None
        return self.script.upgrade_ops


@dataclass(frozen=True)
class Written:
    path: Path
    revision: str
    depends_on: tuple[str, ...]


def create_revision(
    graph: ScriptGraph, module: Module, head: str | None, message: str, server: URL
) -> Written | None:
    """Diff `module`'s models against its migrations; write the revision, or None if no change."""
    discovery = discover(graph.manifest)

    def work(conn: Connection) -> Written | None:
        created_by = build(conn, graph, graph.manifest.dependency_closure(module.name))
        changes = diff(conn, discovery, module, created_by)
        if changes is None:
            return None
        depends_on = _cross_module_dependencies(graph, discovery, module, head, changes.upgrade_ops)
        return _write(graph, module, head, message, depends_on, changes)

    with shadow_database(server) as shadow:
        return run_with_connection(shadow, work, command="create")


def build(conn: Connection, graph: ScriptGraph, modules: list[Module]) -> dict[str, str]:
    """Bring each module (in order) to its head; the tables each one's migrations created."""
    graph.config.attributes.update(connection=conn, load_models=False)
    created_by: dict[str, str] = {}
    seen = public_tables(conn)
    for module in modules:
        head = graph.head(module)
        if head:
            with alembic_errors():
                graph.upgrade(head)
        now = public_tables(conn) - {graph.manifest.settings.version_table}
        created_by.update(dict.fromkeys(now - seen, module.name))
        seen = now
    conn.commit()
    return created_by


def diff(
    conn: Connection, discovery: Discovery, module: Module, created_by: dict[str, str]
) -> Diff | None:
    """What the module's models need beyond what its migrations built, or None when nothing.

    The module's tables are those its models define and those its migrations created (a table
    whose model was deleted); every other module's tables are left out of the comparison.
    """
    mine = discovery.tables_of(module.name) | {
        t for t, owner in created_by.items() if owner == module.name
    }

    def include_object(obj: Any, name: str | None, type_: str, reflected: bool, other: Any) -> bool:
        table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
        return table is None or table in mine

    context = MigrationContext.configure(
        connection=conn,
        opts={
            **RENDER_OPTS,
            "include_object": include_object,
            "target_metadata": discovery.metadata,
        },
    )
    produced = produce_migrations(context, discovery.metadata)
    assert produced.upgrade_ops is not None and produced.downgrade_ops is not None
    if produced.upgrade_ops.is_empty():
        return None
    _drop_enums_with_tables(produced.upgrade_ops)
    _drop_enums_with_tables(produced.downgrade_ops)
    _enums_for_new_columns(produced.upgrade_ops, produced.downgrade_ops, enum_types(conn))
    return Diff(produced, context)


def _write(
    graph: ScriptGraph,
    module: Module,
    head: str | None,
    message: str,
    depends_on: tuple[str, ...],
    changes: Diff,
) -> Written:
    def fill(ctx: Any, rev: Any, directives: list[ops.MigrationScript]) -> None:
        assert changes.script.downgrade_ops is not None
        directives[0].upgrade_ops = changes.upgrade_ops
        directives[0].downgrade_ops = changes.script.downgrade_ops

    revision_context = RevisionContext(
        graph.config,
        graph.script,
        {
            "message": message,
            "autogenerate": False,
            "sql": False,
            "head": head or "base",
            "splice": False,
            "branch_label": None if head else module.branch,
            "version_path": str(module.versions),
            "rev_id": None,
            "depends_on": list(depends_on) or None,
        },
        process_revision_directives=fill,
    )
    with alembic_errors():
        revision_context.run_no_autogenerate("heads", changes.context)
        script = next(iter(revision_context.generate_scripts()))
    assert script is not None
    return Written(Path(script.path), script.revision, depends_on)


def _walk(container: Any) -> Iterator[Any]:
    for op in getattr(container, "ops", []):
        yield op
        yield from _walk(op)


def _referenced_tables(upgrade_ops: ops.UpgradeOps) -> set[str]:
    names: set[str] = set()
    for op in _walk(upgrade_ops):
        if isinstance(op, ops.CreateTableOp):
            fks = [fk for c in op.to_table().constraints for fk in getattr(c, "elements", [])]
            names |= {fk.target_fullname.rsplit(".", 1)[0] for fk in fks}
        elif isinstance(op, ops.AddColumnOp):
            names |= {fk.target_fullname.rsplit(".", 1)[0] for fk in op.column.foreign_keys}
        elif isinstance(op, ops.CreateForeignKeyOp):
            names.add(op.referent_table)
    return names


def _cross_module_dependencies(
    graph: ScriptGraph,
    discovery: Discovery,
    module: Module,
    head: str | None,
    upgrade_ops: ops.UpgradeOps,
) -> tuple[str, ...]:
    """Heads of the other modules whose tables the new revision references by foreign key."""
    allowed = {m.name for m in graph.manifest.dependency_closure(module.name)}
    already = graph.ancestors([head] if head else [])
    result: list[str] = []
    for table in sorted(_referenced_tables(upgrade_ops)):
        owner = discovery.owners.get(table)
        if owner is None or owner == module.name:
            continue
        if owner not in allowed:
            raise ConfigError(
                f"module '{module.name}' references table '{table}' of module '{owner}', which "
                f"is not in its depends_on; add '{owner}' to depends_on of module "
                f"'{module.name}' in migrations.yaml"
            )
        owner_head = graph.head(graph.manifest.module(owner))
        if owner_head and owner_head not in already and owner_head not in result:
            result.append(owner_head)
    return tuple(result)


def _drop_enums_with_tables(container: ops.OpContainer) -> None:
    """PostgreSQL keeps an enum type after DROP TABLE; drop it too so up/down/up works."""
    for index in range(len(container.ops) - 1, -1, -1):
        op = container.ops[index]
        if not isinstance(op, ops.DropTableOp):
            continue
        table: Table = op.to_table()
        names = sorted(
            {c.type.name for c in table.columns if isinstance(c.type, Enum) and c.type.name}
        )
        for offset, name in enumerate(names, start=1):
            container.ops.insert(index + offset, ops.ExecuteSQLOp(f'DROP TYPE IF EXISTS "{name}"'))


def enum_types(conn: Connection) -> set[str]:
    return set(conn.scalars(text("SELECT typname FROM pg_type WHERE typtype = 'e'")))


def _enum_of(column: Any) -> Enum | None:
    kind = getattr(column, "type", None)  # create_table's columns include its constraints
    return kind if isinstance(kind, Enum) and kind.name else None


def _enums_for_new_columns(
    upgrade_ops: ops.UpgradeOps, downgrade_ops: ops.DowngradeOps, existing: set[str]
) -> None:
    """add_column does not create a new enum type on PostgreSQL (create_table does): create it
    before the column, and drop it again after the column in the downgrade."""
    created = set(existing)
    for op in upgrade_ops.ops:
        if isinstance(op, ops.CreateTableOp):
            created |= {e.name for c in op.columns if (e := _enum_of(c)) and e.name}
    added: set[str] = set()
    for table_ops in (o for o in upgrade_ops.ops if isinstance(o, ops.ModifyTableOps)):
        for index in range(len(table_ops.ops) - 1, -1, -1):
            op = table_ops.ops[index]
            enum = _enum_of(op.column) if isinstance(op, ops.AddColumnOp) else None
            if enum is None or enum.name in created or enum.name in added:
                continue
            values = ", ".join("'" + v.replace("'", "''") + "'" for v in enum.enums)
            table_ops.ops.insert(
                index, ops.ExecuteSQLOp(f'CREATE TYPE "{enum.name}" AS ENUM ({values})')
            )
            added.add(str(enum.name))
    for table_ops in (o for o in downgrade_ops.ops if isinstance(o, ops.ModifyTableOps)):
        for index in range(len(table_ops.ops) - 1, -1, -1):
            op = table_ops.ops[index]
            if isinstance(op, ops.DropColumnOp):
                enum = _enum_of(op.to_column())
                if enum is not None and enum.name in added:
                    table_ops.ops.insert(
                        index + 1, ops.ExecuteSQLOp(f'DROP TYPE IF EXISTS "{enum.name}"')
                    )
