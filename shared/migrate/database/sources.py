"""Fleet sources: the databases (`--databases`) or tenant schemas (`--schemas`) a command runs
on, read from a file, an environment variable (`env:NAME`) or a query (`sql:QUERY`, run against
the database in DATABASE_URL: a tenant registry).

Each entry is a Member: the URLs of one database (and, for a manifest that puts modules in
databases of their own, theirs), or one tenant schema. An entry that cannot be used (a URL
that does not parse, an unknown variable, a bad schema name) is a Member with an `error`: the
fleet reports it as failed and runs the others. Nothing here ever shows a URL.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from shared.db.url import DatabaseURL, InvalidDatabaseURL
from shared.migrate.database.target import tenant_schema_problem
from shared.migrate.errors import ConfigError, DatabaseError, shown
from shared.migrate.manifest import Manifest

ASSIGNMENT = re.compile(r"([A-Z_][A-Z0-9_]*)=(.*)\Z", re.DOTALL)


@dataclass(frozen=True)
class Member:
    """One entry of a fleet: where it came from, its databases by variable, its tenant schema."""

    origin: str  # "tenants.txt line 3", "$TENANT_URLS line 1 item 2", "sql: row 3"
    urls: tuple[tuple[str, DatabaseURL], ...] = ()  # (variable, URL); the shared one first
    schema: str | None = None
    error: str | None = None  # why it cannot run (it is reported as failed)

    @property
    def name(self) -> str:
        """host:port/database (with the tenant schema): how output names it, never a URL."""
        where = self.urls[0][1].display() if self.urls else self.origin
        return f"{where} schema {self.schema}" if self.schema else where

    @property
    def key(self) -> tuple[str, str | None]:
        """Two entries with one key are one database (or tenant): it runs once."""
        return (self.urls[0][1].display() if self.urls else self.origin, self.schema)

    def databases(self) -> dict[str, str]:
        """Variable -> host:port/database, for JSON."""
        return {env: url.display() for env, url in self.urls}

    def environment(self) -> dict[str, str]:
        """The variables a worker gets, with the passwords (its environment, never its argv)."""
        return {env: url.secret_string() for env, url in self.urls}


def variables(manifest: Manifest) -> list[str]:
    """The variables naming the manifest's databases: the shared one first."""
    names = [manifest.settings.database_url_env]
    names += [manifest.database_env(m) for m in manifest.modules]
    return list(dict.fromkeys(names))


def read_text(source: str, flag: str) -> tuple[str, list[str]]:
    """A file's or a variable's lines, and how to name where each came from."""
    if source.startswith("env:"):
        name = source[4:]
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ConfigError(f"{flag} env:NAME needs a variable name, e.g. env:TENANT_URLS")
        value = os.environ.get(name)
        if value is None:
            raise ConfigError(f"{flag} env:{name}: ${name} is not set; export it, one URL a line")
        return f"${name}", value.splitlines()
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise ConfigError(
            f"{flag}: cannot read '{shown(source)}' ({why}); give a file with one URL a line, "
            "env:NAME or sql:QUERY"
        ) from None
    return path.name, text.splitlines()


def _entries(lines: list[str]) -> Iterator[tuple[int, list[str]]]:
    """Each line's number and words, up to a word that starts a comment (`#`, also after an
    entry: a `#` inside a URL is part of it); blank and comment lines left out."""
    for number, line in enumerate(lines, 1):
        tokens = line.split()
        comment = next((i for i, token in enumerate(tokens) if token.startswith("#")), None)
        if tokens[:comment]:
            yield number, tokens[:comment]


def database_members(manifest: Manifest, where: str, lines: list[str]) -> list[Member]:
    """`--databases` entries from lines: each bare URL a database; a line of NAME=URL (and at
    most one bare URL, the shared database's) one member whose modules live in several."""
    known = variables(manifest)
    members = []
    for number, tokens in _entries(lines):
        origin = f"{where} line {number}"
        if not any(ASSIGNMENT.match(t) for t in tokens):
            for item, token in enumerate(tokens, 1):
                at = origin if len(tokens) == 1 else f"{origin} item {item}"
                members.append(_member(at, [(known[0], token)], known))
            continue
        pairs = []
        for token in tokens:
            assigned = ASSIGNMENT.match(token)
            pairs.append((assigned.group(1), assigned.group(2)) if assigned else (known[0], token))
        members.append(_member(origin, pairs, known))
    return members


