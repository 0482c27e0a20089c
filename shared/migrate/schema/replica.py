"""A revision written from what a database holds (squash, adopt, baseline), to be read by a
person: the schemas, extensions and types first, then one `create_table` per table (foreign
keys in an order that applies: a cycle's keys added after its tables), the rows the tables
hold, then views and triggers; the downgrade drops it all in the reverse order.

Tables and indexes are rendered by Alembic from SQLAlchemy's reflection of the database, so
they read as `migrate create` writes them; what reflection does not cover is the database's
own definition in `op.execute` (a function as `pg_get_functiondef` gives it, a trigger as
`pg_get_triggerdef` does). Whatever the writer gets wrong, the proof (schema/proof.py) finds.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from shared.migrate.database.holdings import (
    FUNCTION,
    LATE_FUNCTION,
    SEQUENCE,
    Holdings,
    Owned,
    Rows,
    Thing,
    ident,
    written,
)

if TYPE_CHECKING:
    from alembic.operations import ops
    from sqlalchemy import Column, Table

TABLE_KEY = "table"
# what SQLAlchemy's text() would read as a bind parameter (and its escape, `\:`, undoes)
_BIND = re.compile(r"(?<![:\w\\]):(\w+)(?!:)")
_NOISE = {  # dialect options reflection fills in with their defaults: said, they only distract
    "postgresql_include": [],
    "postgresql_nulls_not_distinct": False,
    "postgresql_ignore_search_path": False,
    "postgresql_with": {},
    "postgresql_using": "btree",
}


@dataclass(frozen=True)
class Body:
    """The upgrade and downgrade of a revision, and the imports they need."""

    upgrade: str
    downgrade: str
    imports: str
    summary: tuple[str, ...]  # one line per object created: "+ table accounts", "+ 3 rows of x"


def body(holdings: Holdings, keys: set[tuple[str, str]], rows: Iterable[str] = ()) -> Body:
    """The revision that creates the objects `keys` names (the catalog snapshot's keys:
    ("table", "public.accounts"), ("function", "public.f()"), ...) as `holdings` has them, and
    inserts the rows `holdings` read of the tables named in `rows`."""
    tables = [name for kind, name in keys if kind == TABLE_KEY and name in holdings.tables]
    things = sorted((t for t in holdings.things if t.key in keys), key=lambda t: (t.phase, t.oid))
    ordered = _table_order(holdings, tables)
    owned = {k: o for k, o in holdings.owned.items() if o.table in tables}
    explicit = _explicit_sequences(holdings, owned)
    for name in ordered:
        _tidy(holdings.tables[name], owned, explicit, holdings.named)
    writer = _Writer()
    before = [t for t in things if t.phase < SEQUENCE or t.phase == FUNCTION]
    before += [t for t in things if t.phase == SEQUENCE]
    after = [t for t in things if t.phase > SEQUENCE and t.phase != FUNCTION]
    checked = any(t.phase in (FUNCTION, LATE_FUNCTION) for t in things)
    if checked:  # a function may name a table created further down (pg_dump does the same)
        writer.sql("SET LOCAL check_function_bodies = off", None)
    for thing in before:
        writer.thing(thing)
    for sequence in explicit:
        writer.sql(sequence.create, f"DROP SEQUENCE IF EXISTS {written(sequence.name)}")
    creates, deferred = _creates(holdings, ordered)
    for create in creates:
        writer.table(create)
        source = holdings.tables[f"{create.schema or 'public'}.{create.table_name}"]
        for index in sorted(source.indexes, key=lambda i: str(i.name)):
            writer.index(index)
    for sequence in owned.values():
        writer.sequence(sequence, explicit)
    for name in ordered:
        for column, constraint in holdings.not_null.get(name, []):
            writer.not_null(name, column, constraint)
    for name in ordered:
        if name in rows and name in holdings.rows:
            writer.rows(name, holdings.rows[name])
    for name, (value, called) in sorted(holdings.positions.items()):
        if called and _created(holdings, name, keys, tables):
            writer.setval(name, value)
    for key in deferred:
        writer.foreign_key(key)
    for thing in after:
        writer.thing(thing)
    return writer.finish()


# ---- the tables, as reflection has them, tidied for reading -----------------------------


def _table_order(holdings: Holdings, tables: list[str]) -> list[str]:
    """Each table after the tables it references (a cycle's tables together), otherwise in
    the order the database created them."""
    from shared.migrate.schema.autogen import _strongly_connected

    chosen = set(tables)
    edges = {
        name: {
            target
            for fk in holdings.tables[name].foreign_key_constraints
            if (target := referenced_table(fk)) in chosen and target != name
        }
        for name in tables
    }
    components = _strongly_connected(edges)
    component_of = {name: i for i, part in enumerate(components) for name in part}
    waiting = {
        i: {component_of[t] for n in part for t in edges[n]} - {i}
        for i, part in enumerate(components)
    }
    result: list[str] = []
    done: set[int] = set()
    while len(done) < len(components):
        ready = [i for i in waiting if i not in done and waiting[i] <= done]
        first = min(ready, key=lambda i: min(holdings.order[n] for n in components[i]))
        done.add(first)
        result += sorted(components[first], key=holdings.order.__getitem__)
    return result


def referenced_table(fk: Any) -> str:
    """The table a foreign key references, as schema.table."""
    parts = fk.elements[0].target_fullname.split(".")
    return ".".join(parts[:-1]) if len(parts) > 2 else f"public.{parts[0]}"


def _explicit_sequences(holdings: Holdings, owned: dict[str, Owned]) -> list[Owned]:
    """Sequences SERIAL cannot make: a serial column that is not its table's single primary
    key (created before the table, the column's default names it)."""
    found = []
    for sequence in owned.values():
        if sequence.identity:
            continue
        table = holdings.tables[sequence.table]
        if not _serial_key(table, table.c[sequence.column]):
            found.append(sequence)
    return found


def _serial_key(table: Table, column: Column[Any]) -> bool:
    keys = list(table.primary_key.columns)
    return keys == [column] and _integer(column)


def _integer(column: Column[Any]) -> bool:
    from sqlalchemy import Integer

    return isinstance(column.type, Integer)


def _tidy(
    table: Table,
    owned: dict[str, Owned],
    explicit: list[Owned],
    named: dict[str, tuple[str, str]],
) -> None:
    """What reflection sets to its defaults said only where it matters; types created on
    their own (enums, domains) not created again by the table; a serial key as SERIAL; a
    type reflection does not know (a composite) by its name."""
    from sqlalchemy import String
    from sqlalchemy.dialects.postgresql import DOMAIN
    from sqlalchemy.types import NullType

    name = f"{table.schema or 'public'}.{table.name}"
    spelled = {s.column for s in explicit if s.table == name}
    for column in table.columns:
        known = named.get(f"{name}.{column.name}")
        if isinstance(column.type, NullType) and known is not None:
            schema = None if known[0] == "public" else known[0]
            # a named type, created on its own: DOMAIN is how SQLAlchemy names one in DDL
            column.type = DOMAIN(known[1], String(), schema=schema, create_type=False)
        column.type = _not_created(column.type)
        sequence = owned.get(f"{name}.{column.name}")
        serial = sequence is not None and not sequence.identity and column.name not in spelled
        if serial:
            column.server_default = None  # SERIAL gives it
            column.autoincrement = "auto" if _serial_key(table, column) else True
        elif column.autoincrement is False and _serial_key(table, column):
            pass  # an integer key without a sequence: "auto" would make it SERIAL
        else:
            column.autoincrement = "auto"
    for item in [table, *table.indexes, *table.constraints]:
        _quiet(item)


def _quiet(item: Any) -> None:
    kwargs = item.dialect_kwargs
    noise = [k for k in kwargs if k in _NOISE and kwargs[k] == _NOISE[k]]
    noise += [k for k in kwargs if k.startswith("postgresql_") and kwargs[k] in (None, [], {})]
    for key in noise:
        with contextlib.suppress(KeyError):  # a default the dialect holds: never rendered
            del kwargs[key]


def _not_created(kind: Any) -> Any:
    """An enum or domain column type that the table does not create (the revision does)."""
    from sqlalchemy import String
    from sqlalchemy.dialects.postgresql import ARRAY, DOMAIN, ENUM

    if isinstance(kind, ARRAY):
        kind.item_type = _not_created(kind.item_type)
        return kind
    if isinstance(kind, DOMAIN):
        return DOMAIN(str(kind.name), String(), schema=kind.schema, create_type=False)
    if isinstance(kind, ENUM):
        kind.create_type = False
    return kind


def _creates(holdings: Holdings, ordered: list[str]) -> tuple[list[ops.CreateTableOp], list[Any]]:
    """One create_table per table; the foreign keys of a cycle taken out, to add after."""
    from alembic.operations import ops

    from shared.migrate.schema.autogen import _break_cycles

    tables = [holdings.tables[name] for name in ordered]
    upgrade = ops.UpgradeOps(ops=[ops.CreateTableOp.from_table(t) for t in tables])
    downgrade = ops.DowngradeOps(ops=[])
    _break_cycles(upgrade, downgrade)
    creates = [op for op in upgrade.ops if isinstance(op, ops.CreateTableOp)]
    deferred = [op for op in upgrade.ops if not isinstance(op, ops.CreateTableOp)]
    return creates, deferred


def _created(
    holdings: Holdings, sequence: str, keys: set[tuple[str, str]], tables: list[str]
) -> bool:
    """Whether this revision creates the sequence (with its table, or on its own): then it
    sets it where it stood, rows or not (a data migration may insert and delete)."""
    for owned in holdings.owned.values():
        if owned.name == sequence:
            return owned.table in tables
    return ("sequence", sequence) in keys


# ---- rendering ---------------------------------------------------------------------------


class _Writer:
    """The upgrade's statements in order, and the downgrade's in the reverse order."""

    def __init__(self) -> None:
        from alembic.runtime.migration import MigrationContext

        self.context = MigrationContext.configure(dialect_name="postgresql")
        self.up: list[str] = []
        self.down: list[str] = []
        self.imports: set[str] = set()
        self.summary: list[str] = []

    def sql(self, create: str, drop: str | None) -> None:
        self.up.append(execute(create))
        if drop:
            self.down.append(execute(drop))

    def thing(self, thing: Thing) -> None:
        self.sql(thing.create, thing.drop or None)
        if thing.kind != "comment":
            self.summary.append(f"+ {thing.kind} {_short(thing.name)}")

    def table(self, create: ops.CreateTableOp) -> None:
        from alembic.operations import ops

        self.up.append(self._render(create))
        table = create.to_table()
        self.down.append(self._render(ops.DropTableOp.from_table(table)))
        schema = create.schema or "public"
        self.summary.append(f"+ table {_short(f'{schema}.{create.table_name}')}")

    def index(self, index: Any) -> None:
        from alembic.operations import ops

        self.up.append(self._render(ops.CreateIndexOp.from_index(index)))

    def foreign_key(self, op: Any) -> None:
        from alembic.operations import ops

        self.up.append(self._render(op))
        constraint = op.to_constraint()
        self.down.append(self._render(ops.DropConstraintOp.from_constraint(constraint)))

    def sequence(self, sequence: Owned, explicit: list[Owned]) -> None:
        """After its table: where SERIAL or the identity named it otherwise (a renamed table
        keeps its sequence's name) or gave it other parameters, say what the database has."""
        table, column = sequence.table, sequence.column
        if sequence in explicit:
            owner = f"{written(table)}.{ident(column)}"
            self.up.append(execute(f"ALTER SEQUENCE {written(sequence.name)} OWNED BY {owner}"))
            return
        made = f"{table.partition('.')[2]}_{column}_seq"
        if sequence.name.partition(".")[2] != made:
            find = f"pg_get_serial_sequence('{_sql_string(written(table))}', '{column}')"
            new = sequence.name.partition(".")[2]
            self.up.append(
                execute(
                    "DO $$ BEGIN EXECUTE format('ALTER SEQUENCE %s RENAME TO %I', "
                    f"{find}, '{_sql_string(new)}'); END $$"
                )
            )
        if not sequence.default:
            self.up.append(
                execute(f"ALTER SEQUENCE {written(sequence.name)} {sequence.parameters}")
            )

    def not_null(self, table: str, column: str, name: str) -> None:
        """A NOT NULL constraint that kept its name through a rename (PostgreSQL 18 names
        them), renamed from the one the new table gave it."""
        made = f"{table.partition('.')[2]}_{column}_not_null"
        self.up.append(
            execute(
                f"ALTER TABLE {written(table)} RENAME CONSTRAINT {ident(made)} TO {ident(name)}"
            )
        )

    def rows(self, table: str, rows: Rows) -> None:
        names = ", ".join(ident(c) for c in rows.columns)
        overriding = " OVERRIDING SYSTEM VALUE" if rows.overriding else ""
        values = ",\n".join("  (" + ", ".join(_value(v) for v in row) + ")" for row in rows.values)
        insert = f"INSERT INTO {written(table)} ({names}){overriding} VALUES\n{values}"
        self.up.append(execute(insert))
        count = len(rows.values)
        self.summary.append(f"+ {count} row{'s' if count != 1 else ''} of {_short(table)}")

    def setval(self, sequence: str, value: int) -> None:
        name = _sql_string(written(sequence))
        self.up.append(execute(f"SELECT setval('{name}', {value})"))

    def _render(self, op: Any) -> str:
        from alembic.autogenerate import render_python_code
        from alembic.operations import ops

        contexts: list[Any] = []

        def render_item(type_: str, obj: Any, autogen_context: Any) -> Literal[False]:
            contexts.append(autogen_context)
            return False

        container = ops.UpgradeOps(ops=[op])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            text = render_python_code(
                container,
                migration_context=self.context,
                render_item=render_item,
                user_module_prefix=None,
            )
        self.imports |= {line for context in contexts for line in context.imports}
        lines = [line for line in text.splitlines() if not line.strip().startswith("# ###")]
        return "\n".join(line[4:] if line.startswith("    ") else line for line in lines)

    def finish(self) -> Body:
        indent = "\n    "
        upgrade = indent.join(_indented(piece) for piece in self.up)
        downgrade = indent.join(_indented(piece) for piece in reversed(self.down))
        return Body(upgrade, downgrade, "\n".join(sorted(self.imports)), tuple(self.summary))


def _indented(piece: str) -> str:
    """A rendered statement inside a function body: its lines indented, except those of a
    multi-line SQL string (whose text must stay as the database gave it)."""
    if piece.startswith("op.execute(\n"):
        return piece
    return piece.replace("\n", "\n    ")


def execute(sql: str) -> str:
    """`op.execute(...)` of `sql` as Python source: one line when it fits, else a
    triple-quoted string holding the text exactly."""
    text = _BIND.sub(lambda m: "\\" + m.group(0), sql)  # text() must not see bind parameters
    if "\n" not in text and "\\" not in text and len(text) < 80:
        quote_mark = "'" if '"' in text and "'" not in text else '"'
        if quote_mark not in text:
            return f"op.execute({quote_mark}{text}{quote_mark})"
    escaped = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    if escaped.endswith('"'):
        escaped = escaped[:-1] + '\\"'
    return f'op.execute(\n        """{escaped}"""\n    )'


def _value(value: str | None) -> str:
    return "NULL" if value is None else "'" + value.replace("'", "''") + "'"


def _sql_string(text: str) -> str:
    return text.replace("'", "''")


def _short(name: str) -> str:
    return name.removeprefix("public.")
