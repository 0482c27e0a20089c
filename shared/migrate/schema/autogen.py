"""Scoped autogenerate: a revision for one module's tables only, diffed on a shadow database,
written, and proved on that shadow before `create` says it is done.

The shadow is built from the migrations of the module and what it depends on, so the result
is the same whatever state the developer's own database is in. What plain autogenerate gets
wrong on PostgreSQL is fixed in the operations before they are rendered: types a table brings
(enums, domains) are dropped with it, foreign-key cycles are broken into tables first and
constraints after, and a schema the module owns is created by its first revision.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from alembic.autogenerate import produce_migrations
from alembic.operations import ops
from alembic.runtime.migration import MigrationContext
from sqlalchemy import ForeignKeyConstraint, Table, text
from sqlalchemy.dialects.postgresql.named_types import DOMAIN, NamedType

from shared.db.url import DatabaseURL
from shared.migrate.database.catalog import snapshot
from shared.migrate.database.executor import Executor, RevisionFailed
from shared.migrate.database.session import run_async
from shared.migrate.errors import ConfigError, MigrateError
from shared.migrate.history import revisionfile
from shared.migrate.history.graph import RevisionGraph, load_graph
from shared.migrate.history.plans import Step
from shared.migrate.manifest import Module
from shared.migrate.schema.build import Built, bookkeeping, heads_of, on_shadow
from shared.migrate.schema.databases import refuse_crossings
from shared.migrate.schema.discovery import Discovery, discover

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

COMPARE_OPTS: dict[str, Any] = {"compare_type": True, "compare_server_default": True}


@dataclass(frozen=True)
class Created:
    path: Path
    revision: str
    depends_on: tuple[str, ...]
    changes: tuple[str, ...]


class ProofFailed(MigrateError):
    """The revision `create` wrote does not hold up on the shadow database; the file stays."""

    def __init__(self, written: str, message: str) -> None:
        super().__init__(f"{written} {message}")
        self.written = written  # the file, relative to the repository


# ---- comparing -------------------------------------------------------------------------------


def compare(
    conn: Connection, discovery: Discovery, tables: set[str], schemas: set[str]
) -> ops.MigrationScript | None:
    """What the models need beyond what the database holds, for `tables` only (MetaData keys),
    reflecting only those; None when nothing."""

    def include_name(name: str | None, type_: str, parents: Any) -> bool:
        if type_ == "schema":
            return name is None or name in schemas
        if type_ == "table":
            return parents.get("schema_qualified_table_name", name) in tables
        return True

    def include_object(obj: Any, name: str | None, type_: str, reflected: bool, other: Any) -> bool:
        table = obj if type_ == "table" else getattr(obj, "table", None)
        return table is None or _key(table) in tables

    context = MigrationContext.configure(
        connection=conn,
        opts={
            **COMPARE_OPTS,
            "include_schemas": True,
            "include_name": include_name,
            "include_object": include_object,
            "target_metadata": discovery.metadata,
        },
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*unresolvable cycles.*")
        warnings.filterwarnings("ignore", message="Cannot correctly sort tables")
        script = produce_migrations(context, discovery.metadata)
    assert script.upgrade_ops is not None
    if script.upgrade_ops.is_empty():
        return None
    return script


def _key(table: Table) -> str:
    return table.fullname if table.schema and table.schema != "public" else table.name


# ---- create ----------------------------------------------------------------------------------


def create_revision(
    graph: RevisionGraph, module: Module, head: str | None, message: str, server: DatabaseURL
) -> Created | None:
    """Diff `module`'s models against its migrations on a shadow database; write the revision
    and prove it there (up, down, up, no drift left); None when there is nothing to write."""
    manifest = graph.manifest
    closure = manifest.dependency_closure(module.name)
    discovery = discover(manifest, closure)
    _check_references(graph, discovery, module)
    refuse_crossings(manifest, discovery, module.name)  # modules in different databases

    targets = heads_of(graph, closure)
    return run_async(
        lambda: on_shadow(
            server,
            graph,
            targets,
            "create",
            lambda conn, built: _create(conn, graph, discovery, module, head, message, built),
        )
    )


def _create(
    conn: Connection,
    graph: RevisionGraph,
    discovery: Discovery,
    module: Module,
    head: str | None,
    message: str,
    built: Built,
) -> Created | None:
    manifest = graph.manifest
    mine = _tables_of(discovery, built, module)
    script = compare(conn, discovery, mine, _schemas(discovery, module))
    if script is None:
        return None
    upgrade, downgrade = script.upgrade_ops, script.downgrade_ops
    assert upgrade is not None and downgrade is not None
    if any(isinstance(op, ops.CreateTableOp) for op in upgrade.ops):
        discover(manifest)  # a new table: no other module's models may define it too
    existing = _types(conn)
    _break_cycles(upgrade, downgrade)
    _break_cycles(downgrade, upgrade)
    _drop_types_with_tables(upgrade, downgrade, existing, conn)
    _types_for_new_columns(upgrade, downgrade, existing, conn)
    _create_schema(upgrade, downgrade, module, discovery, conn)
    depends_on = _dependencies(graph, discovery, module, head, upgrade)
    changes = tuple(describe(upgrade))
    body = _render(upgrade, downgrade, conn)
    written = revisionfile.write(
        manifest,
        module,
        message,
        head=head,
        depends_on=depends_on,
        upgrades=body[0],
        downgrades=body[1],
        imports=body[2],
    )
    _prove(conn, graph, discovery, module, written.path, mine, built)
    return Created(written.path, written.revision, depends_on, changes)


def _tables_of(discovery: Discovery, built: Built, module: Module) -> set[str]:
    """The module's tables: those its models define and those its migrations created (a table
    whose model was deleted)."""
    return discovery.tables_of(module.name) | {
        t for t, owner in built.created_by.items() if owner == module.name
    }


def _schemas(discovery: Discovery, module: Module) -> set[str]:
    return discovery.schemas() | ({module.schema} if module.schema else set())


def _render(
    upgrade: ops.UpgradeOps, downgrade: ops.DowngradeOps, conn: Connection
) -> tuple[str, str, str]:
    """The upgrade and downgrade bodies and the imports they need, through Alembic's public
    `render_python_code`; the imports its rendering adds are read from the context that its
    `render_item` hook is handed (rendering itself is left to Alembic)."""
    from alembic.autogenerate import render_python_code

    contexts: list[Any] = []

    def render_item(type_: str, obj: Any, autogen_context: Any) -> Literal[False]:
        contexts.append(autogen_context)
        return False

    def code(container: ops.UpgradeOps | ops.DowngradeOps) -> str:
        return render_python_code(
            container,
            migration_context=MigrationContext.configure(connection=conn),
            render_item=render_item,
            user_module_prefix=None,
        )

    up, down = code(upgrade), code(downgrade)
    imports = {line for context in contexts for line in context.imports}
    return up, down, "\n".join(sorted(imports))


# ---- proving the file ------------------------------------------------------------------------


def _prove(
    conn: Connection,
    graph: RevisionGraph,
    discovery: Discovery,
    module: Module,
    path: Path,
    mine: set[str],
    built: Built,
) -> None:
    """Upgrade, downgrade, upgrade again on the shadow, then compare with the models."""
    manifest = graph.manifest
    where = graph.relative(path)
    try:
        fresh = load_graph(manifest)
    except ConfigError as exc:
        raise ProofFailed(where, f"was written but cannot be read: {exc}") from exc
    revision = next(r for r in fresh.revisions.values() if r.path == path)
    heads = {head for m in manifest.dependency_closure(module.name) if (head := graph.head(m))}
    executor = Executor.online(conn, fresh, graph.maximal(graph.ancestors(heads)))
    up = Step(module.name, revision.revision, revision.message, "up")
    down = Step(module.name, revision.revision, revision.message, "down")
    ignored = bookkeeping(graph)
    before = snapshot(conn, ignored)
    with executor.contexts():
        for stage, step in (("upgrade", up), ("downgrade", down)):
            _proof_step(executor, step, stage, where)
        trace = snapshot(conn, ignored).difference(before)
        if trace:
            raise ProofFailed(
                where,
                "was written, but its downgrade leaves a trace on the shadow database: "
                f"{', '.join(trace[:8])}; edit the file so the downgrade undoes them",
            )
        _proof_step(executor, up, "re-upgrade", where)
    left = compare(conn, discovery, mine, _schemas(discovery, module))
    if left is not None:
        assert left.upgrade_ops is not None
        raise ProofFailed(
            where,
            "was written, but after it the models still differ from the shadow "
            f"database (remaining drift: {'; '.join(describe(left.upgrade_ops)[:8])}); edit "
            "the file to cover them",
        )


def _proof_step(executor: Executor, step: Step, stage: str, where: str) -> None:
    try:
        executor.step(step)
    except RevisionFailed as exc:
        raise ProofFailed(
            where,
            f"was written, but its {stage} fails on the shadow database: "
            f"{exc.reason}; edit the file (it is kept)",
        ) from exc


# ---- what plain autogenerate gets wrong ------------------------------------------------------


def _types(conn: Connection) -> dict[str, str]:
    """Named types in the database: enum and domain names (schema-qualified outside public)
    -> their kind."""
    rows = conn.execute(
        text(
            "SELECT n.nspname, t.typname, t.typtype FROM pg_type t "
            "JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.typtype IN ('e', 'd') "
            "AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'"
        )
    )
    return {
        (name if schema == "public" else f"{schema}.{name}"): kind for schema, name, kind in rows
    }


def _named(kind: Any) -> Any:
    """The PostgreSQL enum or domain behind a column type (an array's items count too)."""
    from sqlalchemy import Enum
    from sqlalchemy.dialects.postgresql import ENUM
    from sqlalchemy.types import ARRAY

    if isinstance(kind, ARRAY):
        kind = kind.item_type
    if isinstance(kind, NamedType):
        return kind if getattr(kind, "name", None) else None
    if isinstance(kind, Enum) and kind.name and kind.native_enum:
        return ENUM(*kind.enums, name=kind.name, schema=kind.schema)
    return None


def _named_types(table: Table) -> list[Any]:
    found: dict[str, Any] = {}
    for column in table.columns:
        kind = _named(getattr(column, "type", None))
        if kind is not None:
            found.setdefault(_type_key(kind, table), kind)
    return list(found.values())


def _type_key(kind: Any, table: Table) -> str:
    schema = kind.schema or (table.schema if getattr(kind, "inherit_schema", False) else None)
    return f"{schema}.{kind.name}" if schema and schema != "public" else str(kind.name)


def _drop_type_sql(kind: Any, key: str) -> str:
    what = "DOMAIN" if isinstance(kind, DOMAIN) else "TYPE"
    quoted = ".".join(f'"{part}"' for part in key.split("."))
    return f"DROP {what} IF EXISTS {quoted}"


def _drop_types_with_tables(
    upgrade: ops.UpgradeOps, downgrade: ops.DowngradeOps, existing: dict[str, str], conn: Connection
) -> None:
    """PostgreSQL keeps an enum or domain after DROP TABLE: drop the ones the table brought.

    Going down, a create_table of this revision is undone: its types are dropped unless they
    existed before. Going up, a deleted model's table is dropped: its types too, unless another
    table still uses them."""
    created = {_key(o.to_table()) for o in upgrade.ops if isinstance(o, ops.CreateTableOp)}
    dropped = {_key(o.to_table()) for o in upgrade.ops if isinstance(o, ops.DropTableOp)}
    still_used = _type_users(conn)
    for container, brought in ((downgrade, created), (upgrade, dropped)):
        last: dict[str, tuple[int, Any]] = {}
        for index, op in enumerate(container.ops):
            if not isinstance(op, ops.DropTableOp):
                continue
            table = op.to_table()
            if _key(table) not in brought:
                continue
            for kind in _named_types(table):
                key = _type_key(kind, table)
                if container is downgrade and key in existing:
                    continue  # it was there before this revision
                if container is upgrade and still_used.get(key, set()) - dropped:
                    continue  # another table keeps using it
                last[key] = (index, kind)
        for key, (index, kind) in sorted(last.items(), key=lambda item: -item[1][0]):
            container.ops.insert(index + 1, ops.ExecuteSQLOp(_drop_type_sql(kind, key)))


def _type_users(conn: Connection) -> dict[str, set[str]]:
    """Named type -> the tables whose columns use it, in the database."""
    rows = conn.execute(
        text(
            "SELECT tn.nspname, t.typname, cn.nspname, c.relname FROM pg_attribute a "
            "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace "
            "JOIN pg_type t ON t.oid = a.atttypid JOIN pg_namespace tn ON tn.oid = t.typnamespace "
            "WHERE t.typtype IN ('e', 'd') AND a.attnum > 0 AND NOT a.attisdropped "
            "AND c.relkind = 'r'"
        )
    )
    users: dict[str, set[str]] = {}
    for type_schema, type_name, schema, table in rows:
        key = type_name if type_schema == "public" else f"{type_schema}.{type_name}"
        users.setdefault(key, set()).add(table if schema == "public" else f"{schema}.{table}")
    return users


def _types_for_new_columns(
    upgrade: ops.UpgradeOps, downgrade: ops.DowngradeOps, existing: dict[str, str], conn: Connection
) -> None:
    """add_column does not create a new enum or domain on PostgreSQL (create_table does):
    create it before the column, and drop it after the column in the downgrade."""
    from sqlalchemy.dialects.postgresql.named_types import CreateDomainType, CreateEnumType

    created = set(existing)
    for op in upgrade.ops:
        if isinstance(op, ops.CreateTableOp):
            table = op.to_table()
            created |= {_type_key(k, table) for k in _named_types(table)}
    added: dict[str, Any] = {}
    for table_ops in (o for o in upgrade.ops if isinstance(o, ops.ModifyTableOps)):
        for index in range(len(table_ops.ops) - 1, -1, -1):
            op = table_ops.ops[index]
            kind = _named(getattr(getattr(op, "column", None), "type", None))
            if not isinstance(op, ops.AddColumnOp) or kind is None:
                continue
            key = f"{kind.schema}.{kind.name}" if kind.schema else str(kind.name)
            if key in created or key in added:
                continue
            ddl = CreateDomainType(kind) if isinstance(kind, DOMAIN) else CreateEnumType(kind)
            table_ops.ops.insert(index, ops.ExecuteSQLOp(str(ddl.compile(dialect=conn.dialect))))
            added[key] = kind
    for table_ops in (o for o in downgrade.ops if isinstance(o, ops.ModifyTableOps)):
        for index in range(len(table_ops.ops) - 1, -1, -1):
            op = table_ops.ops[index]
            if not isinstance(op, ops.DropColumnOp):
                continue
            kind = _named(getattr(op.to_column(), "type", None))
            if kind is not None:
                key = f"{kind.schema}.{kind.name}" if kind.schema else str(kind.name)
                if key in added:
                    table_ops.ops.insert(index + 1, ops.ExecuteSQLOp(_drop_type_sql(kind, key)))


def _break_cycles(creating: ops.OpContainer, dropping: ops.OpContainer) -> None:
    """Tables created together that reference each other in a cycle: create them without the
    cycle's foreign keys, and add those after the last table; on the way back, drop those
    foreign keys before the tables. (Autogenerate already orders the other tables.) Called
    for the upgrade's new tables, and mirrored for deleted models' tables.

    Not `sqlalchemy.schema.sort_tables_and_constraints`: it defers every foreign key of a
    table in a cycle, so `tickets` <-> `ticket_messages` would also get its key into another
    module's `accounts` as a separate create_foreign_key (and drop_constraint), and it needs
    Table objects, which a deleted model's tables no longer have."""
    creates = [o for o in creating.ops if isinstance(o, ops.CreateTableOp)]
    if len(creates) < 2:
        return
    by_key = {_key(o.to_table()): o for o in creates}
    edges = {key: _references(op, by_key) for key, op in by_key.items()}
    component_of = {
        key: i for i, component in enumerate(_strongly_connected(edges)) for key in component
    }
    deferred: list[ForeignKeyConstraint] = []
    for key, op in by_key.items():
        keep = []
        for item in op.columns:
            if isinstance(item, ForeignKeyConstraint):
                target = _fk_target(item)
                if target in by_key and target != key and component_of[target] == component_of[key]:
                    _name_fk(item, op)
                    deferred.append(item)
                    continue
            keep.append(item)
        op.columns = keep
    if not deferred:
        return
    last = max(i for i, o in enumerate(creating.ops) if isinstance(o, ops.CreateTableOp))
    creating.ops[last + 1 : last + 1] = [
        ops.CreateForeignKeyOp.from_constraint(f) for f in deferred
    ]
    first = next(
        (
            i
            for i, o in enumerate(dropping.ops)
            if isinstance(o, ops.DropTableOp) and _key(o.to_table()) in by_key
        ),
        len(dropping.ops),
    )
    dropping.ops[first:first] = [ops.DropConstraintOp.from_constraint(f) for f in deferred]


def _references(op: ops.CreateTableOp, by_key: dict[str, ops.CreateTableOp]) -> set[str]:
    found = set()
    for item in op.columns:
        if isinstance(item, ForeignKeyConstraint):
            target = _fk_target(item)
            if target in by_key:
                found.add(target)
    return found


def _fk_target(fk: ForeignKeyConstraint) -> str:
    element = fk.elements[0]
    table, _, _ = element.target_fullname.rpartition(".")
    return table.removeprefix("public.")


def _name_fk(fk: ForeignKeyConstraint, op: ops.CreateTableOp) -> None:
    """A deferred foreign key needs a name to be dropped by: PostgreSQL's default one."""
    from sqlalchemy.sql.elements import conv

    if fk.name is None or type(fk.name).__name__ == "_NoneName":
        columns = "_".join(e.parent.name for e in fk.elements)
        fk.name = conv(f"{op.table_name}_{columns}_fkey"[:63])


def _strongly_connected(edges: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm; components come out with every component they reach before them."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            result.append(component)

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return result


def _create_schema(
    upgrade: ops.UpgradeOps,
    downgrade: ops.DowngradeOps,
    module: Module,
    discovery: Discovery,
    conn: Connection,
) -> None:
    """The module's own schema, created by the first revision that puts a table in it."""
    schema = module.schema
    if not schema:
        return
    exists = conn.execute(
        text("SELECT count(*) FROM pg_namespace WHERE nspname = :s"), {"s": schema}
    ).scalar()
    if exists:
        return
    uses = any(getattr(op, "schema", None) == schema for op in _walk(upgrade))
    if not uses:
        return
    upgrade.ops.insert(0, ops.ExecuteSQLOp(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    downgrade.ops.append(ops.ExecuteSQLOp(f'DROP SCHEMA IF EXISTS "{schema}"'))


def _walk(container: Any) -> Iterator[Any]:
    for op in getattr(container, "ops", []):
        yield op
        yield from _walk(op)


# ---- dependencies between modules ------------------------------------------------------------


def _referenced_tables(upgrade: ops.UpgradeOps) -> set[str]:
    names: set[str] = set()
    for op in _walk(upgrade):
        if isinstance(op, ops.CreateTableOp):
            names |= {_fk_target(c) for c in op.columns if isinstance(c, ForeignKeyConstraint)}
            names |= {
                fk.target_fullname.rpartition(".")[0].removeprefix("public.")
                for c in op.columns
                for fk in getattr(c, "foreign_keys", ())
            }
        elif isinstance(op, ops.AddColumnOp):
            names |= {
                fk.target_fullname.rpartition(".")[0].removeprefix("public.")
                for fk in op.column.foreign_keys
            }
        elif isinstance(op, ops.CreateForeignKeyOp):
            schema = op.kw.get("referent_schema")
            names.add(f"{schema}.{op.referent_table}" if schema else op.referent_table)
    return names


def _check_references(graph: RevisionGraph, discovery: Discovery, module: Module) -> None:
    """A foreign key into a module outside `depends_on` (its table was not even imported):
    name the module and the manifest line to add."""
    known = set(discovery.metadata.tables)
    for name in sorted(discovery.tables_of(module.name)):
        for fk in discovery.metadata.tables[name].foreign_keys:
            target = fk.target_fullname.rpartition(".")[0]
            if target in known:
                continue
            owner = discover(graph.manifest).owners.get(target)
            if owner is None:
                raise ConfigError(
                    f"module '{module.name}': table '{name}' references table '{target}', which "
                    "no module's models define; fix the foreign key"
                )
            raise ConfigError(
                f"module '{module.name}' references table '{target}' of module '{owner}', which "
                f"is not in its depends_on; add '{owner}' to depends_on of module "
                f"'{module.name}' in migrations.yaml"
            )


def _dependencies(
    graph: RevisionGraph,
    discovery: Discovery,
    module: Module,
    head: str | None,
    upgrade: ops.UpgradeOps,
) -> tuple[str, ...]:
    """Heads of the other modules whose tables the new revision references, leaving out any
    head another dependency (or the module's own history) already implies."""
    candidates: set[str] = set()
    for table in _referenced_tables(upgrade):
        owner = discovery.owners.get(table)
        if owner is None or owner == module.name:
            continue
        owner_head = graph.head(graph.manifest.module(owner))
        if owner_head:
            candidates.add(owner_head)
    implied = graph.ancestors([head]) if head else set()
    minimal = {
        c
        for c in candidates
        if c not in implied
        and not any(c in graph.ancestors([other]) for other in candidates if other != c)
    }
    return tuple(graph.ordered(minimal))


# ---- describing operations -------------------------------------------------------------------


def describe(upgrade: ops.UpgradeOps) -> list[str]:
    """One line per operation, as `check` and `create` show them: `+ table x`, `~ type x.y`."""
    lines: list[str] = []
    for op in _leaves(upgrade):
        lines.append(_describe(op))
    return lines


def _leaves(container: Any) -> Iterator[Any]:
    for op in getattr(container, "ops", []):
        if isinstance(op, ops.OpContainer):
            yield from _leaves(op)
        else:
            yield op


def _describe(op: Any) -> str:
    table = getattr(op, "table_name", None)
    schema = getattr(op, "schema", None)
    where = f"{schema}.{table}" if schema and schema != "public" else table
    if isinstance(op, ops.CreateTableOp):
        return f"+ table {where}"
    if isinstance(op, ops.DropTableOp):
        return f"- table {where}"
    if isinstance(op, ops.AddColumnOp):
        return f"+ column {where}.{op.column.name}"
    if isinstance(op, ops.DropColumnOp):
        return f"- column {where}.{op.column_name}"
    if isinstance(op, ops.AlterColumnOp):
        what = [
            label
            for label, key in (
                ("type", "modify_type"),
                ("nullable", "modify_nullable"),
                ("default", "modify_server_default"),
                ("comment", "modify_comment"),
                ("name", "modify_name"),
            )
            # False: not changed; None, for a default or a comment: taken away
            if (value := getattr(op, key, False)) is not False
            and (value is not None or key in ("modify_server_default", "modify_comment"))
        ]
        return f"~ {'/'.join(what) or 'column'} {where}.{op.column_name}"
    if isinstance(op, ops.CreateIndexOp):
        return f"+ index {op.index_name} on {where}"
    if isinstance(op, ops.DropIndexOp):
        return f"- index {op.index_name} on {where}"
    if isinstance(op, ops.CreateForeignKeyOp):
        return f"+ foreign key {op.constraint_name} on {op.source_table}"
    if isinstance(op, ops.AddConstraintOp):
        return f"+ constraint {getattr(op, 'constraint_name', '')} on {where}"
    if isinstance(op, ops.DropConstraintOp):
        return f"- constraint {op.constraint_name} on {where}"
    if isinstance(op, ops.ExecuteSQLOp):
        sql = str(op.sqltext)
        words = sql.split()
        if len(words) >= 3 and words[0] in ("CREATE", "DROP"):
            sign = "+" if words[0] == "CREATE" else "-"
            kind = words[1].lower()
            name = (
                words[-1]
                if kind == "schema"
                else next((w for w in words[2:] if w not in ("IF", "NOT", "EXISTS")), "")
            )
            return f"{sign} {kind} {name.strip(chr(34))}"
        return f"sql {sql[:60]}"
    return type(op).__name__
