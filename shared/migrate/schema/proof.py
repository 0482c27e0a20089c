"""Proving a revision that replaces others (squash, adopt) or stands for a database's schema
(baseline): both sides built on shadow databases, their catalogs and rows compared.

What the comparison covers is the catalog snapshot (database/catalog.py): schemas, tables and
their columns (type, not null, default, identity, generated) in order, comments, constraints,
indexes, sequences with their parameters and owner, enum and domain types, functions (their
whole definition), triggers, views, extensions; and the rows of every table, with where each
sequence stands. It does not cover privileges, owners, row-level security policies, storage
parameters, statistics or collations of columns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from shared.migrate.database.catalog import Catalog, snapshot
from shared.migrate.database.executor import RevisionFailed
from shared.migrate.database.holdings import Holdings, Rows, read_holdings, read_rows
from shared.migrate.errors import MigrateError, shown
from shared.migrate.history.graph import RevisionGraph
from shared.migrate.schema.build import Built, bookkeeping, build, on_shadow
from shared.migrate.schema.checks import Finding

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from shared.db.url import DatabaseURL

T = TypeVar("T")
SHOWN = 10  # differences named in a message; the rest are counted
PARTS = {"column", "constraint", "trigger", "column order", "comment", "index"}
RELATIONS = {"table", "view", "materialized view", "foreign table", "sequence"}


class ProofFailed(MigrateError):
    """What was written does not build what it stands for; nothing of it is kept."""


@dataclass(frozen=True)
class Picture:
    """A database as a proof compares it: its catalog and what it holds (rows included)."""

    catalog: Catalog
    holdings: Holdings

    @property
    def rows(self) -> dict[str, Rows]:
        return self.holdings.rows


def picture(conn: Connection, graph: RevisionGraph) -> Picture:
    """The catalog, the objects and every table's rows of the database on `conn`."""
    ignored = bookkeeping(graph)
    holdings = read_holdings(conn, ignored)
    read_rows(conn, holdings, set(holdings.tables))
    return Picture(snapshot(conn, ignored), holdings)


# ---- building -------------------------------------------------------------------------------


async def below_and_at(
    server: DatabaseURL, graph: RevisionGraph, below: set[str], top: str, command: str
) -> tuple[Picture, Picture]:
    """A shadow built up to `below` (what a range builds on), pictured; then on up to `top`,
    pictured again."""

    def then(conn: Connection, built: Built) -> tuple[Picture, Picture]:
        first = picture(conn, graph)
        build(conn, graph, {top}, applied=graph.ancestors(below))
        return first, picture(conn, graph)

    return await on_shadow(server, graph, below, command, then)


async def row_writers(
    server: DatabaseURL,
    graph: RevisionGraph,
    below: set[str],
    revisions: list[str],
    table: str,
    command: str,
) -> list[str]:
    """Which of `revisions` (in order, on a shadow built up to `below`) change the rows of
    `table`: to name them when a squash cannot carry what they do."""
    from sqlalchemy import text

    from shared.migrate.database.holdings import quote

    digest = text(
        "SELECT CASE WHEN to_regclass(:t) IS NULL THEN NULL ELSE (SELECT md5(coalesce("
        f"string_agg(r::text, ',' ORDER BY r::text), '')) FROM {quote(table)} r) END"
    )

    def then(conn: Connection, built: Built) -> list[str]:
        found: list[str] = []
        applied = graph.ancestors(below)
        last = conn.execute(digest, {"t": quote(table)}).scalar()
        for revision in revisions:
            build(conn, graph, {revision}, applied=applied)
            applied |= graph.ancestors([revision])
            now = conn.execute(digest, {"t": quote(table)}).scalar()
            if now != last:
                found.append(revision)
            last = now
        return found

    return await on_shadow(server, graph, below, command, then)


async def built_at(
    server: DatabaseURL, graph: RevisionGraph, targets: set[str], command: str
) -> Picture:
    """A shadow built up to `targets` from empty, pictured."""
    return await on_shadow(server, graph, targets, command, lambda conn, _: picture(conn, graph))


async def prove(
    server: DatabaseURL,
    graph: RevisionGraph,
    written: set[str],
    command: str,
    check: Callable[[Connection, Picture], T],
) -> tuple[Picture, T]:
    """Build the `written` revisions from empty on a shadow (what they need below them
    first), each walked up, down and up again; then `check` the picture (and the database)."""

    def then(conn: Connection, built: Built) -> tuple[Picture, T]:
        for finding in built.findings:
            raise ProofFailed(f"{finding.detail}; nothing was written")
        seen = picture(conn, graph)
        return seen, check(conn, seen)

    try:
        return await on_shadow(server, graph, written, command, then, stairway=written)
    except RevisionFailed as exc:
        raise ProofFailed(
            f"{exc.where} fails on the shadow database: {exc.reason}; nothing was written "
            "(report it: the writer missed something)"
        ) from exc


# ---- comparing ------------------------------------------------------------------------------


