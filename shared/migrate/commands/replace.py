"""What `squash`, `adopt` and `baseline` share: they write a revision from what a database
holds (a shadow built from the history, or the database itself), prove it on a shadow
database, and only then keep it (Django's `replaces`, Flyway's `baseline`, both verified).

Each writes its files, reads the history again with them, proves it, and says done; on any
failure every file it wrote or moved is put back as it was (`Staged`).
"""

from __future__ import annotations

import shutil
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from shared.migrate.errors import ConfigError, MigrateError
from shared.migrate.history import revisionfile
from shared.migrate.history.graph import RevisionGraph, load_graph
from shared.migrate.manifest import Manifest

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from shared.migrate.schema.claims import Claims
    from shared.migrate.schema.discovery import Discovery
    from shared.migrate.schema.proof import Picture

ROWS_LIMIT = 10_000  # rows a revision carries at most: seed data, not a copy of a database


@dataclass(frozen=True)
class Written:
    """One revision a command wrote."""

    module: str
    path: Path
    revision: str
    depends_on: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()  # alias labels: replaced ids other modules depend on
    summary: tuple[str, ...] = ()  # "+ table x", "+ 3 rows of y"


def wrapped(text: str, width: int = 88) -> str:

    return "\n".join(textwrap.wrap(text, width))


def reloaded(manifest: Manifest, written: Path) -> RevisionGraph:
    try:
        return load_graph(manifest)
    except MigrateError as exc:
        raise MigrateError(
            f"{manifest.relative(written)} was written but the history cannot be read with it "
            f"({exc}); nothing was kept"
        ) from exc


# ---- files written or moved, put back on failure ------------------------------------------


@dataclass
class Staged:
    """What a command changed in the repository, to undo it when the command fails."""

    made: list[Path] = field(default_factory=list)  # files and directories, newest last
    moved: list[tuple[Path, Path]] = field(default_factory=list)  # (from, to)
    texts: list[tuple[Path, str | None]] = field(default_factory=list)  # (file, old text)

    def mkdir(self, path: Path) -> None:
        missing = [p for p in (path, *path.parents) if not p.exists()]
        if missing:
            path.mkdir(parents=True)
            self.made.append(missing[-1])  # the outermost: undone, it takes the rest along

    def created(self, path: Path) -> None:
        self.made.append(path)

    def move_revision(self, path: Path, folder: Path) -> None:
        """A revision file (and the catalog kept beside it) into `folder`."""
        for source in (path, revisionfile.expected_path(path)):
            if source.exists():
                destination = folder / source.name
                if destination.exists():
                    raise ConfigError(
                        f"{destination} exists already; move it away, then run the command again"
                    )
                shutil.move(source, destination)
                self.moved.append((source, destination))

    def copy(self, source: Path, destination: Path) -> None:
        shutil.copy2(source, destination)
        self.made.append(destination)

    def write_text(self, path: Path, text: str) -> None:
        self.texts.append((path, path.read_text(encoding="utf-8") if path.exists() else None))
        path.write_text(text, encoding="utf-8")

    def undo(self) -> None:
        for path, old in reversed(self.texts):
            if old is None:
                path.unlink(missing_ok=True)
            else:
                path.write_text(old, encoding="utf-8")
        for source, destination in reversed(self.moved):
            if destination.exists():
                shutil.move(destination, source)
        for path in reversed(self.made):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def discover_models(manifest: Manifest) -> Discovery:
    from shared.migrate.schema.discovery import discover

    return discover(manifest)


def refuse_unclaimed(unclaimed: list[str], where: str, command: str) -> None:
    if unclaimed:
        example = unclaimed[0].split(" ", 1)[1]
        raise ConfigError(
            f"{where} has {len(unclaimed)} object(s) no module's models claim: "
            f"{', '.join(unclaimed)}; settle each with --assign NAME=MODULE (for example "
            f"migrate {command} ... --assign {example}=MODULE); nothing is dropped"
        )


def refuse_many(picture: Picture, tables: set[str], where: str) -> None:
    count = sum(len(picture.rows[t].values) for t in tables if t in picture.rows)
    if count > ROWS_LIMIT:
        raise ConfigError(
            f"{where} leaves {count} rows in its tables on an empty database, more than a "
            f"revision should carry ({ROWS_LIMIT}); move that data out of the migrations first"
        )


def write_baselines(
    manifest: Manifest,
    staged: Staged,
    source: Picture,
    claimed: Claims,
    needs: dict[str, set[str]],
    *,
    replaces: tuple[str, ...],
    note: str,
    message: str,
    heads: dict[str, str] | None = None,
    rows: bool = True,
) -> list[Written]:
    """One baseline per module that owns objects, dependencies first, each with the
    depends_on its objects need (the other modules' baselines, or their heads)."""
    from shared.migrate.schema import proof, replica

    written: list[Written] = []
    revision_of = dict(heads or {})
    for module in manifest.ordered():
        tables, things = claimed.of(module.name)
        if not tables and not things:
            continue
        depends = tuple(revision_of[m] for m in sorted(minimal(manifest, needs[module.name])))
        keys = {("table", t) for t in tables} | things
        carried = {t for t in tables if t in source.rows} if rows else set()
        text = replica.body(source.holdings, keys, rows=carried)
        file = revisionfile.write(
            manifest,
            module,
            message.format(module=module.name),
            head=None,
            depends_on=depends,
            upgrades=text.upgrade,
            downgrades=text.downgrade,
            imports=text.imports,
            replaces=replaces,
            note=note,
        )
        staged.created(file.path)
        expected = proof.objects_of(source, tables, things)
        staged.created(revisionfile.write_expected(file.path, expected.rows()))
        revision_of[module.name] = file.revision
        written.append(Written(module.name, file.path, file.revision, depends, (), text.summary))
    return written


def minimal(manifest: Manifest, needed: set[str]) -> set[str]:
    """The modules of `needed` that no other of them already depends on."""
    return {
        m
        for m in needed
        if not any(m in {d.name for d in manifest.dependency_closure(o)} for o in needed if o != m)
    }


def model_drift(
    conn: Connection, graph: RevisionGraph, discovery: Discovery, claimed: Claims
) -> list[tuple[str, str]]:
    """How each module's models differ from what its baseline builds (the database's truth)."""
    from shared.migrate.schema.autogen import compare, describe
    from shared.migrate.schema.claims import catalog_name

    models = set(discovery.owners)
    named = {catalog_name(t) for t in models}
    found = [  # a table --assign gave a module: no model defines it (yet)
        (module, f"- table {table.removeprefix('public.')} (no model: it was assigned)")
        for table, module in sorted(claimed.tables.items())
        if table not in named
    ]
    schemas = discovery.schemas() | {m.schema for m in graph.manifest.modules if m.schema}
    script = compare(conn, discovery, models, schemas)
    if script is None or script.upgrade_ops is None:
        return sorted(found)
    for op in script.upgrade_ops.ops:
        table = getattr(op, "table_name", None)
        schema = getattr(op, "schema", None)
        key = f"{schema}.{table}" if schema and schema != "public" else str(table)
        holder = type(script.upgrade_ops)(ops=[op])
        found += [(discovery.owners.get(key, "-"), line) for line in describe(holder)]
    return sorted(found)
