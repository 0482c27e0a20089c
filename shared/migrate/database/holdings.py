"""What a database holds, read to write a revision that builds it again (squash, adopt,
baseline): its tables through SQLAlchemy's reflection, and what reflection does not cover
(schemas, extensions, enum and domain types, sequences, functions, views, triggers), each with
the SQL that creates it as the database has it, the SQL that drops it, and the tables that use
it; optionally the rows of some tables and where their sequences stand.

Every object carries its key in the catalog snapshot (database/catalog.py), so what a revision
must build and what the snapshot proves are the same set.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import MetaData, Table
    from sqlalchemy.engine import Connection

_SYSTEM = "n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'"
# an object that belongs to an extension is the extension's to create
_NOT_EXTENSION = (
    "NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = {cls}::regclass "
    "AND e.objid = {oid} AND e.deptype = 'e')"
)

# the relation (table or view) an object that depends on something belongs to
_RELATION_OF = """
CASE d.classid
  WHEN 'pg_class'::regclass THEN coalesce(
    (SELECT indrelid FROM pg_index WHERE indexrelid = d.objid), d.objid)
  WHEN 'pg_attrdef'::regclass THEN (SELECT adrelid FROM pg_attrdef WHERE oid = d.objid)
  WHEN 'pg_constraint'::regclass THEN (SELECT conrelid FROM pg_constraint WHERE oid = d.objid)
  WHEN 'pg_trigger'::regclass THEN (SELECT tgrelid FROM pg_trigger WHERE oid = d.objid)
  WHEN 'pg_rewrite'::regclass THEN (SELECT ev_class FROM pg_rewrite WHERE oid = d.objid)
END
"""

# (referenced oid, relation oid): every table or view whose parts depend on an object
USERS_SQL = f"""
SELECT DISTINCT d.refobjid, r.oid FROM pg_depend d
JOIN pg_class r ON r.oid = ({_RELATION_OF})
WHERE d.refclassid IN ('pg_type'::regclass, 'pg_proc'::regclass, 'pg_class'::regclass,
                       'pg_opclass'::regclass, 'pg_collation'::regclass)
  AND d.deptype IN ('n', 'a') AND r.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND d.refobjid <> r.oid
"""

RELATIONS_SQL = f"""
SELECT c.oid, n.nspname, c.relname, c.relkind::text FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {_SYSTEM}
"""

SCHEMAS_SQL = f"""
SELECT n.oid, n.nspname FROM pg_namespace n WHERE {_SYSTEM} AND n.nspname <> 'public'
  AND {_NOT_EXTENSION.format(cls="'pg_namespace'", oid="n.oid")}
