"""`migrate adopt --from PATH`: a single-application Alembic history into this repository's
modules: one baseline per module, written from the schema the old history builds on a shadow
database, together replacing its head, proved there; the old files are copied to the adopted
history's folder and the manifest's `adopted:` key written."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shared.migrate.commands.replace import (
    Staged,
    Written,
    discover_models,
    model_drift,
    refuse_many,
    refuse_unclaimed,
    reloaded,
    wrapped,
    write_baselines,
)
from shared.migrate.database.session import run_async
from shared.migrate.database.target import Target
from shared.migrate.errors import ConfigError, shown
from shared.migrate.history.graph import RevisionGraph, load_graph
from shared.migrate.manifest import Manifest

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from shared.migrate.schema.proof import Picture


@dataclass(frozen=True)
class Adopted:
    baselines: list[Written]
    name: str  # the adopted history's name (how its revisions are logged)
    folder: Path  # where its files are kept
    head: str  # its head, which the baselines replace together
    count: int  # its revisions
    drift: list[tuple[str, str]]  # (module, how its models differ from the old head)
    notes: list[str]  # how objects found their module
    objects: int
    rows: int


ADOPTED_FOLDER = "adopted"


def adopt(
    target: Target,
    source: str,
    assign: list[str] | None = None,
    name: str = "legacy",
    shadow_url: str | None = None,
) -> Adopted:
    """`migrate adopt --from PATH`: a single-application Alembic history into this repository's
    modules, one baseline per module, together replacing its head; proved on a shadow."""
    from shared.migrate.schema import claims, proof

    manifest = target.manifest
    if manifest.adopted is not None:
        raise ConfigError(
            f"{manifest.path.name} has adopted a history already ('{manifest.adopted.name}', "
            f"{manifest.relative(manifest.adopted.versions)}); a repository adopts one"
        )
    _check_name(manifest, name)
    assigned = claims.parse_assignments(manifest, assign or [])
    old = _old_versions(Path(source))
    graph = load_graph(manifest)
    started = [m.name for m in manifest.modules if graph.members.get(m.name)]
    server = target.shadow_server(shadow_url)
    folder = manifest.root / ADOPTED_FOLDER / name
    staged = Staged()
    try:
        if folder.exists():
            raise ConfigError(
                f"{manifest.relative(folder)} exists already; remove it, or adopt under "
                "another --name"
            )
        staged.mkdir(folder)
        for path in old:
            staged.copy(path, folder / path.name)
        history = _history_of(manifest, folder, name, Path(source))
        head = _one_head(history, name, Path(source))
        before = run_async(lambda: proof.built_at(server, history, {head}, "adopt"))
        discovery = discover_models(manifest)
        models = {claims.catalog_name(t): m for t, m in discovery.owners.items()}
        claimed = claims.claim(manifest, before.holdings, models, assigned, what="the old head")
        refuse_unclaimed(claimed.unclaimed, "the old head", "adopt")
        busy = sorted(set(claimed.modules()) & set(started))
        if busy:
            raise ConfigError(
                f"module '{busy[0]}' has revisions already; adopt writes each module's first "
                "revision (adopt into modules that have none)"
            )
        needs = claims.dependencies(manifest, before.holdings, claimed)
        refuse_many(before, set(claimed.tables), "the old history")
        written = write_baselines(
            manifest,
            staged,
            before,
            claimed,
            needs,
            replaces=(head,),
            note=_adopt_note(manifest, folder, len(history.revisions), head),
            message="{module} baseline, adopted from " + name,
        )
        staged.write_text(manifest.path, _with_adopted(manifest, name, folder))
        fresh = reloaded(load_manifest_again(manifest), written[0].path)

        def check(conn: Connection, seen: Picture) -> list[tuple[str, str]]:
            found = proof.differences(seen, before)
            if found:
                raise proof.ProofFailed(
                    f"the baselines do not build what the old history builds: "
                    f"{proof.listed(found)}; nothing was written (report it: the writer "
                    "missed something)"
                )
            return model_drift(conn, fresh, discovery, claimed)

        seen, drift = run_async(
            lambda: proof.prove(server, fresh, {w.revision for w in written}, "adopt", check)
        )
    except BaseException:
        staged.undo()
        raise
    rows = sum(len(r.values) for r in seen.rows.values())
    return Adopted(
        written,
        name,
        folder,
        head,
        len(history.revisions),
        drift,
        claimed.notes,
        len(seen.catalog.objects),
        rows,
    )


def _check_name(manifest: Manifest, name: str) -> None:
    from shared.migrate.manifest import NAME_PATTERN

    if not NAME_PATTERN.match(name):
        raise ConfigError(f"--name '{shown(name)}' must match [a-z][a-z0-9_]*")
    if name in manifest.names or name in {m.branch for m in manifest.modules}:
        raise ConfigError(f"--name '{name}' is a module's name or branch; pick another")


def _old_versions(given: Path) -> list[Path]:
    """The revision files of the single-application project at `given`: its alembic.ini (its
    version_locations, else script_location's versions/), or a versions directory."""
    import configparser

    path = given if given.is_absolute() else Path.cwd() / given
    if path.is_dir() and (path / "alembic.ini").is_file():
        path = path / "alembic.ini"
    if path.is_file():
        parser = configparser.ConfigParser(defaults={"here": str(path.parent)})
        try:
            parser.read(path, encoding="utf-8")
            location = parser.get("alembic", "script_location", fallback="")
            raw = parser.get("alembic", "version_locations", fallback="")
        except (configparser.Error, UnicodeDecodeError) as exc:
            raise ConfigError(f"--from {given}: cannot be read as an alembic.ini ({exc})") from None
        separator = parser.get("alembic", "path_separator", fallback="")
        parts = raw.splitlines() if separator == "newline" or "\n" in raw.strip() else raw.split()
        folders = [Path(p.strip()) for p in parts if p.strip()]
        if not folders and location:
            folders = [Path(location) / "versions"]
        folders = [f if f.is_absolute() else path.parent / f for f in folders]
    elif path.is_dir():
        folders = [path / "versions"] if (path / "env.py").is_file() else [path]
    else:
        raise ConfigError(
            f"--from {given}: no such file or directory; give the old project's alembic.ini "
            "or its versions directory"
        )
    files: list[Path] = []
    for folder in folders:
        if not folder.is_dir():
            raise ConfigError(f"--from {given}: its versions directory {folder} does not exist")
        files += sorted(
            p for p in folder.glob("*.py") if p.name != "__init__.py" and not p.name.startswith(".")
        )
    if not files:
        raise ConfigError(f"--from {given}: no revision files found (in {folders[0]})")
    return files


def _history_of(manifest: Manifest, folder: Path, name: str, source: Path) -> RevisionGraph:
    """The old history as a graph of one module, `name`, read from its copy in `folder`."""
    from dataclasses import replace

    from shared.migrate.history import index
    from shared.migrate.manifest import Module

    module = Module(name, name, folder, "", folder, ())
    alone = replace(manifest, modules=(module,), adopted=None)
    try:
        return RevisionGraph(alone, index.scan_folder(alone, folder, name))
    except ConfigError as exc:
        raise ConfigError(f"--from {source}: the old history cannot be read: {exc}") from exc


def _one_head(history: RevisionGraph, name: str, source: Path) -> str:
    heads = history.heads(name)
    if len(heads) != 1:
        raise ConfigError(
            f"--from {source}: the old history has {len(heads)} heads ({', '.join(heads)}); "
            "adopt takes one history: merge them in the old project first "
            "(alembic merge heads -m 'merge'), then adopt"
        )
    return heads[0]


def _adopt_note(manifest: Manifest, folder: Path, count: int, head: str) -> str:
    return wrapped(
        f"Written by `migrate adopt` from the schema the single-application history builds "
        f"({count} revisions up to {head}, kept in {manifest.relative(folder)}/), and proved "
        "on a shadow database: together with the other modules' baselines that replace it, "
        "it builds exactly what that history builds. A database at its head is moved onto "
        "the baselines by `migrate up` (no DDL); one inside it runs the rest of it first."
    )


def _with_adopted(manifest: Manifest, name: str, folder: Path) -> str:
    text = manifest.path.read_text(encoding="utf-8")
    return (
        text.rstrip("\n")
        + "\n\n# the single-application history `migrate adopt` replaced with the modules'\n"
        + "# baselines: kept for the databases still inside it\n"
        + f"adopted:\n  name: {name}\n  versions: {manifest.relative(folder)}\n"
    )


def load_manifest_again(manifest: Manifest) -> Manifest:
    from shared.migrate.manifest import load_manifest

    return load_manifest(manifest.path)