def row_members(manifest: Manifest, rows: list[dict[str, object]]) -> list[Member]:
    """`--databases sql:QUERY` entries: one column is the shared database's URL; several are
    named by the variables they fill (`AS "BILLING_DATABASE_URL"`, any case)."""
    known = variables(manifest)
    members = []
    for number, row in enumerate(rows, 1):
        if len(row) == 1:
            pairs = [(known[0], next(iter(row.values())))]
        else:
            pairs = [(str(column).upper(), value) for column, value in row.items()]
        members.append(_member(f"sql: row {number}", pairs, known))
    return members


def _member(origin: str, pairs: list[tuple[str, object]], known: list[str]) -> Member:
    urls: dict[str, DatabaseURL] = {}
    for env, value in pairs:
        if env not in known:
            return Member(
                origin,
                error=f"unknown variable {shown(env)}; this manifest's databases are "
                + ", ".join(known),
            )
        if env in urls:
            return Member(origin, error=f"{env} is given twice; give it once")
        if not isinstance(value, str) or not value.strip():
            return Member(origin, error=f"no URL for {env}")
        try:
            urls[env] = DatabaseURL.parse(value.strip(), origin)
        except InvalidDatabaseURL as exc:
            return Member(origin, error=str(exc))
    if known[0] not in urls:
        return Member(origin, error=f"no URL for {known[0]}, the shared database")
    return Member(origin, tuple(sorted(urls.items(), key=lambda kv: known.index(kv[0]))))


def schema_members(
    manifest: Manifest, where: str, lines: list[str], urls: tuple[tuple[str, DatabaseURL], ...]
) -> list[Member]:
    """`--schemas` entries from lines: tenant schema names, whitespace or lines apart, all in
    the databases `urls`."""
    members = []
    for number, tokens in _entries(lines):
        for item, token in enumerate(tokens, 1):
            at = f"{where} line {number}" + (f" item {item}" if len(tokens) > 1 else "")
            members.append(_schema(manifest, at, token, urls))
    return members


def schema_rows(
    manifest: Manifest, rows: list[dict[str, object]], urls: tuple[tuple[str, DatabaseURL], ...]
) -> list[Member]:
    """`--schemas sql:QUERY` entries: the first column of each row."""
    return [
        _schema(manifest, f"sql: row {n}", next(iter(row.values()), None), urls)
        for n, row in enumerate(rows, 1)
    ]


def _schema(
    manifest: Manifest, origin: str, value: object, urls: tuple[tuple[str, DatabaseURL], ...]
) -> Member:
    if value is None:
        return Member(origin, error="no schema name")
    problem = tenant_schema_problem(value, manifest)
    return Member(origin, error=problem) if problem else Member(origin, urls, schema=str(value))


def duplicates(members: list[Member]) -> dict[int, Member]:
    """Entry index -> the earlier entry it repeats (it runs once, under the first)."""
    first: dict[tuple[str, str | None], Member] = {}
    repeated = {}
    for index, member in enumerate(members):
        if member.error is not None:
            continue
        if member.key in first:
            repeated[index] = first[member.key]
        else:
            first[member.key] = member
    return repeated


async def query(url: DatabaseURL, sql: str, flag: str) -> list[dict[str, object]]:
    """The rows of a `sql:` source, read on the registry database (`url`)."""
    import asyncpg

    from shared.db.connect import connect
    from shared.migrate.database.translate import database_errors, server_message

    if not sql.strip():
        raise ConfigError(f"{flag} sql:QUERY needs a query, e.g. sql:SELECT url FROM tenants")
    with database_errors(url):
        conn = await connect(url, application_name="migrate fleet source")
    try:
        with database_errors(url, connected=True):
            try:  # a registry is read, never written: DML in the query fails
                async with conn.transaction(readonly=True):
                    rows = await conn.fetch(sql)
            except asyncpg.PostgresError as exc:
                raise DatabaseError(
                    f"{flag} sql: the query failed on {url.display()} ({url.source}): "
                    f"{server_message(exc)}; fix the query"
                ) from exc
    finally:
        await conn.close(timeout=5)
    return [dict(row.items()) for row in rows]
