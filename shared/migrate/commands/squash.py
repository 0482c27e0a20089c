"""`migrate squash -b X [--to R]`: one revision replacing a module's revisions up to R,
written from what they build on a shadow database (one create_table per table, the rows they
leave) and proved there; the old files go to the module's migrations/replaced/."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shared.migrate.commands.replace import (
    ROWS_LIMIT,
    Staged,
    Written,
    reloaded,
    wrapped,
)
from shared.migrate.database.session import run_async
from shared.migrate.database.target import Target
from shared.migrate.errors import ConfigError, RevisionError
from shared.migrate.history import revisionfile
from shared.migrate.history.expressions import resolve
from shared.migrate.history.graph import RevisionGraph, load_graph
from shared.migrate.manifest import REPLACED_FOLDER, Manifest, Module

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from shared.migrate.schema.proof import Picture


@dataclass(frozen=True)
class Squashed:
    written: Written
    replaced: int  # how many revisions it replaces
    top: str  # the newest of them
    folder: Path  # where they are kept
    objects: int  # catalog objects the proof compared
    rows: int  # rows it compared


def squash(
    target: Target, module_name: str, to: str | None = None, shadow_url: str | None = None
) -> Squashed:
    """`migrate squash -b X [--to R]`: one revision replacing X's revisions up to R (default:
    its head), written from what they build on a shadow database and proved there."""
    from shared.migrate.schema import proof, replica

    manifest = target.manifest
    module = manifest.module(module_name)
    graph = load_graph(manifest)
    top = _squash_top(graph, module, to)
    squashed = _squash_range(graph, module, top)
    depends = {d for r in squashed for d in graph.revisions[r].depends_on if d not in squashed}
    below = graph.maximal(graph.ancestors(depends))
    server = target.shadow_server(shadow_url)
    before, after = run_async(lambda: proof.below_and_at(server, graph, below, top, "squash"))
    tables, things = _range_objects(graph, module, top, before, after)
    foreign = _foreign_rows(before, after, tables)
    if foreign:
        order = graph.ordered(squashed)
        writers = run_async(
            lambda: proof.row_writers(server, graph, below, order, foreign[0], "squash")
        )
        _refuse_foreign_rows(graph, module, foreign[0], writers)
    keys = {("table", t) for t in tables} | things
    carried = {t for t in tables if t in after.rows}
    _refuse_many_rows(module, after, carried)
    text = replica.body(after.holdings, keys, rows=carried)
    labels = _alias_labels(graph, module, squashed)
    count = len(_covered(graph, squashed))
    staged = Staged()
    try:
        folder = module.versions / REPLACED_FOLDER
        staged.mkdir(folder)
        for name in graph.ordered(squashed):
            staged.move_revision(graph.revisions[name].path, folder)
        message = f"{module.name} squashed up to {top}"
        written = revisionfile.write(
            manifest,
            module,
            message,
            head=None,
            depends_on=tuple(graph.ordered(below)),
            upgrades=text.upgrade,
            downgrades=text.downgrade,
            imports=text.imports,
            labels=tuple(labels),
            replaces=(top,),
            note=_squash_note(manifest, folder, labels, count),
        )
        staged.created(written.path)
        expected = proof.objects_of(after, tables, things)
        staged.created(revisionfile.write_expected(written.path, expected.rows()))
        fresh = reloaded(manifest, written.path)

        def check(conn: Connection, seen: Picture) -> None:
            found = proof.differences(seen, after)
            if found:
                raise proof.ProofFailed(
                    f"module '{module.name}': the squash does not build what the {count} "
                    f"revisions up to {top} build: {proof.listed(found)}; nothing was written "
                    "(report it: the writer missed something, or squash by hand)"
                )

        seen, _ = run_async(lambda: proof.prove(server, fresh, {written.revision}, "squash", check))
    except BaseException:
        staged.undo()
        raise
    result = Written(
        module.name,
        written.path,
        written.revision,
        tuple(graph.ordered(below)),
        tuple(labels),
        text.summary,
    )
    rows = sum(len(r.values) for r in seen.rows.values())
    return Squashed(result, count, top, folder, len(seen.catalog.objects), rows)


def _squash_top(graph: RevisionGraph, module: Module, to: str | None) -> str:
    head = graph.head(module)
    if head is None:
        raise ConfigError(f"module '{module.name}' has no revisions; there is nothing to squash")
    if to is None or to in ("head", f"{module.name}@head", f"{module.branch}@head"):
        return head
    top = resolve(graph, to.partition("@")[2] if "@" in to else to, module)
    if graph.revisions[top].replaced:
        raise RevisionError(f"revision {top} is already replaced; squash up to a live revision")
    return top


def _squash_range(graph: RevisionGraph, module: Module, top: str) -> set[str]:
    """The module's live revisions up to `top`; refused when later revisions build on them
    (plain Alembic cannot follow a down_revision into a replaced folder)."""
    mine = set(graph.members.get(module.name, []))
    squashed = {r for r in graph.ancestors([top]) if r in mine}
    if len(squashed) < 2:
        raise ConfigError(
            f"module '{module.name}': revision {top} has nothing below it to squash with"
        )
    for name in graph.ordered(squashed):
        shared = sorted(r for r in graph.covered(name) if graph.revisions[r].module != module.name)
        if shared:  # an adopted baseline: with the other modules' it replaces the old history
            raise ConfigError(
                f"module '{module.name}': revision {name} "
                f"({graph.relative(graph.revisions[name].path)}) replaces the adopted history "
                f"({', '.join(shared[:3])}{', ...' if len(shared) > 3 else ''}) together with "
                "the other modules' baselines, which a squash of one module cannot replace; "
                "once no database is inside that history (migrate check says so), delete it "
                "and the manifest's `adopted:` key, then squash"
            )
    later = sorted(r for r in mine - squashed if set(graph.revisions[r].parents) & squashed)
    if later:
        files = ", ".join(f"{r} ({graph.relative(graph.revisions[r].path)})" for r in later[:3])
        raise RevisionError(
            f"module '{module.name}': {files} build(s) on the revisions up to {top}; plain "
            "Alembic cannot follow a down_revision into a replaced folder, and those files may "
            f"be applied somewhere (never edit them): squash up to the head instead "
            f"(migrate squash -b {module.name})"
        )
    return squashed


def _covered(graph: RevisionGraph, squashed: set[str]) -> set[str]:
    """The squashed revisions and those they replaced in turn (an earlier squash)."""
    found = set(squashed)
    for name in squashed:
        found |= graph.covered(name)
    return found


def _range_objects(
    graph: RevisionGraph, module: Module, top: str, before: Picture, after: Picture
) -> tuple[set[str], set[tuple[str, str]]]:
    """The tables and other objects the range creates: what is there at `top` and not below
    it. A range that changes what other modules own (their objects or rows) is refused:
    a squash of one module cannot carry it."""
    from shared.migrate.schema import proof

    old = {(kind, name): detail for kind, name, detail in before.catalog.objects}
    new = {(kind, name): detail for kind, name, detail in after.catalog.objects}
    changed = sorted(k for k in old if k not in new or new[k] != old[k])
    where = f"module '{module.name}': the revisions up to {top}"
    if changed:
        shown_ = ", ".join(f"{kind} {name}" for kind, name in changed[:5])
        raise ConfigError(
            f"{where} change objects the modules they depend on own ({shown_}); a squash "
            "replaces only its own module's objects: move that change into its owner's module"
        )
    created = {key: new[key] for key in new.keys() - old.keys()}
    tables = {name for kind, name in created if kind == "table"}
    relations = tables | {name for kind, name in created if kind in proof.RELATIONS}
    foreign = sorted(
        f"{kind} {name}"
        for (kind, name), detail in created.items()
        if kind in proof.PARTS
        and (relation := proof.part_relation(kind, name, detail)) is not None
        and relation not in relations
    )
    if foreign:
        raise ConfigError(
            f"{where} add to tables other modules own ({', '.join(foreign[:5])}); a squash "
            "replaces only its own module's objects: move that change into its owner's module"
        )
    things = {t.key for t in after.holdings.things if t.key in created}
    return tables, things


def _foreign_rows(before: Picture, after: Picture, tables: set[str]) -> list[str]:
    """Tables of other modules whose rows the range changes."""
    from shared.migrate.schema import proof

    return [
        table
        for table in sorted(set(after.rows) | set(before.rows))
        if table not in tables and proof.differences(after, before, tables=[table])
    ]


def _refuse_foreign_rows(
    graph: RevisionGraph, module: Module, table: str, writers: list[str]
) -> None:
    """A squash carries only its module's rows: the revisions that write another's, named."""
    files = ", ".join(f"{w} ({graph.relative(graph.revisions[w].path)})" for w in writers[:3])
    raise ConfigError(
        f"module '{module.name}': revision {files} write(s) rows of table {table}, which "
        "another module owns; a squash carries only its module's rows and would lose these: "
        "move that data migration into its owner's module, or squash up to a revision before it"
    )


def _refuse_many_rows(module: Module, after: Picture, carried: set[str]) -> None:
    count = sum(len(after.rows[t].values) for t in carried)
    if count > ROWS_LIMIT:
        raise ConfigError(
            f"module '{module.name}': its revisions leave {count} rows in its tables on an "
            f"empty database, more than a revision should carry ({ROWS_LIMIT}); move that "
            "data out of the migrations (a seed script), then squash"
        )


def _alias_labels(graph: RevisionGraph, module: Module, squashed: set[str]) -> list[str]:
    """The replaced ids that other modules' live revisions depend on (as their files say):
    plain Alembic resolves such a depends_on through the squash's branch label."""
    covered = _covered(graph, squashed)
    found: set[str] = set()
    for rev in graph.revisions.values():
        if rev.replaced or rev.module == module.name:
            continue
        for dep in graph.original_depends.get(rev.revision, rev.depends_on):
            if dep in covered:
                found.add(dep)
    for name in squashed:  # an earlier squash's own alias labels still serve
        found |= {label for label in graph.revisions[name].branch_labels if label in covered}
    return sorted(found - {module.branch})


def _squash_note(manifest: Manifest, folder: Path, labels: list[str], count: int) -> str:
    note = (
        f"Written by `migrate squash` from what the {count} revisions it replaces build, and "
        f"proved on a shadow database to build the same. They are kept in "
        f"{manifest.relative(folder)}/ for the databases still inside them; once none is "
        "(`migrate check` says), that folder can be deleted."
    )
    if labels:
        note += (
            f" Besides the module's, its branch labels are {', '.join(labels)}: revisions "
            "it replaces that other modules depend on, whose depends_on now lead here."
        )
    return wrapped(note)