"""

EXTENSIONS_SQL = """
SELECT e.oid, e.extname, n.nspname FROM pg_extension e
JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname <> 'plpgsql'
"""

# (extension oid, oid of one of its objects): who uses an extension uses one of those
MEMBERS_SQL = """
SELECT refobjid, objid FROM pg_depend
WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
"""

TYPES_SQL = f"""
SELECT t.oid, n.nspname, t.typname, t.typtype::text,
       (SELECT array_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum e
        WHERE e.enumtypid = t.oid),
       format_type(t.typbasetype, t.typtypmod), t.typnotnull, t.typdefault,
       (SELECT array_agg(quote_ident(k.conname) || ' ' || pg_get_constraintdef(k.oid)
                         ORDER BY k.conname)
        FROM pg_constraint k WHERE k.contypid = t.oid),
       CASE WHEN t.typtype = 'c' THEN (
         SELECT string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod),
                           ', ' ORDER BY a.attnum)
         FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0
           AND NOT a.attisdropped) END,
       CASE WHEN t.typcollation <> 0 AND t.typcollation <> (
         SELECT b.typcollation FROM pg_type b WHERE b.oid = t.typbasetype)
         THEN (SELECT quote_ident(cn.nspname) || '.' || quote_ident(co.collname)
               FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace
               WHERE co.oid = t.typcollation) END
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE t.typtype IN ('e', 'd', 'c') AND {_SYSTEM}
  AND (t.typtype <> 'c' OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
  AND {_NOT_EXTENSION.format(cls="'pg_type'", oid="t.oid")}
"""

SEQUENCES_SQL = f"""
SELECT c.oid, n.nspname, c.relname, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement,
       s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
       o.refobjid, a.attname, o.deptype::text
FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_depend o ON o.classid = 'pg_class'::regclass AND o.objid = c.oid
  AND o.refclassid = 'pg_class'::regclass AND o.deptype IN ('a', 'i')
LEFT JOIN pg_attribute a ON a.attrelid = o.refobjid AND a.attnum = o.refobjsubid
WHERE {_SYSTEM} AND {_NOT_EXTENSION.format(cls="'pg_class'", oid="c.oid")}
"""

FUNCTIONS_SQL = f"""
SELECT p.oid, n.nspname, p.proname, pg_get_function_identity_arguments(p.oid),
       pg_get_functiondef(p.oid),
       EXISTS (SELECT 1 FROM pg_depend d JOIN pg_type t ON d.refclassid = 'pg_type'::regclass
               AND t.oid = d.refobjid WHERE d.classid = 'pg_proc'::regclass
               AND d.objid = p.oid AND t.typrelid <> 0
               AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) <> 'c')
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE {_SYSTEM} AND p.prokind IN ('f', 'p')
  AND {_NOT_EXTENSION.format(cls="'pg_proc'", oid="p.oid")}
  AND NOT EXISTS (SELECT 1 FROM pg_depend i WHERE i.classid = 'pg_proc'::regclass
                  AND i.objid = p.oid AND i.deptype = 'i')  -- a range type's constructors
