"""A snapshot of a database's schema from the catalog: to prove a downgrade leaves no trace, a
squash or a baseline builds what it replaces, and a database is what a move expects.

Objects are compared by name and definition (never by oid), so a table dropped and created
again compares equal. The version and log tables are left out: their rows change by design.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

_SYSTEM = "n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'"

SNAPSHOT_SQL = f"""
SELECT 'schema', n.nspname, '' FROM pg_namespace n WHERE {_SYSTEM}
UNION ALL
SELECT CASE c.relkind WHEN 'S' THEN 'sequence' WHEN 'v' THEN 'view'
       WHEN 'm' THEN 'materialized view' WHEN 'f' THEN 'foreign table' ELSE 'table' END,
       n.nspname || '.' || c.relname,
       CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid)
            WHEN c.relkind IN ('r', 'p') THEN concat_ws(' ',
              CASE WHEN c.relpersistence = 'u' THEN 'unlogged' END,
              CASE WHEN c.relkind = 'p' THEN 'partitioned by ' || pg_get_partkeydef(c.oid) END,
              CASE WHEN c.relispartition THEN 'partition of ' || (
                SELECT pn.nspname || '.' || pc.relname FROM pg_inherits i
                JOIN pg_class pc ON pc.oid = i.inhparent
                JOIN pg_namespace pn ON pn.oid = pc.relnamespace WHERE i.inhrelid = c.oid)
                || ' ' || pg_get_expr(c.relpartbound, c.oid) END)
            WHEN c.relkind = 'S' THEN (
              SELECT format_type(s.seqtypid, NULL) || ' start ' || s.seqstart || ' increment '
                     || s.seqincrement || ' min ' || s.seqmin || ' max ' || s.seqmax || ' cache '
                     || s.seqcache || CASE WHEN s.seqcycle THEN ' cycle' ELSE '' END
              FROM pg_sequence s WHERE s.seqrelid = c.oid)
              || coalesce((SELECT ' owned by ' || rn.nspname || '.' || r.relname || '.' || a.attname
                           FROM pg_depend o JOIN pg_class r ON r.oid = o.refobjid
                           JOIN pg_namespace rn ON rn.oid = r.relnamespace
                           JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum = o.refobjsubid
                           WHERE o.classid = 'pg_class'::regclass AND o.objid = c.oid
                             AND o.refclassid = 'pg_class'::regclass AND o.deptype IN ('a', 'i')
                           LIMIT 1), '')
            ELSE '' END
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND {_SYSTEM}
UNION ALL
SELECT 'column', n.nspname || '.' || c.relname || '.' || a.attname,
       format_type(a.atttypid, a.atttypmod)
       || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
       || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
       || CASE a.attidentity WHEN '' THEN '' ELSE ' identity ' || a.attidentity::text END
       || CASE a.attgenerated WHEN '' THEN '' ELSE ' generated' END
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND {_SYSTEM}
UNION ALL
SELECT 'column order', n.nspname || '.' || c.relname, string_agg(a.attname, ', ' ORDER BY a.attnum)
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND {_SYSTEM}
GROUP BY n.nspname, c.relname
UNION ALL
SELECT 'comment', n.nspname || '.' || c.relname || coalesce('.' || a.attname, ''), d.description
FROM pg_description d JOIN pg_class c ON d.classoid = 'pg_class'::regclass AND d.objoid = c.oid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid AND d.objsubid > 0
WHERE {_SYSTEM}
UNION ALL
SELECT 'constraint', n.nspname || '.' || coalesce(c.relname, t.typname) || '.' || k.conname,
       pg_get_constraintdef(k.oid)