def differences(got: Picture, wanted: Picture, tables: Iterable[str] | None = None) -> list[str]:
    """What `got` has otherwise than `wanted`: catalog objects (`+` only in `got`, `-` only in
    `wanted`, `~` defined otherwise), then rows and sequences of `tables` (default: all)."""
    found = got.catalog.difference(wanted.catalog)
    names = set(got.rows) | set(wanted.rows) if tables is None else set(tables)
    for table in sorted(names):
        mine, theirs = got.rows.get(table), wanted.rows.get(table)
        if _values(mine) != _values(theirs):
            found.append(f"~ rows of {_short(table)} ({_count(theirs)} -> {_count(mine)})")
    positions = set(got.holdings.positions) | set(wanted.holdings.positions)
    for sequence in sorted(positions):
        mine_at = got.holdings.positions.get(sequence)
        theirs_at = wanted.holdings.positions.get(sequence)
        if mine_at is not None and theirs_at is not None and mine_at != theirs_at:
            found.append(f"~ sequence {_short(sequence)} stands at {theirs_at[0]} -> {mine_at[0]}")
    return found


def listed(lines: list[str]) -> str:
    """Differences for a one-line message."""
    more = f" and {len(lines) - SHOWN} more" if len(lines) > SHOWN else ""
    return "; ".join(shown(line, 200) for line in lines[:SHOWN]) + more


def objects_of(picture: Picture, tables: set[str], things: set[tuple[str, str]]) -> Catalog:
    """The catalog objects of `tables` (their columns, constraints, indexes, triggers,
    comments and owned sequences) and of `things` (keys): what a revision that creates them
    builds, and what a move onto it checks."""
    owned = {o.name for o in picture.holdings.owned.values() if o.table in tables}
    chosen = {
        (kind, name)
        for kind, name, _ in picture.catalog.objects
        if (kind, name) in things
        or (kind == "table" and name in tables)
        or (kind == "sequence" and name in owned)
    }
    seed = Catalog(frozenset(o for o in picture.catalog.objects if (o[0], o[1]) in chosen))
    return picture.catalog.around(seed)


def _values(rows: Rows | None) -> tuple[tuple[str, ...], list[tuple[str | None, ...]]] | None:
    if rows is None:
        return None
    return rows.columns, sorted(rows.values, key=lambda r: tuple((v is None, v or "") for v in r))


def _count(rows: Rows | None) -> str:
    n = len(rows.values) if rows is not None else 0
    return f"{n} row{'s' if n != 1 else ''}"


def _short(name: str) -> str:
    return name.removeprefix("public.")


def part_relation(kind: str, name: str, detail: str) -> str | None:
    """The relation (schema.name) a catalog object is a part of, if it is one."""
    if kind in ("column", "constraint", "trigger"):
        return name.rpartition(".")[0]
    if kind == "column order":
        return name
    if kind == "comment":  # on a relation (schema.name) or on a column of one
        return name.rpartition(".")[0] if name.count(".") >= 2 else name
    if kind == "index":
        marker = " ON ONLY " if " ON ONLY " in detail else " ON "
        return detail.partition(marker)[2].split(" ")[0] or None
    return None


# ---- check: a revision that builds otherwise than its kept catalog -----------------------


def kept_catalogs(graph: RevisionGraph) -> dict[str, Catalog]:
    """Live revisions with a catalog kept beside them (squash, adopt, baseline) -> it."""
    from shared.migrate.history.revisionfile import read_expected

    found: dict[str, Catalog] = {}
    for rev in graph.revisions.values():
        if rev.replaced:
            continue
        rows = read_expected(rev.path)
        if rows is not None:
            found[rev.revision] = Catalog(frozenset(rows))
    return found


def kept_findings(
    graph: RevisionGraph, kept: dict[str, Catalog], now: Picture, old: Picture | None
) -> list[Finding]:
    """`replaces` findings: a revision whose build (`now`, every kept revision built from
    empty), or the build of what it replaces (`old`), differs from its kept catalog."""
    from shared.migrate.history.revisionfile import expected_path

    found: list[Finding] = []
    for name, expected in sorted(kept.items()):
        info = graph.revisions[name]
        where = f"revision {name} ({graph.relative(info.path)})"
        kept_name = expected_path(info.path).name
        lines = now.catalog.around(expected).difference(expected)
        if lines:
            found.append(
                Finding(
                    info.module,
                    "replaces",
                    f"{where} builds otherwise than the catalog kept beside it ({kept_name}): "
                    f"{listed(lines)}; restore the file, or write it again (it was proved "
                    "against that catalog)",
                )
            )
        if old is None or not any(t in graph.revisions for t in info.replaces):
            continue
        lines = old.catalog.around(expected).difference(expected)
        if lines:
            found.append(
                Finding(
                    info.module,
                    "replaces",
                    f"{where}: the revisions it replaces ({', '.join(info.replaces)} and what "
                    f"they build on) build otherwise than the catalog kept beside it "
                    f"({kept_name}): {listed(lines)}; a replaced file was edited: restore it",
                )
            )
    return found