"""

VIEWS_SQL = f"""
SELECT c.oid, n.nspname, c.relname, c.relkind::text, pg_get_viewdef(c.oid),
       ARRAY(SELECT DISTINCT d.refobjid FROM pg_rewrite r JOIN pg_depend d
             ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
             AND d.refclassid = 'pg_class'::regclass
             WHERE r.ev_class = c.oid AND d.refobjid <> c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('v', 'm') AND {_SYSTEM}
  AND {_NOT_EXTENSION.format(cls="'pg_class'", oid="c.oid")}
"""

TRIGGERS_SQL = f"""
SELECT g.oid, n.nspname, c.relname, g.tgname, pg_get_triggerdef(g.oid), g.tgfoid, c.oid
FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT g.tgisinternal AND {_SYSTEM}
"""

# comments on relations reflection does not read (views, indexes, sequences), and the
# relation that uses each: the view itself, the index's table, the sequence
COMMENTS_SQL = f"""
SELECT c.oid, n.nspname, c.relname, c.relkind::text, a.attname, d.description,
       CASE WHEN c.relkind = 'i' THEN (
         SELECT tn.nspname || '.' || t.relname FROM pg_index x JOIN pg_class t ON t.oid = x.indrelid
         JOIN pg_namespace tn ON tn.oid = t.relnamespace WHERE x.indexrelid = c.oid) END
FROM pg_description d JOIN pg_class c ON d.classoid = 'pg_class'::regclass AND d.objoid = c.oid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid AND d.objsubid > 0
WHERE c.relkind IN ('v', 'm', 'i', 'S') AND {_SYSTEM}
"""
_COMMENTED = {"v": "VIEW", "m": "MATERIALIZED VIEW", "i": "INDEX", "S": "SEQUENCE"}

# PostgreSQL 18 keeps NOT NULL as named constraints, and a rename of the table or column
# keeps the name it was given: those whose name is not the one a new table would give
NOT_NULL_SQL = f"""
SELECT n.nspname, c.relname, a.attname, k.conname FROM pg_constraint k
JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.conkey[1]
WHERE k.contype = 'n' AND {_SYSTEM} AND k.conname <> c.relname || '_' || a.attname || '_not_null'
"""

# columns whose type SQLAlchemy's reflection does not know (a composite type, a range):
# the type's schema and name, to write it by name
NAMED_SQL = f"""
SELECT n.nspname, c.relname, a.attname, tn.nspname, t.typname FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid JOIN pg_namespace tn ON tn.oid = t.typnamespace
WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p') AND {_SYSTEM}
  AND t.typtype IN ('c', 'r', 'm') AND tn.nspname NOT LIKE 'pg\\_%'
"""

COLUMNS_SQL = """
SELECT a.attname, a.attidentity::text FROM pg_attribute a
WHERE a.attrelid = CAST(:table AS regclass) AND a.attnum > 0 AND NOT a.attisdropped
  AND a.attgenerated = '' ORDER BY a.attnum
"""

# the kinds of object the writer orders by (see `Thing.phase`)
SCHEMA, EXTENSION, TYPE, FUNCTION, SEQUENCE, LATE_FUNCTION, VIEW, TRIGGER, COMMENT = range(9)


@dataclass(frozen=True)
class Thing:
    """An object reflection does not cover, as the database holds it."""

    kind: str  # the catalog snapshot's kind
    name: str  # the catalog snapshot's name (schema-qualified)
    phase: int  # when a revision creates it: SCHEMA ... COMMENT (tables come after SEQUENCE)
    create: str
    drop: str  # empty: it goes with what it belongs to
    oid: int
    users: frozenset[str] = frozenset()  # relations (schema.name) that use or own it

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.name)


@dataclass(frozen=True)
class Owned:
    """A sequence that belongs to a table's column (serial, identity)."""

    name: str  # schema.sequence
    table: str  # schema.table
    column: str
    identity: bool
    create: str  # CREATE SEQUENCE as the database has it (for a column SERIAL cannot make)
    parameters: str  # AS type INCREMENT ... CYCLE, for ALTER SEQUENCE
    default: bool  # the parameters SERIAL (or the identity) gives a sequence of its type


@dataclass(frozen=True)
class Rows:
    """One table's rows, each value as PostgreSQL's text output (None: NULL)."""

    columns: tuple[str, ...]
    values: tuple[tuple[str | None, ...], ...]
    overriding: bool = False  # a GENERATED ALWAYS identity column is among `columns`


@dataclass
class Holdings:
    metadata: MetaData
    tables: dict[str, Table]  # schema.table -> the reflected table
    order: dict[str, int]  # relation (schema.name) -> its oid: the order it was created in
    things: list[Thing]
    owned: dict[str, Owned]  # schema.table.column -> its sequence
    relation_users: dict[str, frozenset[str]] = field(default_factory=dict)
    not_null: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # renamed ones
    # schema.table.column -> (schema, name) of a type reflection does not know
    named: dict[str, tuple[str, str]] = field(default_factory=dict)
    rows: dict[str, Rows] = field(default_factory=dict)  # schema.table -> its rows
    positions: dict[str, tuple[int, bool]] = field(default_factory=dict)  # sequence -> state

    def thing(self, key: tuple[str, str]) -> Thing | None:
        return next((t for t in self.things if t.key == key), None)


def qualified(schema: str, name: str) -> str:
    return f"{schema}.{name}"


# PostgreSQL's reserved keywords (pg_get_keywords() catcode R and T): quoted as identifiers
RESERVED = frozenset(
    (  # noqa: SIM905 (a list of words reads best as words)
        "all analyse analyze and any array as asc asymmetric authorization binary both case cast "
        "check collate collation column concurrently constraint create cross current_catalog "
        "current_date current_role current_schema current_time current_timestamp current_user "
        "default deferrable desc distinct do else end except false fetch for foreign freeze from "
        "full grant group having ilike in initially inner intersect into is isnull join lateral "
        "leading left like limit localtime localtimestamp natural not notnull null offset on "
        "only or order outer overlaps placing primary references returning right select "
        "session_user similar some symmetric table tablesample then to trailing true union "
        "unique user using variadic verbose when where window with"
    ).split()
)
_PLAIN = re.compile(r"[a-z_][a-z0-9_$]*\Z")


def ident(part: str) -> str:
    """One identifier as SQL, quoted only where PostgreSQL needs it (quote_ident's rule)."""
    if _PLAIN.match(part) and part not in RESERVED:
        return part
    return '"' + part.replace('"', '""') + '"'


def quote(name: str) -> str:
    """A schema-qualified name as SQL."""
    return ".".join(ident(part) for part in _split(name))


def written(name: str) -> str:
    """A schema-qualified name as a revision writes it: one in public unqualified, so that it
    is created where the search_path points (a tenant's schema), as its tables are."""
    schema, _, rest = name.partition(".")
    return ident(rest) if rest and schema == "public" else quote(name)


def _split(name: str) -> list[str]:
    schema, _, rest = name.partition(".")
    return [schema, rest] if rest else [schema]


def read_holdings(conn: Connection, ignored: set[str]) -> Holdings:
    """Everything the database holds (`ignored`: schema.table names left out, the version and
    log tables)."""
    from sqlalchemy import MetaData, text

    relations = {
        oid: (qualified(schema, name), kind)
        for oid, schema, name, kind in conn.execute(text(RELATIONS_SQL))
        if qualified(schema, name) not in ignored
    }
    order = {name: oid for oid, (name, _) in relations.items()}
    users: dict[int, set[str]] = {}
    for ref, rel in conn.execute(text(USERS_SQL)):
        if rel in relations:
            users.setdefault(ref, set()).add(relations[rel][0])
    metadata = MetaData()
    tables: dict[str, Table] = {}
    schemas = sorted({name.partition(".")[0] for name, kind in relations.values() if kind in "rp"})
    for schema in schemas:
        only = [
            name.partition(".")[2]
            for name, kind in relations.values()
            if kind in "rp" and name.partition(".")[0] == schema
        ]
        with warnings.catch_warnings():  # a type it does not know: `named` says which
            warnings.filterwarnings("ignore", message="Did not recognize type")
            metadata.reflect(conn, schema=None if schema == "public" else schema, only=only)
    for table in metadata.tables.values():
        name = qualified(table.schema or "public", table.name)
        if name in order and name not in ignored:
            tables[name] = table
    owned, sequences = _sequences(conn, relations, users)
    things = [
        *_schemas(conn),
        *_extensions(conn, users),
        *_types(conn, users),
        *sequences,
        *_functions(conn, relations, users),
        *_views(conn, relations),
        *_triggers(conn, relations),
        *_comments(conn),
    ]
    relation_users = {
        name: frozenset(users.get(oid, set())) for oid, (name, _) in relations.items()
    }
    not_null: dict[str, list[tuple[str, str]]] = {}
    for schema, table, column, name in conn.execute(text(NOT_NULL_SQL)):
        not_null.setdefault(qualified(schema, table), []).append((column, name))
    named = {
        f"{qualified(schema, table)}.{column}": (type_schema, type_name)
        for schema, table, column, type_schema, type_name in conn.execute(text(NAMED_SQL))
    }
    return Holdings(metadata, tables, order, things, owned, relation_users, not_null, named)


def _schemas(conn: Connection) -> list[Thing]:
    from sqlalchemy import text

    return [
        Thing(
            "schema",
            name,
            SCHEMA,
            f"CREATE SCHEMA IF NOT EXISTS {quote(name)}",
            f"DROP SCHEMA IF EXISTS {quote(name)}",
            oid,
        )
        for oid, name in conn.execute(text(SCHEMAS_SQL))
    ]


def _extensions(conn: Connection, users: dict[int, set[str]]) -> list[Thing]:
    from sqlalchemy import text

    members: dict[int, set[int]] = {}
    for ext, member in conn.execute(text(MEMBERS_SQL)):
        members.setdefault(ext, set()).add(member)
    found = []
    for oid, name, schema in conn.execute(text(EXTENSIONS_SQL)):
        using = {rel for member in members.get(oid, ()) for rel in users.get(member, ())}
        found.append(
            Thing(
                "extension",
                name,
                EXTENSION,
                f"CREATE EXTENSION IF NOT EXISTS {quote(name)} WITH SCHEMA {quote(schema)}",
                f"DROP EXTENSION IF EXISTS {quote(name)}",
                oid,
                frozenset(using),
            )
        )
    return found


def _types(conn: Connection, users: dict[int, set[str]]) -> list[Thing]:
    from sqlalchemy import text

    found = []
    rows = conn.execute(text(TYPES_SQL)).all()
    for oid, schema, name, kind, labels, base, not_null, default, checks, fields, collate in rows:
        full = qualified(schema, name)
        if kind == "e":
            values = ", ".join(_literal(label) for label in labels or [])
            create, catalog_kind = f"CREATE TYPE {written(full)} AS ENUM ({values})", "type"
        elif kind == "c":
            create, catalog_kind = f"CREATE TYPE {written(full)} AS ({fields})", "type"
        else:
            create = f"CREATE DOMAIN {written(full)} AS {base}"
            create += f" COLLATE {collate}" if collate else ""
            create += f" DEFAULT {default}" if default is not None else ""
            create += " NOT NULL" if not_null else ""
            for check in checks or []:
                create += f" CONSTRAINT {check}"
            catalog_kind = "domain"
        what = "DOMAIN" if kind == "d" else "TYPE"
        found.append(
            Thing(
                catalog_kind,
                full,
                TYPE,
                create,
                f"DROP {what} IF EXISTS {written(full)}",
                oid,
                frozenset(users.get(oid, set())),
            )
        )
    return found


def _sequences(
    conn: Connection, relations: dict[int, tuple[str, str]], users: dict[int, set[str]]
) -> tuple[dict[str, Owned], list[Thing]]:
    """Sequences owned by a column (serial, identity), and the others (created on their own)."""
    from sqlalchemy import text

    owned: dict[str, Owned] = {}
    loose: list[Thing] = []
    for row in conn.execute(text(SEQUENCES_SQL)):
        oid, schema, name, kind, start, step, low, high, cache, cycle, table, column, dep = row
        full = qualified(schema, name)
        parameters = (
            f"AS {kind} INCREMENT BY {step} MINVALUE {low} MAXVALUE {high} START WITH {start} "
            f"CACHE {cache}{' CYCLE' if cycle else ' NO CYCLE'}"
        )
        create = f"CREATE SEQUENCE {written(full)} {parameters}"
        if table is not None and table not in relations:
            continue  # a sequence of a table left out (the log table's)
        if table is not None:
            table_name = relations[table][0]
            default = step == 1 and low == 1 and start == 1 and cache == 1 and not cycle
            default = default and high == _MAX.get(kind, high)
            owned[f"{table_name}.{column}"] = Owned(
                full, table_name, column, dep == "i", create, parameters, default
            )
            continue
        loose.append(
            Thing(
                "sequence",
                full,
                SEQUENCE,
                create,
                f"DROP SEQUENCE IF EXISTS {written(full)}",
                oid,
                frozenset(users.get(oid, set())),
            )
        )
    return owned, loose


_MAX = {"smallint": 32767, "integer": 2147483647, "bigint": 9223372036854775807}


def _functions(
    conn: Connection, relations: dict[int, tuple[str, str]], users: dict[int, set[str]]
) -> list[Thing]:
    from sqlalchemy import text

    found = []
    for oid, schema, name, arguments, definition, on_rows in conn.execute(text(FUNCTIONS_SQL)):
        full = f"{qualified(schema, name)}({arguments})"
        signature = f"{written(qualified(schema, name))}({arguments})"
        found.append(
            Thing(
                "function",
                full,
                LATE_FUNCTION if on_rows else FUNCTION,
                _unqualified_header(definition.strip(), schema, name),
                f"DROP FUNCTION IF EXISTS {signature}",
                oid,
                frozenset(users.get(oid, set())),
            )
        )
    return found


def _unqualified_header(definition: str, schema: str, name: str) -> str:
    """pg_get_functiondef's text, its function named as revisions name objects (`written`):
    its first words are always `CREATE OR REPLACE FUNCTION|PROCEDURE schema.name(`."""
    for kind in ("FUNCTION", "PROCEDURE"):
        head = f"CREATE OR REPLACE {kind} {quote(qualified(schema, name))}("
        if definition.startswith(head):
            return (
                f"CREATE OR REPLACE {kind} {written(qualified(schema, name))}("
                + definition[len(head) :]
            )
    return definition


def _views(conn: Connection, relations: dict[int, tuple[str, str]]) -> list[Thing]:
    from sqlalchemy import text

    found = []
    for oid, schema, name, kind, definition, reads in conn.execute(text(VIEWS_SQL)):
        full = qualified(schema, name)
        materialized = kind == "m"
        what = "MATERIALIZED VIEW" if materialized else "VIEW"
        body = definition.strip().rstrip(";")
        found.append(
            Thing(
                "materialized view" if materialized else "view",
                full,
                VIEW,
                f"CREATE {what} {written(full)} AS\n{body}",
                f"DROP {what} IF EXISTS {written(full)}",
                oid,
                frozenset(relations[r][0] for r in reads or [] if r in relations),
            )
        )
    return found


def _triggers(conn: Connection, relations: dict[int, tuple[str, str]]) -> list[Thing]:
    from sqlalchemy import text

    found = []
    for oid, schema, table, name, definition, _function, rel in conn.execute(text(TRIGGERS_SQL)):
        if rel not in relations:
            continue
        full = qualified(schema, table)
        found.append(
            Thing(
                "trigger",
                f"{full}.{name}",
                TRIGGER,
                definition,
                f"DROP TRIGGER IF EXISTS {ident(name)} ON {written(full)}",
                oid,
                frozenset({full}),
            )
        )
    return found


def _comments(conn: Connection) -> list[Thing]:
    from sqlalchemy import text

    found = []
    for oid, schema, name, kind, column, description, table in conn.execute(text(COMMENTS_SQL)):
        full = qualified(schema, name)
        target = (
            f"COLUMN {written(full)}.{ident(column)}"
            if column
            else f"{_COMMENTED[kind]} {written(full)}"
        )
        found.append(
            Thing(
                "comment",
                f"{full}.{column}" if column else full,
                COMMENT,
                f"COMMENT ON {target} IS {_literal(description)}",
                "",
                oid,
                frozenset({table or full}),
            )
        )
    return found


def read_rows(conn: Connection, holdings: Holdings, tables: set[str]) -> None:
    """The rows of `tables` (schema.table) and where the sequences of those tables stand."""
    from sqlalchemy import text

    for name in sorted(tables):
        columns = conn.execute(text(COLUMNS_SQL), {"table": quote(name)}).all()
        names = tuple(c for c, _ in columns)
        if not names:
            continue
        select = ", ".join(f'"{c}"::text' for c in names)
        order = _row_order(holdings.tables.get(name), names)
        query = f"SELECT {select} FROM {quote(name)} ORDER BY {order}"
        values = [tuple(row) for row in conn.execute(text(query))]
        if values:
            holdings.rows[name] = Rows(names, tuple(values), any(i == "a" for _, i in columns))
    for owned in holdings.owned.values():
        if owned.table in tables:
            holdings.positions[owned.name] = _position(conn, owned.name)
    for thing in holdings.things:
        if thing.kind == "sequence" and thing.users & tables:
            holdings.positions[thing.name] = _position(conn, thing.name)


def _position(conn: Connection, sequence: str) -> tuple[int, bool]:
    """Where a sequence stands: (last value, whether it was called); (start, False) is where
    a new one stands, whatever its start."""
    from sqlalchemy import text

    row = conn.execute(
        text(
            f"SELECT last_value, is_called, (SELECT seqstart FROM pg_sequence "
            f"WHERE seqrelid = CAST(:name AS regclass)) FROM {quote(sequence)}"
        ),
        {"name": quote(sequence)},
    ).one()
    value, called, start = int(row[0]), bool(row[1]), int(row[2])
    return (value, True) if called else (start, False)


def _row_order(table: Table | None, names: tuple[str, ...]) -> str:
    """Rows by primary key (as a person reads reference data), else by every column."""
    keys = [c.name for c in table.primary_key.columns] if table is not None else []
    if keys and all(k in names for k in keys):
        return ", ".join(f'"{k}"' for k in keys)
    return ", ".join(str(i) for i in range(1, len(names) + 1))


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