FROM pg_constraint k JOIN pg_namespace n ON n.oid = k.connamespace
LEFT JOIN pg_class c ON c.oid = k.conrelid LEFT JOIN pg_type t ON t.oid = k.contypid
WHERE {_SYSTEM}
UNION ALL
SELECT 'index', n.nspname || '.' || i.relname, pg_get_indexdef(x.indexrelid)
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_namespace n ON n.oid = i.relnamespace WHERE {_SYSTEM}
UNION ALL
SELECT CASE t.typtype WHEN 'e' THEN 'type' WHEN 'd' THEN 'domain' WHEN 'r' THEN 'type'
       WHEN 'c' THEN 'type' ELSE 'type' END,
       n.nspname || '.' || t.typname,
       CASE t.typtype
         WHEN 'e' THEN 'enum (' || (SELECT string_agg(quote_literal(e.enumlabel), ', '
                      ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid) || ')'
         WHEN 'd' THEN format_type(t.typbasetype, t.typtypmod)
                      || CASE WHEN t.typnotnull THEN ' not null' ELSE '' END
                      || coalesce(' default ' || t.typdefault, '')
         ELSE t.typtype::text END
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE t.typtype IN ('e', 'd', 'r', 'c') AND {_SYSTEM}
  AND (t.typtype <> 'c' OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
UNION ALL
SELECT 'function', n.nspname || '.' || p.proname || '('
       || pg_get_function_identity_arguments(p.oid) || ')',
       CASE WHEN p.prokind IN ('f', 'p') THEN md5(pg_get_functiondef(p.oid))
            ELSE md5(coalesce(p.prosrc, '')) END
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE {_SYSTEM} AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid
  AND d.deptype = 'e')
UNION ALL
SELECT 'trigger', n.nspname || '.' || c.relname || '.' || g.tgname, pg_get_triggerdef(g.oid)
FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace WHERE NOT g.tgisinternal AND {_SYSTEM}
UNION ALL
SELECT 'extension', extname, '' FROM pg_extension WHERE extname <> 'plpgsql'
"""


@dataclass(frozen=True)
class Catalog:
    objects: frozenset[tuple[str, str, str]]

    def difference(self, before: Catalog) -> list[str]:
        """What changed since `before`, one line each: `+` new, `-` gone, `~` changed."""
        old = {(kind, name): detail for kind, name, detail in before.objects}
        new = {(kind, name): detail for kind, name, detail in self.objects}
        # a table that came or went brings its columns, constraints, indexes and triggers:
        # name the table, not each of them
        whole = {name for kind, name in old.keys() ^ new.keys() if kind in _RELATIONS}
        lines = []
        for key in sorted(old.keys() | new.keys(), key=lambda k: (k[1], k[0])):
            kind, name = key
            if key in old and key in new:
                if old[key] != new[key] and not _same_order(kind, old[key], new[key]):
                    lines.append(f"~ {kind} {_short(name)} ({old[key]} -> {new[key]})")
                continue
            if kind not in _RELATIONS and _part_of(kind, name, new.get(key, old.get(key)), whole):
                continue
            lines.append(f"{'+' if key not in old else '-'} {kind} {_short(name)}")
        return lines

    def around(self, expected: Catalog) -> Catalog:
        """This catalog's objects that `expected` names, or that belong to a relation it
        names (a column, index, constraint, trigger or comment on one of its tables): what to
        hold against `expected` when the rest of the database is none of its business."""
        names = {(kind, name) for kind, name, _ in expected.objects}
        relations = {name for kind, name in names if kind in _RELATIONS}
        return Catalog(
            frozenset(
                (kind, name, detail)
                for kind, name, detail in self.objects
                if (kind, name) in names or _part_of(kind, name, detail, relations)
            )
        )

    def rows(self) -> list[list[str]]:
        """The objects as JSON-able rows, sorted."""
        return [list(row) for row in sorted(self.objects)]


def snapshot(conn: Connection, ignored: set[str]) -> Catalog:
    """Every user-visible schema object; `ignored` names tables (schema.table) to leave out,
    with their columns, constraints, indexes and sequences."""
    from sqlalchemy import text

    return kept(conn.execute(text(SNAPSHOT_SQL)).all(), ignored)


def kept(rows: Iterable[Sequence[Any]], ignored: set[str]) -> Catalog:
    """The snapshot's rows, without the `ignored` tables and what belongs to them."""
    return Catalog(
        frozenset(
            (str(kind), str(name), str(detail))
            for kind, name, detail in rows
            if not any(
                name == t or name.startswith(t + ".") or name.startswith(t + "_") for t in ignored
            )
        )
    )


_RELATIONS = {"table", "view", "materialized view", "foreign table", "sequence"}


def _part_of(kind: str, name: str, detail: str | None, tables: set[str]) -> bool:
    """Whether an object belongs to one of `tables` (qualified names)."""
    if kind in ("column", "constraint", "trigger"):
        return name.rpartition(".")[0] in tables
    if kind in ("column order", "comment"):
        return name in tables or name.rpartition(".")[0] in tables
    if kind == "index" and detail:
        return any(f" ON {t} " in detail or f" ON ONLY {t} " in detail for t in tables)
    return False


def _same_order(kind: str, old: str, new: str) -> bool:
    """A column order that differs only by columns added or dropped (each named on its own
    line) is no news: only the order of the columns both have is."""
    if kind != "column order":
        return False
    before, after = old.split(", "), new.split(", ")
    return [c for c in before if c in after] == [c for c in after if c in before]


def _short(name: str) -> str:
    return name.removeprefix("public.")
